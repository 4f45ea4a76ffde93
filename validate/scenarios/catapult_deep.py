"""Multiple catapults in a deeper network (catapult slides, "Multiple catapults", shown there for FCN,
CNN, WRN and ViT): each spike comes with a drop of the tangent kernel's top eigenvalue and of its
norm, measured against the stages without a spike."""

import time

import jax
import jax.numpy as jnp
import numpy as np

from widenet import data, harness, networks, plots, schedules
from widenet.experiment.train import TrainConfig, train_sweep

NAME = "catapult_deep"
TITLE = "Multiple catapults in a 3-layer ReLU net: spikes, and the kernel's drop at each"
CLAIM = (
    "In a 3-layer ReLU network (two hidden layers) under an increasing learning-rate schedule, a stage "
    "spikes when η exceeds 2/λ_max(K) at its start, and at each spike the tangent kernel drops: its top "
    "eigenvalue and its norm (trace) fall over a spiking stage, while over the stages without a spike they "
    "do not (the null: progressive sharpening makes them grow). Rival for the spikes: the initial kernel "
    "(a stage spikes iff ηλ0 > 2) on the same stages."
)

SIZES = {
    # machinery only (pytest, seconds): thresholds are decided at "default" and "paper"
    "smoke": dict(hidden=(32, 32), n=32, stage=20, factors=(1.0, 2.5, 4.5), seeds=2, record=2),
    "default": dict(hidden=(128, 128), n=128, stage=150, factors=(1.0, 2.5, 3.5, 4.5, 6.0), seeds=5, record=3),
    "paper": dict(hidden=(1024, 1024, 1024), n=256, stage=400, factors=(1.0, 2.5, 3.5, 4.5, 6.0, 8.0), seeds=8,
                  record=1),
}  # fmt: skip


