"""Kernel decay under L2 (L2 paper, eq. 2 / Thm 2): the top empirical NTK eigenvalues of bias-free
ReLU networks decay at rate 2(k-1)λ, for k = 2 (two Dense layers) and k = 3 (three)."""

import time

import numpy as np

from widenet import harness, networks, plots

from ._common import digits_problems, stable_learning_rate, train_problems

NAME = "l2_kernel_decay"
TITLE = "L2 paper eq. 2: NTK eigenvalues decay as exp(-2(k-1)λt)"
CLAIM = (
    "Under L2 the tangent kernel of a k-homogeneous network decays as Θ_t = Θ_0 e^{-2(k-1)λt} at "
    "infinite width. The measured decay rate of the top 3 empirical NTK eigenvalues during training "
    "(fit of log γ_i(t) over 0 ≤ t ≤ 1/λ) approaches 2(k-1)λ as the width n grows, its error going "
    "as n^-1 (the learning-driven kernel change is O(1/n), Dyer & Gur-Ari 2020, as the paper cites; "
    "docs/theory_l2.md). Rival: the constant kernel of the linear (k = 1) model with L2, which "
    "neural-tangents' `diag_reg` assumes, evaluated on the same runs, window and statistic."
)

SIZES = {
    # machinery only (pytest, seconds): thresholds are decided at "default" and "paper"
    "smoke": dict(n_train=16, widths=(64, 128), seeds=2, l2=1.0, horizon=0.2),
    "default": dict(n_train=128, widths=(256, 512, 1024), seeds=5, l2=1.0, horizon=1.0),
    "paper": dict(n_train=256, widths=(1024, 4096, 16384), seeds=8, l2=0.1, horizon=1.0),
}


def _rates(t, eigs):
    """Decay rates: minus the least-squares slope of log eigenvalue against t, per eigenvalue."""
    return np.array([-np.polyfit(t, np.log(eigs[:, i]), 1)[0] for i in range(eigs.shape[1])])


def _log_decay(eigs):
    """log γ_i(t)/γ_i(0) for each recorded eigenvalue: (T, 3)."""
    return np.log(eigs) - np.log(eigs[:1])


