"""The dynamical-loss paper's setting (SM Fig. 1 analogue): spiral data, 2 -> 100 -> 3 ReLU net,
full-batch GD with η = 1 on the mean loss, oscillating class weights; bifurcations (accuracy jumps)
against the top Hessian eigenvalue crossing 2/η, further bifurcations against the 2nd and 3rd
eigenvalues crossing it (SM I), and a (period, amplitude) phase diagram."""

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
    "stability threshold 2/η; accuracy jumps (bifurcations) follow such crossings more often than "
    "times at the same phase of the weight cycle do (the null: both are locked to Γ(t), so the null "
    "keeps the phase and moves the cycle). The 2nd and 3rd Hessian eigenvalues trigger further bifurcations "
    "when they cross the same 2/η (SM I): an episode where λ_1 crosses ends in a bifurcation more often when "
    "λ_2 (λ_3) crosses too, more than when as many episodes are chosen by λ_1's overshoot. Lanczos gives the top Hessian eigenvalue of the trained net "
    "to 1e-6. The (T, A) phase diagram of final accuracy (oscillation off for the last 3T steps) is "
    "measured over seeds against the A = 1 baseline, for an under-parameterised width (and the paper's width at "
    "--size paper); "
    "at the under-parameterised width, switching the oscillation off for the last 3·max(T) steps ends with a higher "
    "accuracy than continuing it (SM III)."
)

SIZES = {
    # machinery only (pytest, seconds): thresholds are decided at "default" and "paper"
    "smoke": dict(per_class=10, width=16, small=8, period=20, amplitude=70.0, periods=3, record=5, seeds=2,
                  diagram_periods=(10,), diagram_amplitudes=(1.0, 70.0), diagram_seeds=2, diagram_wide=True),
    # default: 10 weight cycles of 3T, in the main run and the diagram (20 until 2026-12-02; halved to
    # keep the default harness under 15 minutes on 2 cores)
    # diagram_wide: the phase diagram also at `width` (context for the under-parameterised width's checks, a
    # note and a figure panel, no check); left out at default since 2026-12-07 (~30 s) to keep the harness
    # under 15 minutes
    # seeds: 5 at default (4 until 2026-12-07; issue 10 asks for at least 5)
    "default": dict(per_class=100, width=100, small=16, period=200, amplitude=70.0, periods=10, record=25, seeds=5,
                    diagram_periods=(50, 200), diagram_amplitudes=(1.0, 10.0, 70.0), diagram_seeds=5,
                    diagram_wide=False),
    "paper": dict(per_class=100, width=100, small=16, period=5000, amplitude=70.0, periods=10, record=25, seeds=8,
                  diagram_periods=(500, 2000, 5000), diagram_amplitudes=(1.0, 10.0, 30.0, 70.0), diagram_seeds=8,
                  diagram_wide=True),
}  # fmt: skip


def _preceding_lag(events, crossings):
    """Records from each event back to the latest up-crossing at or before it (inf if none)."""
    lags = []
    for e in events:
        before = crossings[crossings <= e]
        lags.append(e - before.max() if before.size else np.inf)
    return np.asarray(lags, dtype=float)


