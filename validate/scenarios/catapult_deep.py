"""Multiple catapults in deeper and convolutional networks (catapult slides, "Multiple catapults",
shown there for FCN, CNN, WRN and ViT): each spike comes with a drop of the tangent kernel's top
eigenvalue and of its norm, measured against a paired null that keeps the learning rate."""

import time

import jax
import jax.numpy as jnp
import numpy as np

from widenet import data, harness, networks, plots
from widenet.experiment.train import TrainConfig, train_sweep

NAME = "catapult_deep"
TITLE = "Multiple catapults in a 3-layer ReLU net and a small CNN: spikes, and the kernel's drop at each"
CLAIM = (
    "In a 3-layer ReLU network (two hidden layers) and in a small CNN (two 3×3 conv layers on the 8×8 digits) under "
    "an increasing learning-rate schedule, a stage spikes when η exceeds 2/λ_max(K) at its start, and at each spike "
    "the tangent kernel drops: its top eigenvalue and its norm (trace) fall more over a spiking stage than over the "
    "same stage run from the same parameters without raising η (the paired null). Rival for the spikes: the initial "
    "kernel (a stage spikes iff ηλ0 > 2) on the same stages."
)

# Each net: its builder's arguments, training-set size, steps per stage, the stage factors ηλ0 (η per
# seed from its own λ0), and how often the loss (and, with `curves`, λ_max and tr K) is recorded.
# λ_max and tr K at the stages' ends, which the checks use, are computed from the parameters there.
SIZES = {
    # machinery only (pytest, seconds): thresholds are decided at "default" and "paper"
    "smoke": dict(seeds=2, nets=(
        dict(kind="mlp", arch=(32, 32), n=32, stage=20, factors=(1.0, 2.5, 4.5), record=2, curves=True),
        dict(kind="cnn", arch=(4, 4), n=16, stage=10, factors=(1.0, 4.5), record=1, curves=False))),
    # default: the CNN (8 channels, 64 digits, 4 stages of 60 steps) costs ~25 s on 2 cores in float64
    "default": dict(seeds=5, nets=(
        dict(kind="mlp", arch=(128, 128), n=128, stage=150, factors=(1.0, 2.5, 3.5, 4.5, 6.0), record=3, curves=True),
        dict(kind="cnn", arch=(8, 8), n=64, stage=60, factors=(1.0, 2.5, 3.5, 4.5), record=1, curves=False))),
    "paper": dict(seeds=8, nets=(
        dict(kind="mlp", arch=(1024, 1024), n=256, stage=400, factors=(1.0, 2.5, 3.5, 4.5, 6.0, 8.0), record=1,
             curves=True),
        dict(kind="cnn", arch=(64, 64), n=256, stage=400, factors=(1.0, 2.5, 3.5, 4.5, 6.0), record=1, curves=True))),
}  # fmt: skip


def run(ctx: harness.Context):
    started = time.perf_counter()
    cfg = SIZES[ctx.size]
    result = harness.ScenarioResult(NAME, TITLE, CLAIM)
    for spec in cfg["nets"]:
        checks, table, figure = _one_net(ctx, spec, cfg["seeds"])
        result.checks += checks
        result.tables.append(table)
        result.figures.append(figure)
    result.seconds = time.perf_counter() - started
    return result


