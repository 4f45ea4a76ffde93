"""The dynamical-loss paper's setting (SM Fig. 1 analogue): spiral data, 2 -> 100 -> 3 ReLU net,
full-batch GD with η = 1 on the mean loss, oscillating class weights; bifurcations (accuracy jumps)
against the top Hessian eigenvalue crossing 2/η, and a (period, amplitude) phase diagram."""

import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from widenet import data, harness, losses, networks, plots, schedules, spectra
from widenet.experiment.train import TrainConfig, train_sweep

NAME = "oscillatory_spiral"
TITLE = "Dynamical loss on the spiral: bifurcations vs λ_max(H) crossing 2/η; (T, A) phase diagram"
CLAIM = (
    "Training with oscillating class weights drives the top Hessian eigenvalue of F across the GD "
    "stability threshold 2/η; accuracy jumps (bifurcations) follow such crossings far more often "
    "than random times do. Lanczos gives the top Hessian eigenvalue of the trained net to 1e-6. The "
    "(T, A) phase diagram of final accuracy (oscillation off for the last 3T steps) is reported against "
    "the A = 1 baseline, for the paper's width and an under-parameterised one."
)

SIZES = {
    # machinery only (pytest, seconds): thresholds are decided at "default" and "paper"
    "smoke": dict(per_class=10, width=16, small=8, period=20, amplitude=70.0, periods=3, record=5, diagram_periods=(10,), diagram_amplitudes=(1.0, 70.0)),
    "default": dict(per_class=100, width=100, small=16, period=200, amplitude=70.0, periods=20, record=25,
                    diagram_periods=(50, 200), diagram_amplitudes=(1.0, 10.0, 70.0)),
    "paper": dict(per_class=100, width=100, small=16, period=5000, amplitude=70.0, periods=10, record=25,
                  diagram_periods=(500, 2000, 5000), diagram_amplitudes=(1.0, 10.0, 30.0, 70.0)),
}  # fmt: skip


def _preceding_lag(events, crossings):
    """Records from each event back to the latest up-crossing at or before it (inf if none)."""
    lags = []
    for e in events:
        before = crossings[crossings <= e]
        lags.append(e - before.max() if before.size else np.inf)
    return np.asarray(lags, dtype=float)