def _events(acc, top, threshold, cycle):
    """One seed's bifurcations (accuracy jumps of 5 points between records), up-crossings of 2/η by
    λ_max(H), the share of bifurcations within one record after an up-crossing, and the same share
    for the phase-matched null: every bifurcation moved by a whole number of weight cycles."""
    jumps = np.where(np.abs(np.diff(acc)) >= 0.05)[0] + 1
    up = np.where((top[1:] > threshold) & (top[:-1] <= threshold))[0] + 1
    share = float(np.mean(_preceding_lag(jumps, up) <= 1)) if len(jumps) and len(up) else np.nan
    moved = np.array([j + c * cycle for j in jumps for c in range(-len(acc) // cycle, len(acc) // cycle + 1) if c != 0
                      and 1 <= j + c * cycle < len(acc)], dtype=int)  # fmt: skip
    share_null = float(np.mean(_preceding_lag(moved, up) <= 1)) if len(moved) and len(up) else np.nan
    return {"jumps": float(len(jumps)), "crossings": float(len(up)), "share": share, "share_null": share_null,
            "jump_records": jumps}  # fmt: skip


def _episodes(acc, top, threshold):
    """One seed's instability episodes (SM I): each up-crossing of 2/η by λ_1(H) at record u, read
    over records u and u + 1 (the lag of the bifurcation share above). Per episode: a bifurcation (an
    accuracy jump of 5 points at u or u + 1), and the peaks of λ_1, λ_2, λ_3 over the episode.

    SM I: "second and third bifurcations seem to correspond to the second and third largest
    eigenvalues crossing the same threshold". Statistic: P(bifurcation | λ_2 also above 2/η) minus
    P(bifurcation | λ_2 below). Rival (λ_1 alone sets the instability's strength): the same number of
    episodes chosen by the largest λ_1 peaks instead, and the same difference.
    """
    jump = np.zeros(len(acc), dtype=bool)
    jump[1:] = np.abs(np.diff(acc)) >= 0.05
    up = np.where((top[1:, 0] > threshold) & (top[:-1, 0] <= threshold))[0] + 1
    up = up[up + 1 < len(acc)]
    bif = np.array([jump[u : u + 2].any() for u in up], dtype=bool)
    peak = np.array([top[u : u + 2].max(axis=0) for u in up]).reshape(-1, 3)
    second, third = peak[:, 1] > threshold, peak[:, 2] > threshold

    def split(group):
        return bif[group].mean() - bif[~group].mean() if 0 < group.sum() < len(group) else np.nan

    by_first = np.zeros(len(up), dtype=bool)
    by_first[np.argsort(-peak[:, 0], kind="stable")[: second.sum()]] = True
    first_gain = split(by_first) if np.any(by_first != second) else np.nan  # the same episodes: no contest
    return {"episodes": float(len(up)), "second": float(second.sum()), "third": float(third.sum()),
            "p_second": bif[second].mean() if second.any() else np.nan,
            "p_first_only": bif[~second].mean() if (~second).any() else np.nan,
            "second_gain": split(second), "first_gain": first_gain, "third_gain": split(third)}  # fmt: skip


def _mean_defined(values):
    """Mean of the finite values, nan (without numpy's empty-slice warning) when there are none."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


def run(ctx: harness.Context):
    started = time.perf_counter()
    cfg = SIZES[ctx.size]
    result = harness.ScenarioResult(NAME, TITLE, CLAIM)
    d = data.spiral(jax.random.PRNGKey(0), n_per_class=cfg["per_class"], n_classes=3)
    x, labels = d.x_train, d.labels_train
    n = len(labels)
    eta_mean = 1.0  # the paper's η on the mean loss F; widenet sums over samples, so η = 1/N here
    period, amp = cfg["period"], cfg["amplitude"]
    off = 3 * period * cfg["periods"]
    steps = off + 3 * period
    net = networks.mlp((cfg["width"],), 3, b_std=1.0, parameterization="standard")  # 603 parameters, as the paper
    seeds = cfg["seeds"]
    inits = [net.init(jax.random.PRNGKey(1 + s_), 2) for s_ in range(seeds)]
    params = inits[0]

    def weights(step, args):
        return schedules.class_weights(step, n_classes=3, period=args[0], amplitude=args[1], off_after=off)[labels]

    def compute():
        # runs 0..seeds-1: A = amp from each seed's init; run `seeds`: A = 1 from seed 0's init
        stacked = jax.tree.map(lambda *p: jnp.stack(p), *inits, inits[0])
        config = TrainConfig(steps=steps, record_every=cfg["record"], loss="cross_entropy", n_eigs=0, n_hessian_eigs=3)
        args = jnp.array([[period, amp]] * seeds + [[period, 1.0]])
        res = train_sweep(net.apply_fn, stacked, d, config, learning_rate=jnp.full(seeds + 1, eta_mean / n),
                          sample_weights=weights, sample_weight_args=args, progress="oscillatory_spiral")  # fmt: skip
        return {"steps": res.steps, "F": res.weighted_loss, "ce": res.train_loss, "acc": res.train_accuracy,
                "hessian": res.hessian_top, "final": ravel_pytree(jax.tree.map(lambda p: p[0], res.final_params))[0]}  # fmt: skip

    run = ctx.store.cached(
        f"oscillatory_spiral_T{period}_A{amp}_p{cfg['periods']}_w{cfg['width']}_r{cfg['record']}_s{seeds}", compute
    )
    threshold = 2.0 / eta_mean
    cycle = 3 * period // cfg["record"]  # records per cycle of the weights (C = 3 periods)
    oscillating = off // cfg["record"]  # records before the oscillation is switched off
    per_seed = [_events(run["acc"][s_][:oscillating], run["hessian"][s_][:oscillating, 0] / n, threshold, cycle)
                for s_ in range(seeds)]  # fmt: skip
    stat = {name: np.array([ps[name] for ps in per_seed]) for name in per_seed[0] if name != "jump_records"}
    h = run["hessian"][0] / n  # seed 0, for the figure; Hessian of the mean loss F/N
    up = np.where((h[1:, 0] > threshold) & (h[:-1, 0] <= threshold))[0] + 1
    defined = np.isfinite(stat["share"]) & np.isfinite(stat["share_null"])
    no_events = f"bifurcations and up-crossings in only {defined.sum()} of {seeds} seeds; a longer run decides it"
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
    diff = stat["share"][defined] - stat["share_null"][defined]
    episodes = [_episodes(run["acc"][s_][:oscillating], run["hessian"][s_][:oscillating] / n, threshold)
                for s_ in range(seeds)]  # fmt: skip
    ep = {name: np.array([e[name] for e in episodes]) for name in episodes[0]}
    one_sided = "λ_2 above 2/η in all or none of a seed's episodes: no split to compare"
    if ep["third"].sum() == 0:
        no_third = (f"λ_3 reached 2/η in none of {int(ep['episodes'].sum())} episodes at T = {period}: the third "
                    "crossing does not occur at this size (the paper's SM Fig. 1 runs T = 5000; --size paper)")  # fmt: skip
    else:
        no_third = "λ_3 above 2/η in all or none of a seed's episodes: no split to compare"
    same = "the λ_2 episodes are exactly the largest-λ_1 ones in a seed: the two readings cannot be told apart"

    def over_seeds(label, values, **kw):
        if defined.sum() < 3:  # too few seeds with events for an interval
            return harness.check(label, float(np.mean(values)) if values.size else np.nan, inconclusive=no_events, **kw)
        return harness.seed_check(label, values, **kw)

    result.checks += [
        harness.seed_check("up-crossings of 2/η by λ_max(H) during the oscillating phase, per seed", stat["crossings"],
                           above=5.0),
        over_seeds(f"share of bifurcations within one record ({cfg['record']} steps) after an up-crossing",
                   stat["share"][defined], above=0.0, note=f"{int(stat['jumps'].sum())} bifurcations over {seeds} seeds"),
        over_seeds("control: that share minus the same share at phase-matched times in other cycles", diff, above=0.0,
                   kind="control", note="null: each bifurcation moved by whole weight cycles, so its phase in Γ(t) is kept"),
        harness.seed_check("SM I: P(bifurcation | λ_2 also crosses 2/η) minus P(bifurcation | λ_1 alone), per seed, "
                           "over the episodes where λ_1 crosses 2/η", ep["second_gain"], above=0.0, undefined=one_sided,
                           note=f"{_mean_defined(ep['p_second']):.2f} against {_mean_defined(ep['p_first_only']):.2f}; "
                                f"λ_2 crossed in {int(ep['second'].sum())} of {int(ep['episodes'].sum())} episodes"),
        harness.seed_check("control: that difference minus the same for as many episodes chosen by the largest λ_1 peak "
                           "(rival: λ_1's overshoot alone sets the bifurcation)", ep["second_gain"] - ep["first_gain"],
                           above=0.0, kind="control", undefined=f"{one_sided}; or {same}",
                           note=f"rival's difference {_mean_defined(ep['first_gain']):+.2f}"),
        harness.seed_check("SM I: P(bifurcation | λ_3 also crosses 2/η) minus P(bifurcation | it does not), per seed",
                           ep["third_gain"], above=0.0, undefined=no_third),
        harness.check("Lanczos (order 20) vs dense Hessian of the trained net, top eigenvalue, rel.",
                      abs(lanczos[20][0] / dense[0] - 1), below=1e-6,
                      note=f"order 10: {abs(lanczos[10][0] / dense[0] - 1):.1e} (order 10 at init: see oscillatory_linearized)"),
    ]  # fmt: skip
    # (T, A) phase diagram: final accuracy after 3T of plain CE, one vmapped sweep per width
    grid = [(T, A) for T in cfg["diagram_periods"] for A in cfg["diagram_amplitudes"]]
    diagram_steps = 3 * max(cfg["diagram_periods"]) * cfg["periods"]
    diagram_off = diagram_steps - 3 * max(cfg["diagram_periods"])
    table, panels_diagram = [], []
    d_seeds = cfg["diagram_seeds"]
    gains = {}
    never = diagram_steps + 1  # an off step after the end: the oscillation continues to the last step
    continued_cells = [(T, A) for (T, A) in grid if A > 1.0]
    switch_gain = None
    for width in ((cfg["width"],) if cfg["diagram_wide"] else ()) + (cfg["small"],):
        small_net = networks.mlp((width,), 3, b_std=1.0, parameterization="standard")
        p0s = [small_net.init(jax.random.PRNGKey(1 + s_), 2) for s_ in range(d_seeds)]
        # the under-parameterised width also runs the oscillating cells without switching off (SM III)
        cells = [(T, A, diagram_off) for (T, A) in grid]
        if width == cfg["small"]:
            cells += [(T, A, never) for (T, A) in continued_cells]

        def weights_off(step, args):
            return schedules.class_weights(step, n_classes=3, period=args[0], amplitude=args[1], off_after=args[2])[
                labels
            ]

        def diagram(small_net=small_net, p0s=p0s, weights_off=weights_off, width=width, cells=cells):
            # run j: seed j // len(cells), (T, A, off step) = cells[j % len(cells)]
            stacked = jax.tree.map(lambda *p: jnp.repeat(jnp.stack(p), len(cells), axis=0), *p0s)
            config = TrainConfig(steps=diagram_steps, record_every=diagram_steps // 20, loss="cross_entropy", n_eigs=0)
            res = train_sweep(small_net.apply_fn, stacked, d, config, learning_rate=jnp.full(len(cells) * d_seeds, eta_mean / n),
                              sample_weights=weights_off, sample_weight_args=jnp.tile(jnp.asarray(cells, dtype=float), (d_seeds, 1)),
                              progress=f"phase diagram, width {width}",
                              # tiny nets: one run at a time inside the compiled program took 55 s against
                              # 90 s for all 30 vmapped (2 CPU cores); the updates agree to rounding
                              devices=jax.local_devices()[:1], run_batch=1)  # fmt: skip
            return {"final_accuracy": res.train_accuracy[:, -1]}

        ctx.log(
            f"  phase diagram, width {width}: {len(cells)} (T, A, off) cells x {d_seeds} seeds, {diagram_steps} steps each"
        )
        all_cells = ctx.store.cached(f"oscillatory_spiral_diagram_w{width}_steps{diagram_steps}_{len(cells)}_s{d_seeds}",
                                     diagram)["final_accuracy"].reshape(d_seeds, len(cells))  # fmt: skip
        acc_grid = all_cells[:, : len(grid)]
        extra = []
        if width == cfg["small"]:
            switched = np.stack([acc_grid[:, grid.index(c)] for c in continued_cells], axis=1)
            switch_gain = (switched - all_cells[:, len(grid) :]).mean(axis=1)  # per seed, mean over the cells
            for j, (T, A) in enumerate(continued_cells):
                mean, lo, hi = harness.seed_interval(all_cells[:, len(grid) + j])
                g_mean, g_lo, g_hi = harness.seed_interval(switched[:, j] - all_cells[:, len(grid) + j])
                extra.append(f"| {width} | {T} | {A:g}, never switched off | {mean:.3f} [{lo:.3f}, {hi:.3f}] | "
                             f"switched off minus this: {g_mean:+.3f} [{g_lo:+.3f}, {g_hi:+.3f}] |")  # fmt: skip
        base = np.array([[acc_grid[s_, grid.index((T, 1.0))] for (T, A) in grid] for s_ in range(d_seeds)])
        oscillating_cells = np.array([A > 1.0 for (T, A) in grid])
        gain = acc_grid - base  # (seeds, grid): each cell against A = 1 at the same T and seed
        gains[width] = gain[:, oscillating_cells].mean(axis=1)  # per seed: mean gain over the oscillating cells
        for j, (T, A) in enumerate(grid):
            mean, lo, hi = harness.seed_interval(acc_grid[:, j])
            g_mean, g_lo, g_hi = harness.seed_interval(gain[:, j])
            table.append(
                f"| {width} | {T} | {A:g} | {mean:.3f} [{lo:.3f}, {hi:.3f}] | {g_mean:+.3f} [{g_lo:+.3f}, {g_hi:+.3f}] |"
            )
        table += extra
        by_period = {T: [j for j, (TT, _) in enumerate(grid) if TT == T] for T in cfg["diagram_periods"]}
        amps_of = {T: [grid[j][1] for j in cols] for T, cols in by_period.items()}
        bands = {T: harness.seed_interval(acc_grid[:, cols]) for T, cols in by_period.items()}
        panels_diagram.append(
            {"title": f"final train accuracy, width {width}: mean of {d_seeds} seeds, 95% band", "xlabel": "amplitude A",
             "ylabel": "train accuracy", "xscale": "log",
             "bands": [(None, amps_of[T], bands[T][1], bands[T][2], {"color": f"C{i}"})
                       for i, T in enumerate(cfg["diagram_periods"])],
             "experiment": [(f"T = {T}, switched off for the last {3 * max(cfg['diagram_periods'])} steps", amps_of[T],
                             bands[T][0], {"color": f"C{i}"}) for i, T in enumerate(cfg["diagram_periods"])]}
        )  # fmt: skip
        if extra:  # the same cells never switched off (means over seeds), at the under-parameterised width
            continued = all_cells[:, len(grid) :].mean(axis=0)
            panels_diagram[-1]["experiment"] += [
                (f"T = {T}, never switched off", [A for (TT, A) in continued_cells if TT == T],
                 [continued[j] for j, (TT, _) in enumerate(continued_cells) if TT == T],
                 {"color": f"C{i}", "ls": "--", "marker": "x"}) for i, T in enumerate(cfg["diagram_periods"])
            ]  # fmt: skip
    result.checks += [
        harness.seed_check(f"under-parameterised width {cfg['small']}: mean final-accuracy gain of the oscillating (T, A) "
                           "cells over A = 1 (same T, same seed)", gains[cfg["small"]], above=0.0,
                           note=(f"width {cfg['width']}: {gains[cfg['width']].mean():+.3f}; " if cfg["width"] in gains else "")
                           + "the paper claims the benefit for small nets"),
        harness.seed_check(f"width {cfg['small']}: final accuracy with the oscillation switched off for the last "
                           f"{3 * max(cfg['diagram_periods'])} steps minus continued oscillation (SM III; mean over the "
                           "oscillating cells, same seed)", switch_gain, above=0.0),
    ]  # fmt: skip
    result.tables.append(
        f"SM Fig. 1 setting: spiral 3 x {cfg['per_class']}, 2 -> {cfg['width']} -> 3 ReLU with biases (standard parameterisation), "
        f"GD with η = 1 on the mean loss, T = {period}, A = {amp}, {cfg['periods']} cycles of 3 periods then plain CE for 3T. "
        f"Final train accuracy (seed 0): {run['acc'][0][-1]:.3f} (A = {amp}) vs {run['acc'][seeds][-1]:.3f} (A = 1). "
        f"Bifurcations within {cfg['record']} steps after an up-crossing of 2/η: {_mean_defined(stat['share']):.2f} "
        f"(phase-matched times: {_mean_defined(stat['share_null']):.2f}), means over {seeds} seeds.\n\n"
        f"Phase diagram ({diagram_steps} steps, the last {3 * max(cfg['diagram_periods'])} with plain CE), mean [95% interval] "
        f"over {d_seeds} seeds:\n\n"
        "| width | T | A | final accuracy | vs A = 1 |\n|---|---|---|---|---|\n" + "\n".join(table)
    )
    t = run["steps"]
    dF = np.diff(run["F"][0] / n, prepend=np.nan)
    panels = [
        {"title": "F(t) - F(t-1) (mean loss, per record)", "xlabel": "step", "ylabel": "ΔF", "experiment": [("ΔF", t, dF)]},
        {"title": "top-3 Hessian eigenvalues of F (Lanczos), seed 0", "xlabel": "step", "ylabel": "λ", "yscale": "log",
         "experiment": [(f"λ_{i + 1}", t, h[:, i]) for i in range(3)], "hlines": [("2/η", threshold)],
         "vlines": [("up-crossing of 2/η" if i == 0 else None, t[u]) for i, u in enumerate(up[:40])]},
        {"title": "train accuracy, seed 0", "xlabel": "step", "ylabel": "accuracy",
         "experiment": [(f"A = {amp}", t, run["acc"][0]), ("A = 1", t, run["acc"][seeds])],
         "vlines": [("oscillation off", off, {"color": "k", "ls": "-", "lw": 1.5})]
                   + [("bifurcation" if i == 0 else None, t[j], {"color": "C3", "lw": 0.6, "ls": ":"})
                      for i, j in enumerate(per_seed[0]["jump_records"][:40])]},
    ]  # fmt: skip
    fig = plots.curves(ctx.figure_path("oscillatory_spiral.png"), panels, title=TITLE, width=5.0)
    fig2 = plots.curves(ctx.figure_path("oscillatory_spiral_diagram.png"), panels_diagram, title="(T, A) phase diagram")
    result.figures += [str(fig.relative_to(ctx.out_dir)), str(fig2.relative_to(ctx.out_dir))]
    result.seconds = time.perf_counter() - started
    return result