def _one_net(ctx, spec, seeds):
    """Stage by stage for one architecture over seeds: its checks, its table and its figure."""
    d = data.digits(key=jax.random.PRNGKey(0), n_train=spec["n"], n_test=32)
    arch, stage, record = spec["arch"], spec["stage"], spec["record"]
    if spec["kind"] == "mlp":
        net, tag = networks.mlp(arch), f"{len(arch) + 1}-layer {'x'.join(map(str, arch))} FCN"
    else:
        net, tag = networks.cnn(arch), f"CNN {'-'.join(map(str, arch))} channels"
    stacked = jax.jit(jax.vmap(lambda k: net.init(k, 64)))(jax.random.split(jax.random.PRNGKey(2), seeds))
    ntk = networks.empirical_ntk(net.apply_fn)
    x = jnp.asarray(d.x_train)

    def trace(params, step=None):
        """tr K = Σ_i ‖∇_θ f(x_i)‖²: the kernel's norm (its eigenvalues' sum; one output)."""
        return jnp.trace(ntk(x, None, params))

    @jax.jit
    @jax.vmap
    def kernel_view(params):
        """(λ_max(K), tr K) of one seed's parameters, from one kernel evaluation."""
        kernel = ntk(x, None, params)
        return jnp.stack([jnp.linalg.eigvalsh(kernel)[-1], jnp.trace(kernel)])

    lam0 = np.asarray(kernel_view(stacked)[:, 0])
    factors = np.asarray(spec["factors"])
    etas = factors[None, :] / lam0[:, None]  # (seeds, stages): η per seed from its own λ0
    n_stages = len(factors)

    def compute():
        """Stage by stage, and for each stage after the first a paired branch from the same parameters
        that keeps the previous η (no step up): the null for the kernel's change over that stage."""
        curves = spec["curves"]
        config = TrainConfig(steps=stage, record_every=record, n_eigs=1 if curves else 0, record_outputs=False)
        ends_only = TrainConfig(steps=stage, record_every=stage, n_eigs=0, record_outputs=False)
        params = stacked
        loss, top, tr, ends, null_ends = [], [], [], [np.asarray(kernel_view(params))], []
        diverged = np.full(seeds, -1)
        for i in range(n_stages):
            res = train_sweep(net.apply_fn, params, d, config, learning_rate=jnp.asarray(etas[:, i]),
                              observables={"trace": trace} if curves else None, progress=f"  {tag}, stage {i}")  # fmt: skip
            first = 0 if i == 0 else 1  # the stage's start is the previous stage's last record
            loss.append(res.train_loss[:, first:])
            if curves:
                top.append(res.ntk_top[:, first:, 0])
                tr.append(res.extra["trace"][:, first:])
            diverged = np.where((diverged < 0) & (res.diverged_at >= 0), i * stage + res.diverged_at, diverged)
            if i > 0:
                null = train_sweep(net.apply_fn, params, d, ends_only, learning_rate=jnp.asarray(etas[:, i - 1]),
                                   progress=f"  {tag}, stage {i}, η kept")  # fmt: skip
                null_ends.append(np.asarray(kernel_view(null.final_params)))
            params = res.final_params
            ends.append(np.asarray(kernel_view(params)))
        out = {"loss": np.concatenate(loss, axis=1), "ends": np.stack(ends, axis=1),  # (seeds, stages + 1, 2)
               "null_ends": np.stack(null_ends, axis=1), "diverged_at": diverged}  # (seeds, stages - 1, 2)  # fmt: skip
        if curves:
            out |= {"top": np.concatenate(top, axis=1), "trace": np.concatenate(tr, axis=1)}
        return out

    name = "x".join(map(str, arch))
    ctx.log(f"  {tag}, {seeds} seeds, {n_stages} stages of {stage} GD steps on {spec['n']} digits")
    out = ctx.store.cached(
        f"{NAME}_{spec['kind']}{name}_n{spec['n']}_stage{stage}_{n_stages}_s{seeds}_r{record}", compute
    )
    loss, ends, null_ends = (np.asarray(out[k]) for k in ("loss", "ends", "null_ends"))
    per = stage // record  # records per stage
    a, b = np.arange(n_stages) * per, (np.arange(n_stages) + 1) * per
    start = etas * ends[:, :-1, 0]  # (seeds, stages): η λ_max at each stage's start
    spiked = np.stack([[loss[s, a[i] + 1 : b[i] + 1].max() > loss[s, a[i]] for i in range(n_stages)]
                       for s in range(seeds)])  # fmt: skip
    log_top, log_tr = np.log(ends[:, 1:, 0] / ends[:, :-1, 0]), np.log(ends[:, 1:, 1] / ends[:, :-1, 1])
    # the paired null: the same stage from the same parameters with η not raised (stages 1, 2, ...)
    null_log_top = np.log(null_ends[..., 0] / ends[:, 1:-1, 0])  # (seeds, stages - 1)
    null_log_tr = np.log(null_ends[..., 1] / ends[:, 1:-1, 1])

    def against_null(change, null_change):
        """Per seed: mean over its spiking stages (after the first) of the log change minus the paired branch's."""
        out_ = np.full(seeds, np.nan)
        for s in range(seeds):
            hit = spiked[s, 1:]
            if hit.any():
                out_[s] = np.mean(change[s, 1:][hit] - null_change[s][hit])
        return out_

    predicted = start > 2.0
    rival = np.broadcast_to(factors[None, :] > 2.0, predicted.shape)  # η λ0 > 2, λ0 each seed's own
    right, rival_right = np.mean(predicted == spiked, axis=1), np.mean(rival == spiked, axis=1)
    undefined = "a seed without a spiking stage after the first: nothing to compare with its null"
    checks = [
        harness.count_check(f"{tag}: runs that diverge (none may)", out["diverged_at"] >= 0),
        harness.seed_check(f"{tag}: share of stages whose spike/no-spike matches η·λ_max(start) > 2, per seed", right,
                           above=0.8, note=f"{int(np.sum(predicted == spiked))} of {spiked.size} (seed, stage) pairs"),
        harness.seed_check(f"{tag}: log λ_max(end/start) over a spiking stage minus its paired branch with η not raised "
                           "(null)", against_null(log_top, null_log_top), below=0.0, undefined=undefined,
                           note="per seed, mean over its spiking stages after the first"),
        harness.seed_check(f"{tag}: log tr K(end/start) over a spiking stage minus its paired branch with η not raised "
                           "(null)", against_null(log_tr, null_log_tr), below=0.0, undefined=undefined),
        harness.seed_check(f"{tag}: control: share right by η·λ_max(start) minus by the initial kernel η·λ0 > 2 (rival)",
                           right - rival_right, above=0.0, kind="control",
                           note=f"rival right in {int(np.sum(rival == spiked))} of {spiked.size}",
                           inconclusive="" if np.any(predicted != rival) else
                           "the two predictions differ on none of the (seed, stage) pairs, so these stages cannot "
                           "separate them: stages where η·λ0 and η·λ_max(start) fall on opposite sides of 2 decide it"),
    ]  # fmt: skip
    rows = []
    for i in range(n_stages):
        nulls = ("-", "-") if i == 0 else (f"{np.exp(null_log_top[:, i - 1]).mean():.3f}",
                                           f"{np.exp(null_log_tr[:, i - 1]).mean():.3f}")  # fmt: skip
        rows.append(f"| {i} | {factors[i]:.2f} | {start[:, i].mean():.3f} | {int(spiked[:, i].sum())}/{seeds} | "
                    f"{np.exp(log_top[:, i]).mean():.3f} | {nulls[0]} | {np.exp(log_tr[:, i]).mean():.3f} | {nulls[1]} |")  # fmt: skip
    table = (
        f"{tag} (NTK parameterisation) on {spec['n']} digits, {seeds} seeds (λ0 from {lam0.min():.1f} to "
        f"{lam0.max():.1f}; η = factor/λ0 per seed), stages of {stage} GD steps, loss recorded every {record} steps, "
        "λ_max and tr K at the stages' ends (means over seeds):\n\n"
        "| stage | η λ0 | η λ_max at start | spiked | λ_max end/start | null (η kept) | tr K end/start | null (η kept) |\n"
        "|---|---|---|---|---|---|---|---|\n" + "\n".join(rows)
    )
    steps = np.arange(loss.shape[1]) * record
    boundaries = [stage * (i + 1) for i in range(n_stages - 1)]
    stage_of = np.minimum(np.asarray(steps) // stage, n_stages - 1)
    style = {"color": "C0", "alpha": 0.6, "lw": 1, "marker": ""}
    ends_at = np.arange(n_stages + 1) * stage
    if spec["curves"]:
        top_curve, tr_curve, at, dots = np.asarray(out["top"]), np.asarray(out["trace"]), steps, {}
    else:  # the stages' ends only
        top_curve, tr_curve, at, dots = ends[..., 0], ends[..., 1], ends_at, {"marker": "o", "lw": 1}
    where = "" if spec["curves"] else " (at the stages' ends)"
    panels = [
        {"title": f"training loss, {seeds} seeds", "xlabel": "step", "ylabel": "½Σ(f - y)²", "yscale": "log",
         "experiment": [("GD (one line per seed)" if s == 0 else None, steps, loss[s], style) for s in range(seeds)],
         "vlines": [("η steps up" if i == 0 else None, v) for i, v in enumerate(boundaries)]},
        {"title": f"λ_max(K){where} against 2/η (colour: seed)", "xlabel": "step", "ylabel": "λ_max", "yscale": "log",
         "experiment": [(None, at, top_curve[s], {**style, **dots, "color": f"C{s}"}) for s in range(seeds)],
         "theory": [("2/η(step), per seed" if s == 0 else None, steps, 2.0 / etas[s, stage_of],
                     {"color": f"C{s}", "lw": 1, "ls": "--"}) for s in range(seeds)]},
        {"title": f"kernel norm tr K / its start{where}", "xlabel": "step", "ylabel": "tr K(t) / tr K(0)", "yscale": "log",
         "experiment": [("tr K (one line per seed)" if s == 0 else None, at, tr_curve[s] / tr_curve[s, 0],
                         {**style, **dots, "color": "C2"}) for s in range(seeds)],
         "vlines": [(None, v) for v in boundaries]},
    ]  # fmt: skip
    suffix = "" if spec["kind"] == "mlp" else "_cnn"
    fig = plots.curves(ctx.figure_path(f"{NAME}{suffix}.png"), panels, title=f"Multiple catapults: {tag}", width=5.0)
    return checks, table, str(fig.relative_to(ctx.out_dir))
