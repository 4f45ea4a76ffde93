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

from widenet import compare, data, harness, networks, plots, schedules
from widenet.experiment.train import TrainConfig, train_sweep
from widenet.theory import oscillatory

NAME = "oscillatory_floquet"
TITLE = "Weighted MSE with oscillating class weights: Floquet boundary vs trained wide networks"
CLAIM = (
    "For weighted MSE the linearised residual obeys r_{t+1} = (I - ηΘW_t) r_t with periodic W_t, so "
    "GD is stable below the η* at which the largest Floquet multiplier of one weight cycle (C·T steps) reaches 1. On "
    "class-imbalanced data η* moves with (T, A): a slow period with strong emphasis lowers it below "
    "2/λ_max, a fast one raises it above. Trained networks in the lazy scaling measure their own "
    "boundary; it approaches the infinite-width prediction as the width grows, like width^-1/2 (the "
    "kernel's fluctuations at initialisation), and the static GD edge 2/λ_max misses it."
)

SIZES = {
    # machinery only (pytest, seconds): thresholds are decided at "default" and "paper"
    "smoke": dict(sizes=(12, 4, 4), widths=(32, 64), seeds=2, point=(2, 30.0), ratios=(0.9, 1.1, 3), cycles=6, plane=((2, 30.0), (5, 70.0)), plane_ratios=(0.9, 1.1), plane_cycles=3, plane_seeds=2, map_periods=(2, 5), map_amplitudes=(1.0, 30.0), map_grid=24, map_rtol=1e-6),
    # default: widths to 1024 and 11 learning rates per width (until 2026-12-06: to 2048 and 15; cut to keep
    # the harness under 15 minutes)
    "default": dict(sizes=(60, 20, 20), widths=(128, 512, 1024), seeds=5, point=(2, 30.0), ratios=(0.86, 1.14, 11),
                    cycles=40, plane=((2, 30.0), (5, 70.0), (20, 10.0), (40, 30.0)), plane_ratios=(0.9, 1.1),
                    plane_cycles=8, plane_seeds=5, map_periods=(2, 3, 5, 10, 20, 40), map_amplitudes=(1.0, 3.0, 10.0, 30.0, 70.0),
                    map_grid=16, map_rtol=1e-5),
    "paper": dict(sizes=(120, 40, 40), widths=(256, 1024, 4096, 16384), seeds=8, point=(2, 30.0), ratios=(0.9, 1.1, 21),
                  cycles=60, plane=((2, 30.0), (5, 70.0), (20, 10.0), (40, 30.0), (100, 70.0)),
                  plane_ratios=(0.95, 1.05), plane_cycles=12, plane_seeds=8, map_periods=(2, 3, 5, 10, 20, 40, 100, 200),
                  map_amplitudes=(1.0, 2.0, 3.0, 10.0, 30.0, 70.0), map_grid=48, map_rtol=1e-8),
}  # fmt: skip

ALPHA = 1e10  # lazy scale: a residual grown 1e6-fold still moves f by only 1e-4
UNBRACKETED = "the η grid does not bracket the seed's boundary (fewer than two clearly growing runs)"
FAST_GROWTH = 1.0  # above this the cap comes within ~14 periods and the window still holds transients


def _weights(labels):
    """Per-sample class weights; (period, amplitude) per run as `sample_weight_args`."""
    return lambda step, args: schedules.class_weights(step, n_classes=3, period=args[0], amplitude=args[1])[labels]


def _cycle(labels, period, amplitude):
    return np.asarray(oscillatory.cycle_weights(labels, n_classes=3, period=period, amplitude=amplitude))


def _defined_mean(values, digits=3):
    """The mean of the finite values as text, or "undefined" when there are none."""
    finite = np.asarray(values)[np.isfinite(values)]
    return f"{finite.mean():.{digits}f}" if finite.size else "undefined"