def run(ctx: harness.Context):
    started = time.perf_counter()
    cfg = SIZES[ctx.size]
    l2, widths, seeds = cfg["l2"], cfg["widths"], cfg["seeds"]
    result = harness.ScenarioResult(NAME, TITLE, CLAIM)
    panels, rows = [], []
    for k in (2, 3):
        predicted = 2 * (k - 1) * l2
        errors, rival_minus_theory, curves = [], [], None  # (widths, seeds) each
        for width in widths:
            ctx.log(f"  k={k}, width {width}")
            net = networks.mlp((width,) * (k - 1))
            assert net.degree == k
            d, problems = digits_problems(net, n_train=cfg["n_train"], n_test=8, seeds=seeds)
            lr = stable_learning_rate(problems)
            steps = int(np.ceil(cfg["horizon"] / l2 / lr))
            key = f"l2_kernel_decay_k{k}_w{width}_n{cfg['n_train']}_s{seeds}_l2{l2}_steps{steps}"
            run = train_problems(ctx, key, net, d, problems, learning_rate=lr, l2=l2, steps=steps, records=40, n_eigs=3)
            rates = np.array([_rates(run["t"][i], run["ntk_top"][i]) for i in range(seeds)])  # (seeds, 3)
            # per seed, mean over the top 3 eigenvalues of |measured - predicted| / 2(k-1)λ
            theory_error = np.mean(np.abs(rates - predicted), axis=1) / predicted
            errors.append(theory_error)
            # control, on whole trajectories (not on the fitted rate, which would make it a function of
            # the check above): rms over the window of log γ_i(t)/γ_i(0) against each prediction's
            # log factor, -2(k-1)λt (eq. 2) or 0 (constant kernel), in units of eq. 2's total decay
            traj = np.stack([_log_decay(run["ntk_top"][i]) for i in range(seeds)])  # (seeds, T, 3)
            t_grid = run["t"][0][:, None]
            scale = predicted * t_grid[-1, 0]
            theory_traj = np.sqrt(np.mean((traj + predicted * t_grid) ** 2, axis=(1, 2))) / scale
            rival_traj = np.sqrt(np.mean(traj**2, axis=(1, 2))) / scale
            rival_minus_theory.append(rival_traj - theory_traj)
            mean, lo, hi = harness.seed_interval(theory_error)
            # GD's exact factor per step from the L2 term alone: (1 - ηλ)^{2(k-1)}
            gd = -2 * (k - 1) * np.log1p(-lr * l2) / lr / predicted
            rows.append(f"| {k} | {width} | {np.mean(rates) / predicted:.4f} | {mean:.4f} [{lo:.4f}, {hi:.4f}] | "
                        f"{np.mean(rival_traj):.3f} | {gd:.4f} |")  # fmt: skip
            curves = (run["t"][0], run["ntk_top"][0])
        errors = np.array(errors).T  # (seeds, widths)
        result.checks += [
            harness.seed_check(f"k={k}: |measured rate - 2(k-1)λ| / 2(k-1)λ, width {widths[-1]}", errors[:, -1],
                               below=0.1, note="per seed: mean over the top-3 eigenvalues"),
            harness.rate_check(f"k={k}: slope of that error against width (theory: -1)", widths, errors, exponent=-1.0,
                               note="per-seed log-log slopes"),
            harness.seed_check(f"control k={k}: rms log-trajectory error, constant kernel minus eq. 2, width {widths[-1]}",
                               rival_minus_theory[-1], above=0.0, kind="control",
                               note="rival: Θ_t = Θ_0 (linear model with L2); same runs and window, whole trajectories"),
        ]  # fmt: skip
        slope_check = result.checks[-2]
        fig_rate = plots.rate(
            ctx.figure_path(f"l2_kernel_decay_rate_k{k}.png"), widths, errors, xlabel="width",
            ylabel="|measured rate - 2(k-1)λ| / 2(k-1)λ", slope=slope_check.value, interval=slope_check.interval,
            reference=-1.0, title=f"k = {k}: decay-rate error against width",
        )  # fmt: skip
        result.figures.append(str(fig_rate.relative_to(ctx.out_dir)))
        t, eigs = curves
        panels.append(
            {
                "title": f"k = {k}, width {widths[-1]}, λ = {l2} (seed 0)",
                "xlabel": "t = η·step", "ylabel": "top NTK eigenvalues", "yscale": "log",
                "theory": [("eq. 2: γ_i(0) e^(-2(k-1)λt), each in its colour" if i == 0 else None, t,
                            eigs[0, i] * np.exp(-predicted * t), {"color": f"C{i}", "lw": 1.5}) for i in range(3)],
                "experiment": [(f"γ_{i + 1}(t) measured", t, eigs[:, i], {"color": f"C{i}", "alpha": 0.6})
                               for i in range(3)],
            }
        )  # fmt: skip
    result.tables.append(
        f"Per width: measured rate / 2(k-1)λ (mean over the top 3 eigenvalues and {seeds} seeds), the relative "
        "error with its 95% interval over seeds, the constant-kernel rival's rms log-trajectory error (units of eq. 2's "
        "total decay over the window), and what GD's discrete L2 "
        "factor (1-ηλ)^{2(k-1)} per step alone would give:\n\n"
        "| k | width | rate ratio | error [95%] | rival error | GD L2-only ratio |\n|---|---|---|---|---|---|\n"
        + "\n".join(rows)
    )
    fig = plots.curves(ctx.figure_path("l2_kernel_decay.png"), panels, title=TITLE)
    result.figures.insert(0, str(fig.relative_to(ctx.out_dir)))
    result.seconds = time.perf_counter() - started
    return result
