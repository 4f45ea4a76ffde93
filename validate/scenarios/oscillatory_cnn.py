"""The dynamical-loss supplement's SM II (Fig. 2): bifurcations come with the top Hessian eigenvalue
crossing 2/η in a Myrtle-type CNN too, not only in the spiral's 2-100-3 net (issue 13.7). The paper
uses Myrtle5 on 3000 CIFAR-10 images of the first three classes; here a `networks.cnn` with the
Myrtle head (global average pooling) on the digits 0, 1, 2, or on CIFAR-10's first three classes
when `WIDENET_CIFAR10` names a local cifar-10-batches-py folder (`--size paper` only)."""

import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from widenet import data, harness, losses, networks, plots, schedules, spectra
from widenet.experiment.train import TrainConfig, train_sweep

from .oscillatory_spiral import _events, _mean_defined

NAME = "oscillatory_cnn"
TITLE = "Dynamical loss in a Myrtle-type CNN (SM II): bifurcations vs λ_max(H) crossing 2/η"
CLAIM = (
    "In a convolutional network (Myrtle-type: 3×3 convolutions, ReLU, global average pooling) trained by full-batch "
    "GD on three classes with oscillating class weights, the top Hessian eigenvalue of the mean loss F crosses the "
    "GD threshold 2/η again and again, and accuracy jumps (bifurcations) follow such crossings more often than times "
    "at the same phase of the weight cycle do (SM II, as `oscillatory_spiral` for the spiral). Statistics per seed, "
    "95% intervals over seeds."
)

SIZES = {
    # machinery only (pytest, seconds): thresholds are decided at "default" and "paper"
    "smoke": dict(channels=(4, 4), n=30, period=10, amplitude=70.0, periods=3, record=5, seeds=2, order=10),
    # default: not run. Measured 2026-12-07 on 2 cores: an 8-8-channel CNN on 90 digits, 2 seeds and the A = 1
    # run, records of the top-3 Hessian eigenvalues (Lanczos order 40) every 10 steps, took 0.4 s a step,
    # ~10 minutes for 4 cycles of T = 100 (docs/theory_oscillatory.md): more than the whole harness can spend
    "default": None,
    # the paper's SM II: Myrtle5 (64 channels) on 3000 images of CIFAR-10's classes 0-2 (with WIDENET_CIFAR10),
    # else on all 537 digits 0-2 (510 of them); T and A as the spiral's paper size
    "paper": dict(channels=(64, 64, 64, 64), n=510, period=500, amplitude=70.0, periods=10, record=10, seeds=8,
                  order=20, cifar_n=3000),
}  # fmt: skip
_ETA = 0.5  # η = _ETA · 2/λ_max(H_F) at initialisation (median over seeds, A = 1): half the critical rate there
_NOT_RUN = (
    "not run at this size: a CNN's Hessian records cost 0.4 s a training step on 2 cores (measured 2026-12-07 at 8-8 "
    "channels, 90 digits, 3 runs), ~10 minutes for one short run; --size paper runs it (a GPU), and a CPU probe is "
    "in docs/theory_oscillatory.md"
)
_CHECKS = (
    "up-crossings of 2/η by λ_max(H) during the oscillating phase, per seed",
    "share of bifurcations within one record after an up-crossing",
    "control: that share minus the same share at phase-matched times in other cycles",
)


def _data(ctx, cfg):
    """Digits 0, 1, 2 as 8×8×1 images, or CIFAR-10's classes 0-2 as 32×32×3 at paper size when present."""
    cifar = os.environ.get("WIDENET_CIFAR10")
    if ctx.size == "paper" and cifar:
        d = data.load_cifar10(cifar, key=jax.random.PRNGKey(0), n_train=cfg["cifar_n"], classes=(0, 1, 2))
        return d, (32, 32, 3)
    d = data.digits(key=jax.random.PRNGKey(0), n_train=cfg["n"], target="one_hot", classes=(0, 1, 2))
    return d, (8, 8, 1)


