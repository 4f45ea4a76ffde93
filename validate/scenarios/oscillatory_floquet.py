"""Weighted MSE under oscillating class weights on class-imbalanced data: the Floquet stability
boundary of linearised GD, from the infinite-width kernel, against trained networks of several widths.

Measured stability is the growth of the residual over many periods of a trained network. In the lazy
scaling (`networks.lazy`, α large) the network's own residual is scaled down, so the growth it
measures is its linear stability, with no catapult to cut it short; the boundary is where the growth
per period crosses 1. The real network (α = 1) is trained alongside and reported: where the
weights amplify the residual strongly inside a period, it catapults below the Floquet boundary.
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

from widenet import data, harness, networks, plots, schedules
from widenet.experiment.train import TrainConfig, train_sweep
from widenet.theory import oscillatory

NAME = "oscillatory_floquet"
TITLE = "Weighted MSE with oscillating class weights: Floquet boundary vs trained wide networks"
CLAIM = (
    "For weighted MSE the linearised residual obeys r_{t+1} = (I - ηΘW_t) r_t with periodic W_t, so "
    "GD is stable below the η* at which the largest Floquet multiplier of one period reaches 1. On "
    "class-imbalanced data η* moves with (T, A): a slow period with strong emphasis lowers it below "
    "2/λ_max, a fast one raises it above. Trained networks in the lazy scaling measure their own "
    "boundary; it approaches the infinite-width prediction as the width grows (like width^-1/2)."
)

SIZES = {
    # machinery only (pytest, seconds): thresholds are decided at "default" and "paper"
    "smoke": dict(sizes=(12, 4, 4), widths=(32, 64), seeds=2, point=(2, 30.0), ratios=(0.9, 1.1, 3), cycles=6, plane=((2, 30.0), (5, 70.0)), plane_ratios=(0.9, 1.1), plane_cycles=3, map_periods=(2, 5), map_amplitudes=(1.0, 30.0)),
    "default": dict(sizes=(60, 20, 20), widths=(128, 512, 2048), seeds=4, point=(2, 30.0), ratios=(0.86, 1.14, 15),
                    cycles=40, plane=((2, 30.0), (5, 70.0), (20, 10.0), (40, 30.0)), plane_ratios=(0.9, 1.1),
                    plane_cycles=8, map_periods=(2, 3, 5, 10, 20, 40), map_amplitudes=(1.0, 3.0, 10.0, 30.0, 70.0)),
    "paper": dict(sizes=(120, 40, 40), widths=(256, 1024, 4096, 16384), seeds=8, point=(2, 30.0), ratios=(0.9, 1.1, 21),
                  cycles=60, plane=((2, 30.0), (5, 70.0), (20, 10.0), (40, 30.0), (100, 70.0)),
                  plane_ratios=(0.95, 1.05), plane_cycles=12, map_periods=(2, 3, 5, 10, 20, 40, 100, 200),
                  map_amplitudes=(1.0, 2.0, 3.0, 10.0, 30.0, 70.0)),
}  # fmt: skip

ALPHA = 1e10  # lazy scale: a residual grown 1e6-fold still moves f by only 1e-4
GROWTH_CAP = 1e12  # loss growth beyond which a lazy run is no longer read (residual 1e6-fold)


def _weights(labels):
    """Per-sample class weights; (period, amplitude) per run as `sample_weight_args`."""
    return lambda step, args: schedules.class_weights(step, n_classes=3, period=args[0], amplitude=args[1])[labels]


def _one_period(labels, period, amplitude):
    return np.asarray(schedules.class_weights(np.arange(3 * period), n_classes=3, period=period, amplitude=amplitude))[
        :, labels
    ]


def growth_per_period(loss, window=5):
    """log of the residual's growth per period, from the loss recorded once per period (C·T steps):
    the slope of ½ log L over the last `window` periods below GROWTH_CAP · L0 (the asymptotic rate,
    after slower modes have faded); inf if the cap comes within the first period."""
    loss = np.asarray(loss)
    readable = np.isfinite(loss) & (loss < GROWTH_CAP * loss[0])
    last = int(np.max(np.nonzero(readable)[0]))
    if last == 0:
        return np.inf
    first = max(last - window, 0)
    return 0.5 * np.polyfit(np.arange(first, last + 1), np.log(loss[first : last + 1]), 1)[0]


CLEAR_GROWTH = 0.1  # log growth per period above which the unstable multiplier dominates the window
FAST_GROWTH = 1.0  # above this the cap comes within ~14 periods and the window still holds transients


def measured_boundary(ratios, growth):
    """η/η*_pred where the growth per period crosses 0, extrapolated linearly from the first two runs
    that clearly grow (near the crossing the growth is too slow to dominate the window, and on the
    stable side slow modes keep it just below 0). NaN when the grid does not bracket the crossing."""
    up = np.nonzero(growth > CLEAR_GROWTH)[0]
    if up.size < 2 or up[0] == 0:
        return np.nan
    i, j = up[0], up[1]
    return ratios[i] - growth[i] * (ratios[j] - ratios[i]) / (growth[j] - growth[i])


def run(ctx: harness.Context):
    started = time.perf_counter()
    cfg = SIZES[ctx.size]
    result = harness.ScenarioResult(NAME, TITLE, CLAIM)
    d = data.spiral_dataset(jax.random.PRNGKey(0), n_per_class=cfg["sizes"], n_classes=3)
    x, labels = d.x_train, d.labels_train
    sizes = "/".join(map(str, cfg["sizes"]))
    kernel = np.asarray(networks.mlp((1,), 3, b_std=1.0).ntk(x))  # the NTK does not depend on the width
    lam = float(np.linalg.eigvalsh(kernel)[-1])

    # theory: the boundary η*(T, A) over the plane, and the Floquet radius at the static edge 2/λ_max
    periods, amps = cfg["map_periods"], cfg["map_amplitudes"]

    def theory_map():
        edge = np.zeros((len(amps), len(periods)))
        for i, a in enumerate(amps):
            for j, t in enumerate(periods):
                edge[i, j] = lam * oscillatory.stability_boundary(
                    kernel, _one_period(labels, t, a), eta_max=3.0 / lam, grid=48, rtol=1e-8
                )
        radius = oscillatory.floquet_radius_grid(kernel, labels, n_classes=3, periods=periods, amplitudes=amps,
                                                 learning_rates=[2.0 / lam])[..., 0]  # fmt: skip
        per_step = np.asarray(radius) ** (1.0 / (3 * np.asarray(periods)[:, None]))
        return {"edge": edge, "radius_per_step": per_step.T}

    ctx.log(f"  Floquet boundary over {len(periods)} x {len(amps)} (T, A) cells")
    plane_theory = ctx.store.cached(f"{NAME}_{ctx.size}_map", theory_map)

    def boundary(period, amplitude, k=kernel):
        return oscillatory.stability_boundary(k, _one_period(labels, period, amplitude), eta_max=3.0 / lam, grid=48)

    # experiment 1: lazy networks of several widths at one (T, A), a grid of η around the prediction
    period, amp = cfg["point"]
    eta_pred = boundary(period, amp)
    ratios = np.linspace(*cfg["ratios"])
    one_period = _one_period(labels, period, amp)
    steps = cfg["cycles"] * 3 * period
    per_width = {}
    for width in cfg["widths"]:
        net = networks.mlp((width,), 3, b_std=1.0)

        def compute(net=net):
            p0s = [net.init(jax.random.PRNGKey(100 + s), 2) for s in range(cfg["seeds"])]
            runs = [networks.lazy_params(p) for p in p0s for _ in ratios]
            params = jax.tree.map(lambda *p: jnp.stack(p), *runs)
            config = TrainConfig(steps=steps, record_every=3 * period, n_eigs=0, record_outputs=False,
                                 divergence_loss=1e300)  # fmt: skip
            lr = np.tile(ratios * eta_pred, cfg["seeds"]) / ALPHA**2
            args = (jnp.full(len(runs), period), jnp.full(len(runs), amp))
            res = train_sweep(networks.lazy(net.apply_fn, ALPHA), params, d, config, learning_rate=lr,
                              sample_weights=_weights(labels), sample_weight_args=args, progress=True)  # fmt: skip
            full = jax.jit(networks.empirical_ntk_full(net.apply_fn))
            own, own_radius = [], []
            for p in p0s:  # each network's own (finite-width, full output) kernel: its exact linear dynamics
                k = np.asarray(full(x, None, p))
                own.append(boundary(period, amp, k=k) / eta_pred)
                radius = jax.vmap(lambda eta, k=k: oscillatory.floquet_radius(k, one_period, learning_rate=eta))
                own_radius.append(np.asarray(jax.jit(radius)(jnp.asarray(ratios * eta_pred))))
            return {"loss": res.train_loss.reshape(cfg["seeds"], len(ratios), -1), "own": np.asarray(own),
                    "own_log_radius": np.log(np.asarray(own_radius))}  # fmt: skip

        ctx.log(f"  width {width}: {cfg['seeds']} seeds x {len(ratios)} learning rates, lazy scale {ALPHA:g}")
        out = ctx.store.cached(f"{NAME}_{ctx.size}_alpha{ALPHA:g}_w{width}", compute)
        growth = np.array([[growth_per_period(loss) for loss in seed] for seed in out["loss"]])
        measured = np.array([measured_boundary(ratios, g) for g in growth])
        clear = (growth > CLEAR_GROWTH) & (growth < FAST_GROWTH)
        rate_gaps = np.abs(growth[clear] / out["own_log_radius"][clear] - 1)
        per_width[width] = {"growth": growth, "measured": measured, "own": out["own"], "rate_gaps": rate_gaps}

    widths = np.array(cfg["widths"], dtype=float)
    rms = np.array([np.sqrt(np.mean((per_width[w]["measured"] - 1) ** 2)) for w in cfg["widths"]])
    rate_gaps = np.concatenate([per_width[w]["rate_gaps"] for w in cfg["widths"]])
    own_gap = max(np.max(np.abs(per_width[w]["measured"] / per_width[w]["own"] - 1)) for w in cfg["widths"])
    slope = harness.fit_slope(widths, rms) if np.all(np.isfinite(rms) & (rms > 0)) else np.nan
    largest = cfg["widths"][-1]
    static_miss = abs(2.0 / (lam * eta_pred * np.mean(per_width[largest]["measured"])) - 1)

    # experiment 2: across the (T, A) plane at the largest width: lazy (linear stability) and real (α = 1)
    net = networks.mlp((largest,), 3, b_std=1.0)
    p0 = net.init(jax.random.PRNGKey(100), 2)
    f0 = np.asarray(net.apply_fn(p0, x))
    lam0 = float(np.linalg.eigvalsh(networks.empirical_ntk(net.apply_fn)(x, None, p0))[-1])
    rows, agree, static_agree, total = [], 0, 0, 0
    for t, a in cfg["plane"]:
        eta_ta = boundary(t, a)
        plane_ratios = np.asarray(cfg["plane_ratios"])
        lr = plane_ratios * eta_ta
        n_steps = cfg["plane_cycles"] * 3 * t

        def compute_plane(t=t, a=a, lr=lr, n_steps=n_steps):
            runs = lambda p: jax.tree.map(lambda q: jnp.stack([q] * len(lr)), p)  # noqa: E731
            common = dict(
                sample_weights=_weights(labels), sample_weight_args=(jnp.full(len(lr), t), jnp.full(len(lr), a))
            )
            config = TrainConfig(
                steps=n_steps, record_every=3 * t, n_eigs=0, record_outputs=False, divergence_loss=1e300
            )
            lazy = train_sweep(networks.lazy(net.apply_fn, ALPHA), runs(networks.lazy_params(p0)), d, config,
                               learning_rate=lr / ALPHA**2, **common)  # fmt: skip
            config = TrainConfig(steps=n_steps, record_every=1, n_eigs=0, record_outputs=False)
            real = train_sweep(net.apply_fn, runs(p0), d, config, learning_rate=lr, **common)
            ntk = jax.jit(networks.empirical_ntk(net.apply_fn))
            lam_end = [float(np.linalg.eigvalsh(ntk(x, None, real.run(i).final_params))[-1]) for i in range(len(lr))]
            return {"lazy_loss": lazy.train_loss, "real_loss": real.train_loss, "real_lam_end": np.asarray(lam_end)}

        ctx.log(f"  (T, A) = ({t}, {a:g}) at width {largest}: lazy and real networks, η = {plane_ratios} x η*")
        out = ctx.store.cached(f"{NAME}_{ctx.size}_alpha{ALPHA:g}_plane_T{t}_A{a:g}", compute_plane)
        weights = np.tile(_one_period(labels, t, a), (cfg["plane_cycles"], 1))
        for i, ratio in enumerate(plane_ratios):
            g = growth_per_period(out["lazy_loss"][i])
            linear = oscillatory.function_space_gd(kernel, f0, d.y_train, weights, learning_rate=lr[i], loss="mse")
            linear_loss = 0.5 * np.sum((np.asarray(linear) - d.y_train) ** 2, axis=(1, 2))
            real = out["real_loss"][i]
            predicted_stable, measured_stable = ratio < 1, g < 0
            agree += predicted_stable == measured_stable
            static_agree += (lr[i] < 2.0 / lam) == measured_stable
            total += 1
            amplification = float(oscillatory.transient_amplification(kernel, _one_period(labels, t, a),
                                                                      learning_rate=lr[i]))  # fmt: skip
            rows.append(dict(T=t, A=a, edge=eta_ta * lam, ratio=ratio, stable=predicted_stable, growth=g,
                             amplification=amplification, linear_rise=linear_loss.max() / linear_loss[0],
                             real_rise=np.nanmax(real) / real[0], kernel_drop=out["real_lam_end"][i] / lam0))  # fmt: skip

    below = [r for r in rows if r["stable"]]
    quiet = [r for r in below if r["linear_rise"] < 20]  # linear theory: the loss rises less than 20-fold
    loud = [r for r in below if r["linear_rise"] > 1e3]  # a 1000-fold rise, far into the non-linear range
    quiet_gap = max((abs(r["real_rise"] / r["linear_rise"] - 1) for r in quiet), default=np.nan)
    loud_catapults = np.mean([r["kernel_drop"] < 0.9 for r in loud]) if loud else np.nan
    result.checks += [
        harness.check(f"lazy networks: growth per period vs log Floquet radius of their own full output kernel, max rel. "
                      f"gap (runs growing {CLEAR_GROWTH:g}-{FAST_GROWTH:g} per period, {len(cfg['widths'])} widths x {cfg['seeds']} seeds)",
                      np.max(rate_gaps), below=0.02, note=f"median {np.median(rate_gaps):.1e} over {rate_gaps.size} runs; "
                      "the slowest-growing runs have not fully outgrown the other modes in the window"),
        harness.check("their measured boundary vs their own kernel's η*, max rel. gap (extrapolated from the grid)",
                      own_gap, below=5e-3),
        harness.check(f"rms |measured/predicted η* - 1| at width {largest} (T = {period}, A = {amp:g})",
                      rms[-1], below=0.03),
        harness.check("slope of that error in width (theory: -1/2, kernel fluctuations)", slope, below=-0.3,
                      kind="rate", note=" -> ".join(f"{v:.3f}" for v in rms)),
        harness.check(f"stability across {len(cfg['plane'])} (T, A) points x {len(cfg['plane_ratios'])} learning rates, "
                      f"width {largest}: fraction of lazy runs as the Floquet prediction", agree / total, above=0.999),
        harness.check("real networks (α = 1) below η* where linear theory keeps the loss rise < 20x: max L/L0 vs "
                      "linear theory (Θ_∞, the net's own f0), max rel. gap", quiet_gap, below=0.15,
                      note=f"{len(quiet)} runs"),
        harness.check("real networks below η* where linear theory predicts a > 1000x rise: fraction that catapult "
                      "(kernel falls, λ_end/λ_0 < 0.9)", loud_catapults, above=0.999, note=f"{len(loud)} runs"),
        harness.check("control: the static GD edge 2/λ_max misses the measured boundary, rel.", static_miss,
                      above=0.05, kind="control"),
        harness.check("control: fraction of those runs the static edge η < 2/λ_max classifies right",
                      static_agree / total, below=0.8, kind="control"),
    ]  # fmt: skip

    # figures: the theory plane, the width series, growth against η
    mark = [(periods.index(t), amps.index(a)) for t, a in cfg["plane"] if t in periods and a in amps]
    fig = plots.heatmap(ctx.figure_path("oscillatory_floquet_plane.png"), [
        {"title": "Floquet boundary η*·λ_max (GD alone: 2)", "values": plane_theory["edge"], "x": periods, "y": amps,
         "xlabel": "period T (steps)", "ylabel": "amplitude A", "label": "η* λ_max", "marks": mark, "cmap": "coolwarm"},
        {"title": "Floquet radius per step at η = 2/λ_max", "values": plane_theory["radius_per_step"], "x": periods,
         "y": amps, "xlabel": "period T (steps)", "ylabel": "amplitude A", "label": "|μ|^(1/CT)", "fmt": "{:.3f}"},
    ], title=f"Weighted MSE, spiral {sizes}, infinite-width NTK (outlined: measured at width {largest})")  # fmt: skip
    result.figures.append(str(fig.relative_to(ctx.out_dir)))
    panels = [
        {"title": f"growth of the lazy residual per period (T = {period}, A = {amp:g}), seed 0", "xlabel": "η / η*_pred",
         "ylabel": "log growth per period", "hlines": [("stable | unstable", 0.0)], "vlines": [("prediction", 1.0)],
         "experiment": [(f"width {w}", ratios, per_width[w]["growth"][0]) for w in cfg["widths"]]},
        {"title": "measured boundary / predicted", "xlabel": "width", "ylabel": "η*_measured / η*_pred", "xscale": "log",
         "hlines": [("prediction", 1.0), ("static edge 2/λ_max", 2.0 / (lam * eta_pred))],
         "experiment": [(f"seed {s}", widths, [per_width[w]["measured"][s] for w in cfg["widths"]])
                        for s in range(cfg["seeds"])]},
    ]  # fmt: skip
    fig = plots.curves(ctx.figure_path("oscillatory_floquet_widths.png"), panels, title=TITLE)
    result.figures.append(str(fig.relative_to(ctx.out_dir)))
    fig = plots.rate(ctx.figure_path("oscillatory_floquet_rate.png"), widths, rms, xlabel="width",
                     ylabel="rms |η*_measured/η*_pred - 1|", slope=slope, reference=-0.5,
                     title="boundary error vs width")  # fmt: skip
    result.figures.append(str(fig.relative_to(ctx.out_dir)))

    table = ["| T | A | η*·λ_max | η/η* | Floquet | lazy growth/period | max‖Φ_t‖ | linear max L/L0 | real net max L/L0 | real λ_end/λ_0 |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        table.append(f"| {r['T']} | {r['A']:g} | {r['edge']:.3f} | {r['ratio']:.2f} | {'stable' if r['stable'] else 'unstable'} "
                     f"| {np.exp(r['growth']):.4f} | {r['amplification']:.3g} | {r['linear_rise']:.3g} | {r['real_rise']:.3g} "
                     f"| {r['kernel_drop']:.3f} |")  # fmt: skip
    result.tables += [
        f"Spiral {sizes} (class-imbalanced), 2 -> W -> 3 ReLU with biases (NTK parameterisation), weighted MSE "
        f"(sum over samples), triangle class weights; λ_max = {lam:.4g} (infinite-width NTK). Lazy scale α = {ALPHA:g}. "
        f"Width series at T = {period}, A = {amp:g}: predicted η*·λ_max = {eta_pred * lam:.4f}; measured boundary / "
        "predicted per width (mean ± sd over seeds): "
        + ", ".join(f"{w}: {np.mean(per_width[w]['measured']):.4f} ± {np.std(per_width[w]['measured']):.4f}"
                    for w in cfg["widths"]) + ".",
        "\n".join(table),
        "Reading the table: the lazy network follows the Floquet prediction at every (T, A). The real network (α = 1) "
        "shares its linear dynamics only while its residual stays small: where the weights amplify the residual "
        "strongly inside a period (max‖Φ_t‖ large: slow periods, strong emphasis of the majority class), the real "
        "network's loss rises far (max L/L0) and it catapults (its kernel falls, λ_end/λ_0 < 1) even below η*.",
    ]  # fmt: skip
    result.seconds = time.perf_counter() - started
    return result
