"""GD catapults in real networks on digits, over seeds and widths: each run's phase read off its
dynamics (loss rise above L(0) and return, kernel drop) against the quadratic model's window and the
linear model; the window's lower edge with its interval; a 3-layer net's early spikes explained."""

import time

import jax
import jax.numpy as jnp
import numpy as np

from widenet import compare, data, harness, networks, plots
from widenet.experiment.train import TrainConfig, train_sweep
from widenet.theory import catapult

NAME = "catapult_gd"
TITLE = "GD catapults: phases of ReLU networks by their dynamics vs the quadratic model"
CLAIM = (
    "For a wide network trained by GD on ½Σ(f - y)², learning rates below 2/λ0 are lazy and "
    "learning rates just above it catapult: the loss rises above L(0) and comes back while λ_max(NTK) "
    "falls, ending below 2/η. The lower edge of the window sits at 2/λ0, as in the neural quadratic "
    "model; the linear (constant-kernel) model, which calls every η > 2/λ0 divergent, is wrong there."
)

_EDGE = (1.6, 1.8, 1.9, 1.95, 2.0, 2.05, 2.1, 2.15, 2.2, 2.3, 2.5, 3.0, 3.5)
SIZES = {
    # machinery only (pytest, seconds): thresholds are decided at "default" and "paper"
    "smoke": dict(n=16, steps=30, widths=(32, 64), seeds=2, products=(1.5, 1.9, 2.1, 2.5, 3.5), deep=(16, 16, 16),
                  deep_seeds=2, deep_products=(1.5, 1.9, 2.5), kernel_every=5),
    "default": dict(n=128, steps=250, widths=(256, 1024), seeds=5, products=_EDGE + (4.5, 6.0), deep=(128, 128, 128),
                    deep_seeds=5, deep_products=(1.2, 1.4, 1.6, 1.8, 1.9, 2.1, 2.5), kernel_every=5),
    "paper": dict(n=128, steps=1000, widths=(1024, 4096), seeds=8, products=_EDGE + (4.5, 6.0, 10.0),
                  deep=(1024, 1024, 1024, 1024), deep_seeds=8, deep_products=(1.2, 1.4, 1.6, 1.8, 1.9, 2.1, 2.5), kernel_every=5),
}  # fmt: skip
WINDOW = (1.0, 4.0)  # the products on which the quadratic model and the linear model are compared


def _comparison(ctx, cfg, d):
    """compare.catapult_gd, one stored entry per width (an interrupted harness resumes)."""
    parts = []
    for width in cfg["widths"]:
        ctx.log(f"  width {width}: {cfg['seeds']} seeds x {len(cfg['products'])} learning rates, one vmapped sweep")

        def compute(width=width):
            c = compare.catapult_gd(lambda w: networks.mlp((w,)), d, widths=(width,), seeds=cfg["seeds"],
                                    products=cfg["products"], steps=cfg["steps"], key=jax.random.PRNGKey(1),
                                    progress=f"catapult_gd width {width}")  # fmt: skip
            return {"lambda0": c.lambda0[0], "lambda_end": c.lambda_end[0], "train_loss": c.train_loss[0],
                    "diverged_at": c.diverged_at[0], "steps": c.steps}  # fmt: skip

        parts.append(ctx.store.cached(f"{NAME}_w{width}_n{cfg['n']}_steps{cfg['steps']}", compute))
    return compare.CatapultComparison(
        widths=tuple(cfg["widths"]), seeds=cfg["seeds"], products=np.asarray(cfg["products"], dtype=float),
        lambda0=np.stack([p["lambda0"] for p in parts]), lambda_end=np.stack([p["lambda_end"] for p in parts]),
        steps=parts[0]["steps"], train_loss=np.stack([p["train_loss"] for p in parts]),
        diverged_at=np.stack([p["diverged_at"] for p in parts]),
    )  # fmt: skip


def _every_step(res):
    """½Σ(f - y)² at steps 0..steps: each update's own loss (`step_loss`, full-batch GD) and the last record."""
    return np.concatenate([res.step_loss, res.train_loss[:, -1:]], axis=1)