def run(ctx: harness.Context):
    started = time.perf_counter()
    cfg = SIZES[ctx.size]
    result = harness.ScenarioResult(NAME, TITLE, CLAIM)
    if cfg is None:
        result.checks += [harness.check(name, np.nan, above=0.0, inconclusive=_NOT_RUN) for name in _CHECKS]
        result.seconds = time.perf_counter() - started
        return result
    d, image_shape = _data(ctx, cfg)
    x, labels = d.x_train, d.labels_train
    n = len(labels)
    net = networks.cnn(cfg["channels"], 3, image_shape=image_shape, readout="global_avg")
    seeds = cfg["seeds"]
    inits = [net.init(jax.random.PRNGKey(1 + s_), x.shape[1]) for s_ in range(seeds)]
    n_params = sum(a.size for a in jax.tree.leaves(inits[0]))

    def f_mean(p, w=None):
        return losses.cross_entropy(net.apply_fn(p, x), d.y_train, w) / n

    lam0 = np.array([
        float(spectra.hessian_top_eigenvalues(f_mean, p, k=1, order=cfg["order"], key=jax.random.PRNGKey(7))[0])
        for p in inits
    ])  # fmt: skip
    eta_mean = _ETA * 2.0 / float(np.median(lam0))  # on the mean loss F; widenet sums over samples: η/N
    period, amp = cfg["period"], cfg["amplitude"]
    off = 3 * period * cfg["periods"]
    steps = off + 3 * period

    def weights(step, args):
        return schedules.class_weights(step, n_classes=3, period=args[0], amplitude=args[1], off_after=off)[labels]

    def compute():
        # runs 0..seeds-1: A = amp from each seed's init; run `seeds`: A = 1 (plain CE) from seed 0's init
        stacked = jax.tree.map(lambda *p: jnp.stack(p), *inits, inits[0])
        config = TrainConfig(steps=steps, record_every=cfg["record"], loss="cross_entropy", n_hessian_eigs=3,
                             lanczos_order=cfg["order"])  # fmt: skip
        res = train_sweep(net.apply_fn, stacked, d, config, learning_rate=jnp.full(seeds + 1, eta_mean / n),
                          sample_weights=weights, sample_weight_args=jnp.array([[period, amp]] * seeds + [[period, 1.0]]),
                          progress=NAME)  # fmt: skip
        return {"steps": res.steps, "acc": res.train_accuracy, "hessian": res.hessian_top,
                "diverged_at": res.diverged_at}  # fmt: skip

    channels = "-".join(map(str, cfg["channels"]))
    run_ = ctx.store.cached(f"{NAME}_{d.name.replace('/', '_')}_n{n}_c{channels}_T{period}_A{amp}_p{cfg['periods']}"
                            f"_r{cfg['record']}_s{seeds}_o{cfg['order']}", compute)  # fmt: skip
    threshold = 2.0 / eta_mean
    cycle = 3 * period // cfg["record"]
    oscillating = off // cfg["record"]
    per_seed = [_events(run_["acc"][s_][:oscillating], run_["hessian"][s_][:oscillating, 0] / n, threshold, cycle)
                for s_ in range(seeds)]  # fmt: skip
    stat = {name: np.array([ps[name] for ps in per_seed]) for name in per_seed[0] if name != "jump_records"}
    defined = np.isfinite(stat["share"]) & np.isfinite(stat["share_null"])
    no_events = f"bifurcations and up-crossings in only {defined.sum()} of {seeds} seeds; a longer run decides it"

    def over_seeds(label, values, **kw):
        if defined.sum() < 3:  # too few seeds with events for an interval
            return harness.check(label, float(np.mean(values)) if values.size else np.nan, inconclusive=no_events, **kw)
        return harness.seed_check(label, values, **kw)

    diverged = np.asarray(run_["diverged_at"])[:seeds]
    result.checks += [
        harness.seed_check(_CHECKS[0], stat["crossings"], above=5.0,
                           note=f"2/η = {threshold:.4g}, η = {_ETA:g}·2/λ_max(H_F) at init; {int((diverged >= 0).sum())} "
                                "runs diverged"),
        over_seeds(f"{_CHECKS[1]} ({cfg['record']} steps)", stat["share"][defined], above=0.0,
                   note=f"{int(stat['jumps'].sum())} bifurcations over {seeds} seeds"),
        over_seeds(_CHECKS[2], stat["share"][defined] - stat["share_null"][defined], above=0.0, kind="control",
                   note="null: each bifurcation moved by whole weight cycles, so its phase in Γ(t) is kept"),
    ]  # fmt: skip
    h = np.asarray(run_["hessian"]) / n
    acc = np.asarray(run_["acc"])
    result.tables.append(
        f"SM II setting: {d.name}, n = {n}, CNN {channels} channels (3×3, ReLU, global average pooling, "
        f"{n_params} parameters), full-batch GD with η = {eta_mean:.4g} on the mean loss ({_ETA:g} × 2/λ_max(H_F) at "
        f"init, median of {', '.join(f'{v:.4g}' for v in lam0)}), T = {period}, A = {amp:g}, {cfg['periods']} cycles "
        f"of 3 periods then plain CE for 3T; top-3 Hessian eigenvalues by Lanczos (order {cfg['order']}) every "
        f"{cfg['record']} steps. Per seed (mean over {seeds}): {_mean_defined(stat['crossings']):.1f} up-crossings, "
        f"{_mean_defined(stat['jumps']):.1f} bifurcations, share after a crossing {_mean_defined(stat['share']):.2f} "
        f"(phase-matched times {_mean_defined(stat['share_null']):.2f}); max λ_1, λ_2, λ_3 over the oscillating "
        f"phase {', '.join(f'{v:.3g}' for v in np.nanmax(h[:seeds, :oscillating], axis=(0, 1)))}. Final train "
        f"accuracy {acc[:seeds, -1].mean():.3f} (A = {amp:g}, mean) against {acc[seeds, -1]:.3f} (A = 1, seed 0)."
    )
    t = np.asarray(run_["steps"])
    up = np.where((h[0, 1:, 0] > threshold) & (h[0, :-1, 0] <= threshold))[0] + 1
    panels = [
        {"title": "top-3 Hessian eigenvalues of F (Lanczos), seed 0", "xlabel": "step", "ylabel": "λ", "yscale": "log",
         "experiment": [(f"λ_{i + 1}", t, h[0, :, i]) for i in range(3)] + [("λ_1, A = 1", t, h[seeds, :, 0])],
         "hlines": [("2/η", threshold)],
         "vlines": [("up-crossing of 2/η" if i == 0 else None, t[u]) for i, u in enumerate(up[:40])]},
        {"title": "train accuracy, seed 0", "xlabel": "step", "ylabel": "accuracy",
         "experiment": [(f"A = {amp:g}", t, acc[0]), ("A = 1", t, acc[seeds])],
         "vlines": [("oscillation off", off, {"color": "k", "ls": "-", "lw": 1.5})]
                   + [("bifurcation" if i == 0 else None, t[j], {"color": "C3", "lw": 0.6, "ls": ":"})
                      for i, j in enumerate(per_seed[0]["jump_records"][:40])]},
    ]  # fmt: skip
    fig = plots.curves(ctx.figure_path("oscillatory_cnn.png"), panels, title=TITLE, width=5.5)
    result.figures.append(str(fig.relative_to(ctx.out_dir)))
    result.seconds = time.perf_counter() - started
    return result