def run(ctx: harness.Context):
    started = time.perf_counter()
    cfg = SIZES[ctx.size]
    result = harness.ScenarioResult(NAME, TITLE, CLAIM)
    d = data.digits(key=jax.random.PRNGKey(0), n_train=cfg["n"], n_test=32)
    net = networks.mlp(cfg["hidden"])
    seeds, stage, record = cfg["seeds"], cfg["stage"], cfg["record"]
    inits = [net.init(k, 64) for k in jax.random.split(jax.random.PRNGKey(2), seeds)]
    ntk = jax.jit(networks.empirical_ntk(net.apply_fn))
    lam0 = np.array([float(jnp.linalg.eigvalsh(ntk(d.x_train, None, p))[-1]) for p in inits])
    etas = np.asarray(cfg["factors"]) / lam0.mean()  # one schedule for all seeds, from the mean λ0
    n_stages = len(etas)
    boundaries = [stage * (i + 1) for i in range(n_stages - 1)]
    x = jnp.asarray(d.x_train)

    def trace(params, step):
        """tr K = Σ_i ‖∇_θ f(x_i)‖²: the kernel's norm (its eigenvalues' sum)."""
        grads = jax.vmap(lambda xi: jax.grad(lambda p: net.apply_fn(p, xi[None])[0, 0])(params))(x)
        return sum(jnp.sum(g**2) for g in jax.tree.leaves(grads))

    def compute():
        config = TrainConfig(steps=stage * n_stages, record_every=record, n_eigs=1, record_outputs=False)
        res = train_sweep(net.apply_fn, jax.tree.map(lambda *a: jnp.stack(a), *inits), d, config,
                          learning_rate=schedules.piecewise_constant(boundaries, list(etas)),
                          observables={"trace": trace}, progress="  seeds")  # fmt: skip
        return {"loss": res.train_loss, "top": res.ntk_top[..., 0], "trace": res.extra["trace"],
                "diverged_at": res.diverged_at}  # fmt: skip

    hidden = "x".join(map(str, cfg["hidden"]))
    ctx.log(f"  {hidden} ReLU net, {seeds} seeds, {n_stages} stages of {stage} GD steps")
    out = ctx.store.cached(f"{NAME}_{hidden}_n{cfg['n']}_stage{stage}_{n_stages}_s{seeds}_r{record}", compute)
    loss, top, tr = (np.asarray(out[k]) for k in ("loss", "top", "trace"))
    per = stage // record  # records per stage
    a, b = np.arange(n_stages) * per, (np.arange(n_stages) + 1) * per
    start = etas[None, :] * top[:, a]  # (seeds, stages): η λ_max at each stage's start
    spiked = np.stack([[loss[s, a[i] + 1 : b[i] + 1].max() > loss[s, a[i]] for i in range(n_stages)]
                       for s in range(seeds)])  # fmt: skip
    log_top, log_tr = np.log(top[:, b] / top[:, a]), np.log(tr[:, b] / tr[:, a])

    def against_null(change):
        """Per seed: mean log change over spiking stages minus over stages without a spike."""
        out_ = np.full(seeds, np.nan)
        for s in range(seeds):
            if spiked[s].any() and (~spiked[s]).any():
                out_[s] = change[s, spiked[s]].mean() - change[s, ~spiked[s]].mean()
        return out_

    predicted = start > 2.0
    rival = np.broadcast_to(etas[None, :] * lam0[:, None] > 2.0, predicted.shape)
    right, rival_right = np.mean(predicted == spiked, axis=1), np.mean(rival == spiked, axis=1)
    undefined = "a seed whose stages all spiked or none did: no null to compare with"
    result.checks += [
        harness.check(f"runs that diverged (of {seeds})", float(np.sum(out["diverged_at"] >= 0)), below=0.5),
        harness.seed_check("share of stages whose spike/no-spike matches η·λ_max(start) > 2, per seed", right,
                           above=0.8, note=f"{int(np.sum(predicted == spiked))} of {spiked.size} (seed, stage) pairs"),
        harness.seed_check("log λ_max(end/start): spiking stages minus stages without a spike (null), per seed",
                           against_null(log_top), below=0.0, undefined=undefined),
        harness.seed_check("log tr K(end/start): spiking stages minus stages without a spike (null), per seed",
                           against_null(log_tr), below=0.0, undefined=undefined),
        harness.seed_check("control: share right by η·λ_max(start) minus by the initial kernel η·λ0 > 2 (rival)",
                           right - rival_right, above=0.0, kind="control",
                           note=f"rival right in {int(np.sum(rival == spiked))} of {spiked.size}"),
    ]  # fmt: skip
    rows = []
    for i, eta in enumerate(etas):
        rows.append(f"| {i} | {eta * lam0.mean():.2f} | {start[:, i].mean():.3f} | {int(spiked[:, i].sum())}/{seeds} | "
                    f"{np.exp(log_top[:, i]).mean():.3f} | {np.exp(log_tr[:, i]).mean():.3f} |")  # fmt: skip
    result.tables.append(
        f"{hidden} ReLU net (NTK parameterisation) on {cfg['n']} digits, {seeds} seeds, stages of {stage} GD steps, "
        f"loss, λ_max and tr K recorded every {record} steps (means over seeds):\n\n"
        "| stage | η λ0 | η λ_max at start | spiked | λ_max end/start | tr K end/start |\n|---|---|---|---|---|---|\n"
        + "\n".join(rows)
    )
    steps = np.arange(loss.shape[1]) * record
    eta_steps = np.asarray(schedules.piecewise_constant(boundaries, list(etas))(steps))
    style = {"color": "C0", "alpha": 0.6, "lw": 1, "marker": ""}
    panels = [
        {"title": f"training loss, {seeds} seeds", "xlabel": "step", "ylabel": "½Σ(f - y)²", "yscale": "log",
         "experiment": [("GD (one line per seed)" if s == 0 else None, steps, loss[s], style) for s in range(seeds)],
         "vlines": [("η steps up" if i == 0 else None, v) for i, v in enumerate(boundaries)]},
        {"title": "λ_max(K) and 2/η", "xlabel": "step", "ylabel": "λ_max", "yscale": "log",
         "experiment": [("λ_max (one line per seed)" if s == 0 else None, steps, top[s], style) for s in range(seeds)],
         "theory": [("2/η(step)", steps, 2.0 / eta_steps, {"color": "k"})]},
        {"title": "kernel norm tr K / its start", "xlabel": "step", "ylabel": "tr K(t) / tr K(0)", "yscale": "log",
         "experiment": [("tr K (one line per seed)" if s == 0 else None, steps, tr[s] / tr[s, 0], {**style, "color": "C2"})
                        for s in range(seeds)],
         "vlines": [(None, v) for v in boundaries]},
    ]  # fmt: skip
    fig = plots.curves(ctx.figure_path(f"{NAME}.png"), panels, title=TITLE, width=5.0)
    result.figures.append(str(fig.relative_to(ctx.out_dir)))
    result.seconds = time.perf_counter() - started
    return result
