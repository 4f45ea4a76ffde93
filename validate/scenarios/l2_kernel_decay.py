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
    "(fit of log γ_i(t) over 0 ≤ t ≤ 1/λ) must approach 2(k-1)λ as the width grows; the rate of a "
    "wrong degree k+1 must be measurably wrong."
)

SIZES = {
    # machinery only (pytest, seconds): thresholds are decided at "default" and "paper"
    "smoke": dict(n_train=16, widths=(64, 128), seeds=2, l2=1.0, horizon=0.2),
    "default": dict(n_train=128, widths=(256, 512, 1024), seeds=2, l2=1.0, horizon=1.0),
    "paper": dict(n_train=256, widths=(1024, 4096, 16384), seeds=2, l2=0.1, horizon=1.0),
}


def _rates(t, eigs):
    """Decay rates: minus the least-squares slope of log eigenvalue against t, per eigenvalue."""
    return np.array([-np.polyfit(t, np.log(eigs[:, i]), 1)[0] for i in range(eigs.shape[1])])


def run(ctx: harness.Context):
    started = time.perf_counter()
    cfg = SIZES[ctx.size]
    l2, widths = cfg["l2"], cfg["widths"]
    result = harness.ScenarioResult(NAME, TITLE, CLAIM)
    panels, rows = [], []
    for k in (2, 3):
        errors, controls, curves = [], [], None
        for width in widths:
            ctx.log(f"  k={k}, width {width}")
            net = networks.mlp((width,) * (k - 1))
            assert net.degree == k
            d, problems = digits_problems(net, n_train=cfg["n_train"], n_test=8, seeds=cfg["seeds"])
            lr = stable_learning_rate(problems)
            steps = int(np.ceil(cfg["horizon"] / l2 / lr))
            key = f"l2_kernel_decay_k{k}_w{width}_n{cfg['n_train']}_s{cfg['seeds']}_l2{l2}_steps{steps}"
            run = train_problems(ctx, key, net, d, problems, learning_rate=lr, l2=l2, steps=steps, records=40, n_eigs=3)
            ratio = np.array([_rates(run["t"][i], run["ntk_top"][i]) for i in range(cfg["seeds"])]) / (2 * (k - 1) * l2)
            wrong = ratio * (k - 1) / k  # the same rates against a wrong degree k + 1
            errors.append(np.mean(np.abs(ratio - 1)))
            controls.append(np.mean(np.abs(wrong - 1)))
            # GD's exact factor per step from the L2 term alone: (1 - ηλ)^{2(k-1)}
            gd = -2 * (k - 1) * np.log1p(-lr * l2) / lr / (2 * (k - 1) * l2)
            rows.append(f"| {k} | {width} | {np.mean(ratio):.4f} | {errors[-1]:.4f} | {gd:.4f} |")
            curves = (run["t"][0], run["ntk_top"][0])
        slope = harness.fit_slope(widths, errors)
        result.checks += [
            harness.check(f"k={k}: |measured rate / 2(k-1)λ - 1|, width {widths[-1]}", errors[-1], below=0.1,
                          note="mean of top-3 eigenvalues and seeds"),
            harness.check(f"k={k}: slope of that error against width", slope, below=-0.3, kind="rate"),
            harness.check(f"control k={k}: same rates against 2kλ (degree k+1)", controls[-1], above=0.3, kind="control"),
        ]  # fmt: skip
        t, eigs = curves
        panels.append(
            {
                "title": f"k = {k}, width {widths[-1]}, λ = {l2}",
                "xlabel": "t = η·step", "ylabel": "top NTK eigenvalues", "yscale": "log",
                "theory": [(f"γ_{i + 1}(0) e^(-2(k-1)λt)" if i == 0 else None, t, eigs[0, i] * np.exp(-2 * (k - 1) * l2 * t))
                           for i in range(3)],
                "experiment": [(f"γ_{i + 1}(t) measured", t, eigs[:, i]) for i in range(3)],
            }
        )  # fmt: skip
    result.tables.append(
        "Measured rate / 2(k-1)λ (mean over the top 3 eigenvalues and seeds); the last column is what GD's "
        "discrete L2 factor (1-ηλ)^{2(k-1)} per step alone would give:\n\n"
        "| k | width | rate ratio | abs. error | GD L2-only ratio |\n|---|---|---|---|---|\n" + "\n".join(rows)
    )
    fig = plots.curves(ctx.figure_path("l2_kernel_decay.png"), panels, title=TITLE)
    result.figures.append(str(fig.relative_to(ctx.out_dir)))
    result.seconds = time.perf_counter() - started
    return result