def run(ctx: harness.Context):
    started = time.perf_counter()
    cfg = SIZES[ctx.size]
    result = harness.ScenarioResult(NAME, TITLE, CLAIM)
    d = data.spiral(jax.random.PRNGKey(0), n_per_class=cfg["sizes"], n_classes=3)
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
                # a figure (2 decimals shown), no check: at default a 16-point scan to rtol 1e-5 (48 and 1e-8, then 24
                # and 1e-6, until 2026-12-07; against 24 and 1e-6, 16 and 1e-4 moved no cell by more than 9e-5,
                # measured); paper keeps 48 and 1e-8
                edge[i, j] = lam * oscillatory.stability_boundary(
                    kernel, _cycle(labels, t, a), eta_max=3.0 / lam, grid=cfg["map_grid"], rtol=cfg["map_rtol"]
                )
        radius = oscillatory.floquet_radius_grid(kernel, labels, n_classes=3, periods=periods, amplitudes=amps,
                                                 learning_rates=[2.0 / lam])[..., 0]  # fmt: skip
        per_step = np.asarray(radius) ** (1.0 / (3 * np.asarray(periods)[:, None]))
        return {"edge": edge, "radius_per_step": per_step.T}

    ctx.log(f"  Floquet boundary over {len(periods)} x {len(amps)} (T, A) cells")
    plane_theory = ctx.store.cached(f"{NAME}_{ctx.size}_map", theory_map)

    # experiment 1: lazy networks of several widths at one (T, A), a grid of η around the prediction
    # (compare.floquet: each width a vmapped sweep over seeds x ratios, each network's own kernel beside it)
    period, amp = cfg["point"]
    ratios = np.linspace(*cfg["ratios"])
    parts = []
    for width in cfg["widths"]:

        def compute(width=width):
            c = compare.floquet(lambda w: networks.mlp((w,), 3, b_std=1.0), d, widths=(width,), seeds=cfg["seeds"],
                                period=period, amplitude=amp, ratios=ratios, cycles=cfg["cycles"],
                                key=jax.random.PRNGKey(100), lazy_scale=ALPHA, progress=f"floquet width {width}")  # fmt: skip
            return {"eta_star": c.eta_star, "static_edge": c.static_edge, "own_eta_star": c.own_eta_star[0],
                    "own_log_radius": c.own_log_radius[0], "growth": c.growth[0], "train_loss": c.train_loss[0]}  # fmt: skip

        ctx.log(f"  width {width}: {cfg['seeds']} seeds x {len(ratios)} learning rates, lazy scale {ALPHA:g}")
        parts.append(ctx.store.cached(f"{NAME}_{ctx.size}_alpha{ALPHA:g}_w{width}", compute))
    comp = compare.FloquetComparison(
        widths=tuple(cfg["widths"]), seeds=cfg["seeds"], ratios=ratios, period=period, amplitude=float(amp),
        eta_star=float(parts[0]["eta_star"]), static_edge=float(parts[0]["static_edge"]),
        own_eta_star=np.stack([p["own_eta_star"] for p in parts]), own_log_radius=np.stack([p["own_log_radius"] for p in parts]),
        growth=np.stack([p["growth"] for p in parts]), train_loss=np.stack([p["train_loss"] for p in parts]),
    )  # fmt: skip
    measured = comp.measured_boundary()  # (W, S) in units of the infinite-width η*
    clear = (comp.growth > compare.CLEAR_GROWTH) & (comp.growth < FAST_GROWTH)  # (W, S, R)
    with np.errstate(divide="ignore", invalid="ignore"):  # only the clearly growing runs' gaps are kept
        gaps = np.where(clear, np.abs(comp.growth / comp.own_log_radius - 1), np.nan)
    rate_gaps = gaps[clear]
    # a seed's max over its clearly growing runs (NaN, left out as undefined, when it has none)
    seed_gaps = np.array([np.nanmax(g) if np.isfinite(g).any() else np.nan for g in gaps.transpose(1, 0, 2)])
    own_gap = np.abs(measured * comp.eta_star / comp.own_eta_star - 1)  # (W, S)
    widths = np.array(cfg["widths"], dtype=float)
    miss = np.abs(measured - 1.0)  # (W, S)
    largest = cfg["widths"][-1]
    static_miss = np.abs(measured[-1] * comp.eta_star / comp.static_edge - 1)  # the rival on the same runs

    # experiment 2: across the (T, A) plane at the largest width, over seeds: lazy (linear stability) and
    # real (α = 1) networks from the same inits, each init at every (T, A) point and learning rate
    net = networks.mlp((largest,), 3, b_std=1.0)
    n_seeds, plane_ratios = cfg["plane_seeds"], np.asarray(cfg["plane_ratios"])
    inits = [net.init(k, 2) for k in jax.random.split(jax.random.PRNGKey(100), n_seeds)]
    f0s = [np.asarray(net.apply_fn(p, x)) for p in inits]
    ntk = jax.jit(networks.empirical_ntk(net.apply_fn))
    lam0 = np.array([float(np.linalg.eigvalsh(ntk(x, None, p))[-1]) for p in inits])
    # runs seed-major: run s * R + i is init s at plane_ratios[i]
    stacked = jax.tree.map(lambda *q: jnp.stack([v for v in q for _ in plane_ratios]), *inits)
    rows = []
    for t, a in cfg["plane"]:
        cycle = _cycle(labels, t, a)  # one weight cycle at this point: the boundary, amplification and theory use it
        eta_ta = oscillatory.stability_boundary(kernel, cycle, eta_max=3.0 / lam, grid=48)
        lr = np.tile(plane_ratios * eta_ta, n_seeds)
        # the window: plane_cycles, and never fewer steps than the width series' (its `cycles` at T = `period`):
        # inside a shorter one a fast period's transient amplification still dominates the loss
        # (until 2026-12-07 8 cycles at every point: at T = 2, 48 steps, 3 of 5 seeds' stable runs still rose)
        n_cycles = max(cfg["plane_cycles"], -(-cfg["cycles"] * period // t))
        n_steps = n_cycles * 3 * t

        def compute_plane(t=t, a=a, lr=lr, n_steps=n_steps):
            common = dict(
                sample_weights=_weights(labels), sample_weight_args=(jnp.full(len(lr), t), jnp.full(len(lr), a))
            )
            config = TrainConfig(
                steps=n_steps, record_every=3 * t, n_eigs=0, record_outputs=False, divergence_loss=1e300
            )
            lazy = train_sweep(networks.lazy(net.apply_fn, ALPHA), networks.lazy_params(stacked), d, config,
                               learning_rate=lr / ALPHA**2, **common)  # fmt: skip
            config = TrainConfig(steps=n_steps, record_every=1, n_eigs=0, record_outputs=False)
            real = train_sweep(net.apply_fn, stacked, d, config, learning_rate=lr, **common)
            lam_end = [float(np.linalg.eigvalsh(ntk(x, None, real.run(i).final_params))[-1]) for i in range(len(lr))]
            return {"lazy_loss": lazy.train_loss, "real_loss": real.train_loss, "real_lam_end": np.asarray(lam_end)}

        ctx.log(f"  (T, A) = ({t}, {a:g}) at width {largest}: {n_seeds} seeds, lazy and real networks, "
                f"η = {plane_ratios} x η*")  # fmt: skip
        out = ctx.store.cached(f"{NAME}_{ctx.size}_alpha{ALPHA:g}_plane_T{t}_A{a:g}_s{n_seeds}", compute_plane)
        weights = np.tile(cycle, (n_cycles, 1))
        # the infinite-width theory over the lazy runs' own window and start (g = 0): where its growth per cycle
        # does not have the sign of its Floquet radius, the window is too short to decide the run (none at default)
        window_sign = []
        for eta_i in lr[: len(plane_ratios)]:
            own = oscillatory.function_space_gd(kernel, np.zeros_like(d.y_train), d.y_train, weights,
                                                learning_rate=eta_i, loss="mse")  # fmt: skip
            window_loss = 0.5 * np.sum((np.asarray(own) - d.y_train) ** 2, axis=(1, 2))[:: 3 * t]
            window_sign.append(compare.growth_per_cycle(window_loss) < 0)
        for i, ratio in enumerate(plane_ratios):
            amplification = float(oscillatory.transient_amplification(kernel, cycle, learning_rate=lr[i]))
            for seed in range(n_seeds):
                run_ = seed * len(plane_ratios) + i
                linear = oscillatory.function_space_gd(kernel, f0s[seed], d.y_train, weights, learning_rate=lr[i],
                                                       loss="mse")  # fmt: skip
                linear_loss = 0.5 * np.sum((np.asarray(linear) - d.y_train) ** 2, axis=(1, 2))
                real = out["real_loss"][run_]
                rows.append(dict(T=t, A=a, cycles=n_cycles, seed=seed, edge=eta_ta * lam, ratio=ratio, stable=ratio < 1,
                                 decided=window_sign[i] == (ratio < 1),
                                 growth=compare.growth_per_cycle(out["lazy_loss"][run_]), static=lr[i] < 2.0 / lam,
                                 amplification=amplification, linear_rise=linear_loss.max() / linear_loss[0],
                                 real_rise=np.nanmax(real) / real[0], kernel_drop=out["real_lam_end"][run_] / lam0[seed]))  # fmt: skip

    def per_seed(statistic, where=lambda r: True):
        """`statistic` of each seed's plane runs that satisfy `where` (NaN for a seed with none)."""
        chosen = [[r for r in rows if r["seed"] == s and where(r)] for s in range(n_seeds)]
        return np.array([statistic(rs) if rs else np.nan for rs in chosen])

    as_static = per_seed(lambda rs: np.mean([r["static"] == (r["growth"] < 0) for r in rs]), lambda r: r["decided"])
    quiet_gap = per_seed(
        lambda rs: max(abs(r["real_rise"] / r["linear_rise"] - 1) for r in rs),
        lambda r: r["stable"] and r["linear_rise"] < 20,
    )  # linear theory: the loss rises < 20-fold
    loud = lambda r: r["stable"] and r["linear_rise"] > 1e3  # noqa: E731 - a 1000-fold rise, far into the non-linear range
    n_quiet = sum(r["stable"] and r["linear_rise"] < 20 for r in rows)
    undecided = [r for r in rows if not r["decided"]]
    window_note = "; left out (the theory's own window growth has the other sign): " + (", ".join(
        f"seed {r['seed']} at T = {r['T']}, A = {r['A']:g}, η/η* = {r['ratio']:.2f}" for r in undecided) or "none")  # fmt: skip
    wrong = [r for r in rows if r["decided"] and r["stable"] != (r["growth"] < 0)]
    missed = "runs not as predicted: " + (", ".join(
        f"seed {r['seed']} at T = {r['T']}, A = {r['A']:g}, η/η* = {r['ratio']:.2f} (growth per cycle {np.exp(r['growth']):.4f})"
        for r in wrong) or "none")  # fmt: skip
    plane_runs = f"{len(cfg['plane'])} (T, A) points x {len(plane_ratios)} learning rates per seed, width {largest}"
    result.checks += [
        harness.seed_check(f"lazy networks: growth per cycle vs log Floquet radius of their own full output kernel, a "
                           f"seed's max rel. gap over its runs growing {compare.CLEAR_GROWTH:g}-{FAST_GROWTH:g} per cycle "
                           f"({len(cfg['widths'])} widths)", seed_gaps, below=0.02, undefined="no clearly growing run",
                           note=f"median {np.median(rate_gaps):.1e} over {rate_gaps.size} runs; per seed "
                           + ", ".join(f"{v:.3f}" for v in seed_gaps)),
        harness.seed_check(f"width {largest}: |measured boundary / the network's own kernel's η* - 1| (extrapolated "
                           "from the grid)", own_gap[-1], below=5e-3, undefined=UNBRACKETED),
        harness.seed_check(f"width {largest}: |measured / infinite-width η* - 1| (T = {period}, A = {amp:g})",
                           miss[-1], below=0.03, undefined=UNBRACKETED),
        harness.rate_check("rate of that miss in width (theory: -1/2, the kernel's fluctuations at init)", widths,
                           miss.T, exponent=-0.5, note=" -> ".join(_defined_mean(row) for row in miss),
                           undefined=UNBRACKETED, paired=False),
        harness.seed_check(f"control width {largest}: static edge 2/λ_max's miss minus the Floquet boundary's, same runs",
                           static_miss - miss[-1], above=0.0, kind="control", undefined=UNBRACKETED),
        harness.count_check(f"stability across {plane_runs}: lazy runs not as the Floquet prediction ({n_seeds} seeds)",
                            [r["stable"] != (r["growth"] < 0) for r in rows if r["decided"]],
                            seeds=[r["seed"] for r in rows if r["decided"]], note=missed + window_note),
        harness.seed_check("real networks (α = 1) below η* where linear theory keeps the loss rise < 20x: a seed's max "
                           "rel. gap of max L/L0 to linear theory (Θ_∞, the net's own f0)", quiet_gap, below=0.15,
                           note=f"{n_quiet} runs over {n_seeds} seeds; per seed " + ", ".join(f"{v:.3f}" for v in quiet_gap), undefined="no run of the seed in that range"),
        harness.count_check("real networks below η* where linear theory predicts a > 1000x rise: runs that do not "
                            "catapult (a catapult: the kernel falls, λ_end/λ_0 < 0.9)",
                            [not r["kernel_drop"] < 0.9 for r in rows if loud(r)],
                            seeds=[r["seed"] for r in rows if loud(r)]),
        harness.seed_check("control: fraction of a seed's lazy runs the static edge η < 2/λ_max classifies right, "
                           "same runs", as_static, below=0.8, kind="control"),
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
    fig = comp.plot(ctx.figure_path("oscillatory_floquet_widths.png"))
    result.figures.append(str(fig.relative_to(ctx.out_dir)))
    rate = next(c for c in result.checks if c.kind == "rate")
    fig = plots.rate(ctx.figure_path("oscillatory_floquet_rate.png"), widths, miss.T, xlabel="width",
                     ylabel="|η*_measured / η*_∞ - 1|", reference=-0.5, slope=rate.value, interval=rate.interval,
                     title=f"boundary miss vs width ({cfg['seeds']} seeds per width)")  # fmt: skip
    result.figures.append(str(fig.relative_to(ctx.out_dir)))

    table = ["| T | A | cycles | η*·λ_max | η/η* | Floquet | lazy runs as predicted | lazy growth per cycle (mean) | max‖Φ_t‖ "
             "| linear max L/L0 (median) | real net max L/L0 (median) | real λ_end/λ_0 (mean) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for t, a in cfg["plane"]:
        for ratio in plane_ratios:
            rs = [r for r in rows if r["T"] == t and r["A"] == a and r["ratio"] == ratio]
            r0 = rs[0]
            table.append(f"| {t} | {a:g} | {r0['cycles']} | {r0['edge']:.3f} | {ratio:.2f} | {'stable' if r0['stable'] else 'unstable'} "
                         f"| {sum(r['stable'] == (r['growth'] < 0) for r in rs)}/{len(rs)} "
                         f"| {np.mean([np.exp(r['growth']) for r in rs]):.4f} | {r0['amplification']:.3g} "
                         f"| {np.median([r['linear_rise'] for r in rs]):.3g} | {np.median([r['real_rise'] for r in rs]):.3g} "
                         f"| {np.mean([r['kernel_drop'] for r in rs]):.3f} |")  # fmt: skip
    result.tables += [
        f"Spiral {sizes} (class-imbalanced), 2 -> W -> 3 ReLU with biases (NTK parameterisation), weighted MSE "
        f"(sum over samples), triangle class weights; λ_max = {lam:.4g} (infinite-width NTK). Lazy scale α = {ALPHA:g}. "
        f"Width series at T = {period}, A = {amp:g}: predicted η*·λ_max = {comp.eta_star * lam:.4f}; measured boundary / "
        "predicted per width (mean ± sd over seeds): "
        + ", ".join(f"{w}: {_defined_mean(measured[i], 4)} ± {np.std(measured[i][np.isfinite(measured[i])]) if np.isfinite(measured[i]).any() else np.nan:.4f}"
                    for i, w in enumerate(cfg["widths"]))
        + ".",
        f"Across the (T, A) plane at width {largest}, {n_seeds} seeds (inits) per row, each trained lazy and real:\n\n"
        + "\n".join(table),
        "Reading the table: the lazy network follows the Floquet prediction at every (T, A). The real network (α = 1) "
        "shares its linear dynamics only while its residual stays small: where the weights amplify the residual "
        "strongly inside a period (max‖Φ_t‖ large: slow periods, strong emphasis of the majority class), the real "
        "network's loss rises far (max L/L0) and it catapults (its kernel falls, λ_end/λ_0 < 1) even below η*.",
    ]  # fmt: skip
    result.seconds = time.perf_counter() - started
    return result