def run(ctx: harness.Context):
    started = time.perf_counter()
    cfg = SIZES[ctx.size]
    result = harness.ScenarioResult(NAME, TITLE, CLAIM)
    d = data.spiral_dataset(jax.random.PRNGKey(0), n_per_class=cfg["per_class"], n_classes=3)
    x, labels = d.x_train, d.labels_train
    n = len(labels)
    eta_mean = 1.0  # the paper's η on the mean loss F; widenet sums over samples, so η = 1/N here
    period, amp = cfg["period"], cfg["amplitude"]
    off = 3 * period * cfg["periods"]
    steps = off + 3 * period
    net = networks.mlp((cfg["width"],), 3, b_std=1.0, parameterization="standard")  # 603 parameters, as the paper
    params = net.init(jax.random.PRNGKey(1), 2)

    def weights(step, args):
        return schedules.class_weights(step, n_classes=3, period=args[0], amplitude=args[1], off_after=off)[labels]

    def compute():
        stacked = jax.tree.map(lambda p: jnp.broadcast_to(p, (2,) + p.shape), params)
        config = TrainConfig(steps=steps, record_every=cfg["record"], loss="cross_entropy", n_eigs=0, n_hessian_eigs=3)
        args = jnp.array([[period, amp], [period, 1.0]])
        res = train_sweep(net.apply_fn, stacked, d, config, learning_rate=jnp.full(2, eta_mean / n), sample_weights=weights,
                          sample_weight_args=args, progress=True)  # fmt: skip
        return {"steps": res.steps, "F": res.weighted_loss, "ce": res.train_loss, "acc": res.train_accuracy,
                "hessian": res.hessian_top, "final": ravel_pytree(jax.tree.map(lambda p: p[0], res.final_params))[0]}  # fmt: skip

    run = ctx.store.cached(
        f"oscillatory_spiral_T{period}_A{amp}_p{cfg['periods']}_w{cfg['width']}_r{cfg['record']}", compute
    )
    acc, h = run["acc"][0], run["hessian"][0] / n  # Hessian of the mean loss F/N
    threshold = 2.0 / eta_mean
    jumps = np.where(np.abs(np.diff(acc)) >= 0.05)[0] + 1  # bifurcations: accuracy jumps of 5 points between records
    up = np.where((h[1:, 0] > threshold) & (h[:-1, 0] <= threshold))[0] + 1  # λ_max crosses 2/η upwards
    lags = _preceding_lag(jumps, up)
    random_times = np.random.default_rng(0).integers(1, len(acc), 4000)
    lags_random = _preceding_lag(random_times, up)
    share = np.mean(lags <= 1) if len(lags) else np.nan
    share_random = np.mean(lags_random <= 1) if len(lags_random) else np.nan
    finite_lags = lags[np.isfinite(lags)] if len(lags) else np.array([])
    median_lag = np.median(finite_lags) * cfg["record"] if finite_lags.size else np.nan
    no_events = "no bifurcations or no up-crossings at this size"
    # Lanczos vs dense at the end of the oscillating run
    _, unravel = ravel_pytree(params)
    final = unravel(jnp.asarray(run["final"]))
    w_end = weights(steps, jnp.array([period, amp]))
    f_mean = lambda p: losses.cross_entropy(net.apply_fn(p, x), d.y_train, w_end) / n  # noqa: E731
    flat = jnp.asarray(run["final"])
    dense = np.linalg.eigvalsh(jax.hessian(lambda v: f_mean(unravel(v)))(flat))[::-1][:3]
    lanczos = {
        order: np.asarray(spectra.hessian_top_eigenvalues(f_mean, final, k=3, order=order, key=jax.random.PRNGKey(7)))
        for order in (10, 20)
    }
    result.checks += [
        harness.check("up-crossings of 2/η by λ_max(H) during the oscillating phase", len(up), above=5),
        harness.check("share of bifurcations within one record (25 steps) after an up-crossing", share, above=share_random + 0.2,
                      note=f"{len(jumps)} bifurcations; median lag {median_lag:.0f} steps", undefined=no_events),
        harness.check("control: the same share for random times", share_random, below=share, kind="control",
                      undefined=no_events),
        harness.check("Lanczos (order 20) vs dense Hessian of the trained net, top eigenvalue, rel.",
                      abs(lanczos[20][0] / dense[0] - 1), below=1e-6,
                      note=f"order 10: {abs(lanczos[10][0] / dense[0] - 1):.1e} (order 10 at init: see oscillatory_linearized)"),
    ]  # fmt: skip
    # (T, A) phase diagram: final accuracy after 3T of plain CE, one vmapped sweep per width
    grid = [(T, A) for T in cfg["diagram_periods"] for A in cfg["diagram_amplitudes"]]
    diagram_steps = 3 * max(cfg["diagram_periods"]) * 20
    diagram_off = diagram_steps - 3 * max(cfg["diagram_periods"])
    table, panels_diagram, best_gain = [], [], {}
    for width in (cfg["width"], cfg["small"]):
        small_net = networks.mlp((width,), 3, b_std=1.0, parameterization="standard")
        p0 = small_net.init(jax.random.PRNGKey(1), 2)

        def weights_off(step, args):
            return schedules.class_weights(step, n_classes=3, period=args[0], amplitude=args[1], off_after=diagram_off)[
                labels
            ]

        def diagram(small_net=small_net, p0=p0, weights_off=weights_off):
            stacked = jax.tree.map(lambda p: jnp.broadcast_to(p, (len(grid),) + p.shape), p0)
            config = TrainConfig(steps=diagram_steps, record_every=diagram_steps // 20, loss="cross_entropy", n_eigs=0)
            res = train_sweep(small_net.apply_fn, stacked, d, config, learning_rate=jnp.full(len(grid), eta_mean / n),
                              sample_weights=weights_off, sample_weight_args=jnp.asarray(grid, dtype=float))  # fmt: skip
            return {"final_accuracy": res.train_accuracy[:, -1]}

        ctx.log(f"  phase diagram, width {width}: {len(grid)} (T, A) pairs, one vmapped sweep of {diagram_steps} steps")
        acc_grid = ctx.store.cached(f"oscillatory_spiral_diagram_w{width}_steps{diagram_steps}_{len(grid)}", diagram)[
            "final_accuracy"
        ]
        base = {T: a for (T, A), a in zip(grid, acc_grid) if A == 1.0}
        best_gain[width] = max(a - base[T] for (T, A), a in zip(grid, acc_grid) if A > 1.0)
        for (T, A), a in zip(grid, acc_grid):
            table.append(f"| {width} | {T} | {A:g} | {a:.3f} | {a - base[T]:+.3f} |")
        panels_diagram.append(
            {"title": f"final accuracy, width {width}", "xlabel": "amplitude A", "ylabel": "train accuracy", "xscale": "log",
             "experiment": [(f"T = {T}", [A for (TT, A) in grid if TT == T], [a for (TT, A), a in zip(grid, acc_grid) if TT == T])
                            for T in cfg["diagram_periods"]]}
        )  # fmt: skip
    result.checks.append(
        harness.check(f"under-parameterised width {cfg['small']}: best final-accuracy gain of an oscillating (T, A) over A = 1",
                      best_gain[cfg["small"]], above=0.0,
                      note=f"width {cfg['width']}: {best_gain[cfg['width']]:+.3f} (the paper claims the benefit for small nets)")
    )  # fmt: skip
    result.tables.append(
        f"SM Fig. 1 setting: spiral 3 x {cfg['per_class']}, 2 -> {cfg['width']} -> 3 ReLU with biases (standard parameterisation), "
        f"GD with η = 1 on the mean loss, T = {period}, A = {amp}, {cfg['periods']} cycles of 3 periods then plain CE for 3T. "
        f"Final train accuracy: {run['acc'][0][-1]:.3f} (A = {amp}) vs {run['acc'][1][-1]:.3f} (A = 1). "
        f"Bifurcations within 25 steps after an up-crossing of 2/η: {share:.2f} (random times: {share_random:.2f}).\n\n"
        f"Phase diagram ({diagram_steps} steps, the last {3 * max(cfg['diagram_periods'])} with plain CE):\n\n"
        "| width | T | A | final accuracy | vs A = 1 |\n|---|---|---|---|---|\n" + "\n".join(table)
    )
    t = run["steps"]
    dF = np.diff(run["F"][0] / n, prepend=np.nan)
    panels = [
        {"title": "F(t) - F(t-1) (mean loss, per record)", "xlabel": "step", "ylabel": "ΔF", "experiment": [("ΔF", t, dF)]},
        {"title": "top-3 Hessian eigenvalues of F (Lanczos)", "xlabel": "step", "ylabel": "λ", "yscale": "log",
         "experiment": [(f"λ_{i + 1}", t, h[:, i]) for i in range(3)], "hlines": [("2/η", threshold)]},
        {"title": "train accuracy", "xlabel": "step", "ylabel": "accuracy",
         "experiment": [(f"A = {amp}", t, run["acc"][0]), ("A = 1", t, run["acc"][1])], "vlines": [("oscillation off", off)]},
    ]  # fmt: skip
    fig = plots.curves(ctx.figure_path("oscillatory_spiral.png"), panels, title=TITLE, width=5.0)
    fig2 = plots.curves(ctx.figure_path("oscillatory_spiral_diagram.png"), panels_diagram, title="(T, A) phase diagram")
    result.figures += [str(fig.relative_to(ctx.out_dir)), str(fig2.relative_to(ctx.out_dir))]
    result.seconds = time.perf_counter() - started
    return result