def _deep_sweep(ctx, key, apply_fn, inits, d, products, lam0, steps, kernel_every):
    """Every init (its own λ0) at every product ηλ0, one vmapped sweep: the loss at every step and λ_max every
    `kernel_every` steps; arrays shaped (seeds, products, ...)."""

    def compute():
        stacked = jax.tree.map(lambda *a: jnp.repeat(jnp.stack(a), len(products), axis=0), *inits)
        config = TrainConfig(steps=steps, record_every=kernel_every, n_eigs=1, record_outputs=False,
                             divergence_loss=1e10, record_step_loss=True)  # fmt: skip
        rates = (np.asarray(products)[None, :] / np.asarray(lam0)[:, None]).ravel()
        res = train_sweep(apply_fn, stacked, d, config, learning_rate=rates, l2=0.0)
        shape = (len(inits), len(products))
        return {"train_loss": _every_step(res).reshape(shape + (-1,)),
                "diverged_at": np.asarray(res.diverged_at).reshape(shape),
                "ntk_top": np.asarray(res.ntk_top[..., 0]).reshape(shape + (-1,))}  # fmt: skip

    return ctx.store.cached(key, compute)


def run(ctx: harness.Context):
    started = time.perf_counter()
    cfg = SIZES[ctx.size]
    result = harness.ScenarioResult(NAME, TITLE, CLAIM)
    d = data.digits(key=jax.random.PRNGKey(0), n_train=cfg["n"], n_test=0)
    comp = _comparison(ctx, cfg, d)
    x = comp.products
    phases = comp.measured_phases()
    edges = comp.lower_edges()
    window = (x > WINDOW[0]) & (x < WINDOW[1])
    rows = []
    for i, width in enumerate(comp.widths):
        cat = phases[i] == "catapult"
        after = np.where(cat, x[None, :] * comp.lambda_end[i] / comp.lambda0[i][:, None], -np.inf).max(axis=1)
        wrong_uv = (phases[i][:, window] != comp.predicted_phases("uv")[window]).mean(axis=1)
        wrong_linear = (phases[i][:, window] != comp.predicted_phases("linear")[window]).mean(axis=1)
        has_catapult = cat.any(axis=1)
        result.checks += [
            harness.seed_check(f"width {width}: |lower edge of the window / (2/λ0) - 1|", np.abs(edges[i] / 2 - 1),
                               below=0.05, note=f"grid spacing near 2: {np.min(np.diff(x[window])):g}/λ0",
                               undefined="the grid holds no lazy-to-catapult edge for that seed"),
            harness.seed_check(f"width {width}: max η·λ_max at the end of a catapult run (must be < 2)",
                               after[has_catapult], below=2.0,
                               note=f"{int(cat.sum())} catapult runs in {int(has_catapult.sum())} seeds"),
            harness.seed_check(f"control width {width}: share of {WINDOW[0]:g} < ηλ0 < {WINDOW[1]:g} runs whose phase "
                               "the linear model misses, minus the quadratic model's", wrong_linear - wrong_uv,
                               above=0.0, kind="control"),
        ]  # fmt: skip
        counts = {p: int((phases[i] == p).sum()) for p in catapult.PHASES}
        mean, lo, hi = comp.lower_edge()[width]
        rows.append(f"| {width} | {comp.seeds} | {mean:.3f} [{lo:.3f}, {hi:.3f}] | {counts['lazy']} | "
                    f"{counts['catapult']} | {counts['spike']} | {counts['divergent']} | "
                    f"{wrong_uv.mean():.2f} | {wrong_linear.mean():.2f} |")  # fmt: skip

    # the quadratic model of the narrower width's networks (every seed, the same η·λ0 grid) against
    # the networks themselves: one vmapped sweep of (θ, θ0) pairs
    narrow = comp.widths[0]
    net = networks.mlp((narrow,))
    inits = [net.init(k, 64) for k in jax.random.split(jax.random.fold_in(jax.random.PRNGKey(1), narrow), comp.seeds)]
    ctx.log(f"  quadratic models of width {narrow}: {comp.seeds} seeds x {len(x)} learning rates, one vmapped sweep")

    def quadratic_sweep():
        stacked = jax.tree.map(lambda *a: jnp.repeat(jnp.stack(a), len(x), axis=0), *inits)
        config = TrainConfig(steps=cfg["steps"], record_every=min(10, cfg["steps"]), record_outputs=False,
                             divergence_loss=1e10, record_step_loss=True)  # fmt: skip
        res = train_sweep(networks.quadratic(net.apply_fn), networks.lazy_params(stacked), d, config,
                          learning_rate=(x[None, :] / comp.lambda0[0][:, None]).ravel(), progress=f"quadratic width {narrow}")  # fmt: skip
        shape = (comp.seeds, len(x))
        return {
            "train_loss": _every_step(res).reshape(shape + (-1,)),
            "diverged_at": np.asarray(res.diverged_at).reshape(shape),
        }

    quad = ctx.store.cached(
        f"{NAME}_quadratic_w{narrow}_n{cfg['n']}_steps{cfg['steps']}_s{comp.seeds}", quadratic_sweep
    )
    quad_edges, quad_upper = np.array([catapult.phase_edges(x, catapult.measured_phase(quad["train_loss"][s], quad["diverged_at"][s]))
                                       for s in range(comp.seeds)]).T  # fmt: skip
    result.checks += [
        harness.seed_check(f"width {narrow}: |lower edge network / its quadratic model - 1| (same seed, same grid)",
                           np.abs(edges[0] / quad_edges - 1), below=0.05,
                           undefined="no lazy-to-catapult edge on the grid for the network or its quadratic model"),
    ]  # fmt: skip

    # a 3-layer net, over seeds: its kernel grows early in training (progressive sharpening), so runs
    # below 2/λ0 can spike; measured by recording λ_max every few steps
    deep = cfg["deep"]
    label = "x".join(map(str, deep))
    deep_net = networks.mlp(deep)
    deep_inits = [deep_net.init(k, 64) for k in jax.random.split(jax.random.PRNGKey(1), cfg["deep_seeds"])]
    deep_ntk = jax.jit(networks.empirical_ntk(deep_net.apply_fn))
    deep_lam0 = np.array([float(jnp.linalg.eigvalsh(deep_ntk(d.x_train, None, p))[-1]) for p in deep_inits])
    deep_x = np.asarray(cfg["deep_products"], dtype=float)
    n_deep = len(deep_inits)
    ctx.log(f"  {label} ReLU: {n_deep} seeds x {len(deep_x)} learning rates, loss every step and λ_max every "
            f"{cfg['kernel_every']}")  # fmt: skip
    # one sweep: the loss at every step (each update's own) and λ_max every kernel_every steps (until 2026-12-08
    # two sweeps of the same runs, one recording at every step)
    key = f"{NAME}_deep{label}_n{cfg['n']}_steps{cfg['steps']}_s{n_deep}_kernel{cfg['kernel_every']}"
    deep_run = _deep_sweep(
        ctx, key, deep_net.apply_fn, deep_inits, d, deep_x, deep_lam0, cfg["steps"], cfg["kernel_every"]
    )
    sub = deep_x < 2.0
    record_steps = np.arange(deep_run["ntk_top"].shape[2]) * cfg["kernel_every"]
    deep_phases, margins, spiked, quiet_crossed = [], [], [], []
    for s in range(n_deep):
        phases_s = catapult.measured_phase(deep_run["train_loss"][s], deep_run["diverged_at"][s])
        deep_phases.append(phases_s)
        early = sub & (phases_s != "lazy")  # spikes the constant-λ0 picture forbids
        spiked.append(early.sum() / sub.sum())
        peak_step = np.argmax(np.nan_to_num(deep_run["train_loss"][s], nan=np.inf), axis=1)
        crossed = np.array([deep_x[j] * np.nanmax(deep_run["ntk_top"][s, j][record_steps <= peak_step[j]])
                            / deep_lam0[s] for j in np.nonzero(early)[0]])  # fmt: skip
        margins.append(crossed.min() if crossed.size else np.nan)  # NaN in a record makes the seed undefined
        # the runs below 2/λ0 that did not spike: did η·λ_max(t) pass 2 in them too? (necessary, not sufficient)
        quiet = np.nonzero(sub & (phases_s == "lazy"))[0]
        quiet_crossed.append((sum(deep_x[j] * np.nanmax(deep_run["ntk_top"][s, j]) / deep_lam0[s] > 2 for j in quiet),
                              quiet.size))  # fmt: skip
    margins, spiked = np.asarray(margins), np.asarray(spiked)
    result.checks += [
        harness.seed_check(
            f"{label}: per seed, min over its spiking runs below 2/λ0 of η·max λ_max(t) before the spike (> 2: the "
            "kernel grew past 2/η first)",
            margins[spiked > 0],
            above=2.0,
            note=f"{int((spiked > 0).sum())} of {n_deep} seeds had a spike below 2/λ0 (a seed without one has no value)",
            undefined="a λ_max record before the spike is not finite",
            inconclusive="" if (spiked > 0).sum() >= 2 else "fewer than 2 seeds had a spike below 2/λ0",
        ),
        harness.seed_check(
            f"control {label}: share of the runs below 2/λ0 that spiked (the constant-λ0 rival: 0)",
            spiked,
            above=0.0,
            kind="control",
        ),
    ]
    deep_phases = np.asarray(deep_phases)
    sharpening = np.nanmax(deep_run["ntk_top"], axis=2) / deep_lam0[:, None]

    result.tables.append(
        "Phases by the dynamics (catapult: the loss rose above L(0) and came back, and λ_max(NTK) ended below "
        f"λ0; spike: the loss rose and came back but the kernel did not drop), on {cfg['n']} digits, loss ½Σ(f - y)², "
        f"products ηλ0 = {', '.join(f'{v:g}' for v in x)}, λ0 each seed's own. Lower edge: mean over seeds with its "
        f"95% t-interval. The last two columns: share of the runs with {WINDOW[0]:g} < ηλ0 < {WINDOW[1]:g} in a phase "
        "the quadratic model (lazy < 2 < catapult < 4) or the linear model (lazy < 2 < divergent) does not predict:\n\n"
        "| width | seeds | lower edge (×1/λ0) | lazy | catapult | spike | divergent | missed by quadratic | missed by linear |\n"
        "|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows)
    )
    result.tables.append(
        f"Width {narrow} and its neural quadratic models, per seed: lower edge network "
        f"{', '.join(f'{v:.3f}' for v in edges[0])}/λ0, quadratic model {', '.join(f'{v:.3f}' for v in quad_edges)}/λ0; "
        f"the quadratic models' upper edges {', '.join(f'{v:.2f}' for v in quad_upper)}/λ0 (uv theory: 4). Above them the "
        "ReLU networks still converge (units switch off and λ_max collapses), a regime the quadratic model does not "
        "capture."
    )
    short = {"lazy": "L", "catapult": "C", "spike": "S", "divergent": "D"}
    result.tables.append(
        f"{label} ReLU net, per seed: phase at each ηλ0 = {', '.join(f'{v:g}' for v in deep_x)} (L lazy, C catapult, "
        "S spike, D divergent), the largest λ_max(t)/λ0 over its runs (progressive sharpening), and the smallest "
        "η·λ_max(t) before a spike below 2/λ0 (the check; '-' where no run below 2/λ0 spiked); last, of the runs "
        "below 2/λ0 that did not spike, how many had η·λ_max(t) pass 2 all the same (passing 2 is necessary for an "
        "early spike by the check, and sufficient only if this is 0):\n\n"
        "| seed | λ0 | phases | max λ_max(t)/λ0 | min η·λ_max before an early spike | quiet runs past 2 |\n"
        "|---|---|---|---|---|---|\n"
        + "\n".join(
            f"| {s} | {deep_lam0[s]:.1f} | {' '.join(short[p] for p in deep_phases[s])} | "
            f"{np.nanmax(sharpening[s]):.2f} | {margins[s]:.2f} | {quiet_crossed[s][0]} of {quiet_crossed[s][1]} |".replace(
                "| nan |", "| - |"
            )
            for s in range(n_deep)
        )  # fmt: skip
    )
    fig = comp.plot(ctx.figure_path("catapult_gd_phases.png"))
    result.figures.append(str(fig.relative_to(ctx.out_dir)))
    t_kernel = record_steps
    colours = [f"C{j}" for j in range(len(deep_x))]
    panels = [{
        "title": f"{label} ReLU, seed 0: η λ_max(t) (every {cfg['kernel_every']} steps)", "xlabel": "step", "ylabel": "η λ_max(t)",
        "experiment": [(f"ηλ0 = {v:g}", t_kernel, v * deep_run["ntk_top"][0, j] / deep_lam0[0], {"color": colours[j], "ms": 2})
                       for j, v in enumerate(deep_x)],
        "hlines": [("η λ_max = 2", 2.0)],
    }, {
        "title": f"{label} ReLU, seed 0: training loss", "xlabel": "step", "ylabel": "½Σ(f - y)²", "yscale": "log",
        "experiment": [(f"ηλ0 = {v:g} ({deep_phases[0, j]})", np.arange(deep_run["train_loss"].shape[2]),
                        deep_run["train_loss"][0, j], {"color": colours[j], "marker": None}) for j, v in enumerate(deep_x)],
    }]  # fmt: skip
    fig = plots.curves(
        ctx.figure_path("catapult_gd_deep.png"), panels, title=f"{label} ReLU net: progressive sharpening", width=5.5
    )
    result.figures.append(str(fig.relative_to(ctx.out_dir)))
    result.seconds = time.perf_counter() - started
    return result
