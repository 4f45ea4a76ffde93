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
    "eigenvalue and its norm (trace) fall more over a spiking stage than over the same stage run from the same "
    "parameters without raising η (the paired null). Rival for the spikes: the initial kernel (a stage spikes "
    "iff ηλ0 > 2) on the same stages."
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
        """Stage by stage, and for each stage after the first a paired branch from the same parameters
        that keeps the previous η (no step up): the null for the kernel's change over that stage."""
        config = TrainConfig(steps=stage, record_every=record, n_eigs=1, record_outputs=False)
        ends_only = TrainConfig(
            steps=stage, record_every=stage, n_eigs=1, record_outputs=False
        )  # the null's start, end
        params = jax.tree.map(lambda *a: jnp.stack(a), *inits)

        def sweep(p, eta, label, cfg_=config):
            res = train_sweep(net.apply_fn, p, d, cfg_, learning_rate=jnp.full(seeds, eta),
                              observables={"trace": trace}, progress=label)  # fmt: skip
            return res, (res.train_loss, res.ntk_top[..., 0], res.extra["trace"])

        main, null, diverged = [], [], np.full(seeds, -1)
        for i, eta in enumerate(etas):
            res, rec = sweep(params, eta, f"  stage {i}")
            main.append(rec if i == 0 else tuple(r[:, 1:] for r in rec))  # the stage's start is the last record
            diverged = np.where((diverged < 0) & (res.diverged_at >= 0), i * stage + res.diverged_at, diverged)
            if i > 0:
                null.append(sweep(params, etas[i - 1], f"  stage {i}, η kept", ends_only)[1])
            params = res.final_params
        out = {k: np.concatenate([m[j] for m in main], axis=1) for j, k in enumerate(("loss", "top", "trace"))}
        for j, k in enumerate(("null_loss", "null_top", "null_trace")):
            out[k] = np.stack([n[j] for n in null], axis=1)  # (seeds, stages - 1, records)
        return out | {"diverged_at": diverged}

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

    # the paired null: the same stage from the same parameters with η not raised (stages 1, 2, ...)
    null_top, null_tr = np.asarray(out["null_top"]), np.asarray(out["null_trace"])
    null_log_top = np.log(null_top[..., -1] / null_top[..., 0])  # (seeds, stages - 1)
    null_log_tr = np.log(null_tr[..., -1] / null_tr[..., 0])

    def against_null(change, null_change):
        """Per seed: mean over its spiking stages (after the first) of the log change minus the paired branch's."""
        out_ = np.full(seeds, np.nan)
        for s in range(seeds):
            hit = spiked[s, 1:]
            if hit.any():
                out_[s] = np.mean(change[s, 1:][hit] - null_change[s][hit])
        return out_

    predicted = start > 2.0
    rival = np.broadcast_to(etas[None, :] * lam0[:, None] > 2.0, predicted.shape)
    right, rival_right = np.mean(predicted == spiked, axis=1), np.mean(rival == spiked, axis=1)
    undefined = "a seed without a spiking stage after the first: nothing to compare with its null"
    result.checks += [
        harness.check(f"runs that diverged (of {seeds})", float(np.sum(out["diverged_at"] >= 0)), below=0.5),
        harness.seed_check("share of stages whose spike/no-spike matches η·λ_max(start) > 2, per seed", right,
                           above=0.8, note=f"{int(np.sum(predicted == spiked))} of {spiked.size} (seed, stage) pairs"),
        harness.seed_check("log λ_max(end/start) over a spiking stage minus its paired branch with η not raised (null)",
                           against_null(log_top, null_log_top), below=0.0, undefined=undefined,
                           note="per seed, mean over its spiking stages after the first"),
        harness.seed_check("log tr K(end/start) over a spiking stage minus its paired branch with η not raised (null)",
                           against_null(log_tr, null_log_tr), below=0.0, undefined=undefined),
        harness.seed_check("control: share right by η·λ_max(start) minus by the initial kernel η·λ0 > 2 (rival)",
                           right - rival_right, above=0.0, kind="control",
                           note=f"rival right in {int(np.sum(rival == spiked))} of {spiked.size}"),
    ]  # fmt: skip
    rows = []
    for i, eta in enumerate(etas):
        nulls = ("-", "-") if i == 0 else (f"{np.exp(null_log_top[:, i - 1]).mean():.3f}",
                                           f"{np.exp(null_log_tr[:, i - 1]).mean():.3f}")  # fmt: skip
        rows.append(f"| {i} | {eta * lam0.mean():.2f} | {start[:, i].mean():.3f} | {int(spiked[:, i].sum())}/{seeds} | "
                    f"{np.exp(log_top[:, i]).mean():.3f} | {nulls[0]} | {np.exp(log_tr[:, i]).mean():.3f} | {nulls[1]} |")  # fmt: skip
    result.tables.append(
        f"{hidden} ReLU net (NTK parameterisation) on {cfg['n']} digits, {seeds} seeds, stages of {stage} GD steps, "
        f"loss, λ_max and tr K recorded every {record} steps (means over seeds):\n\n"
        "| stage | η λ0 | η λ_max at start | spiked | λ_max end/start | null (η kept) | tr K end/start | null (η kept) |\n"
        "|---|---|---|---|---|---|---|---|\n" + "\n".join(rows)
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
