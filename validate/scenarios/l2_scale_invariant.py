"""Scale-invariant (k = 0) networks under L2 (L2 paper, Sec. 2 and eq. 2 at k = 0; Li & Arora 2019):
the kernel grows as e^{2λt} and L2 acts as an exponentially growing learning rate."""

import time

import numpy as np

from widenet import harness, networks, plots
from widenet.theory import l2_homogeneous as l2h

from ._common import digits_problems, train_problems

NAME = "l2_scale_invariant"
TITLE = "L2 paper, k = 0: a scale-invariant network's kernel grows as exp(2λt)"
CLAIM = (
    "For a scale-invariant network (k = 0: here a 2-layer ReLU net with its whole parameter vector "
    "normalised, `networks.scale_invariant`) trained by GD with L2, the tangent kernel grows as "
    "Θ_t = Θ_0 e^{2λt} (eq. 2 at k = 0) and the outputs follow eq. 1 with that kernel and no kλf term: "
    "L2 only speeds learning up, as an exponentially growing learning rate. The growth rate of the top 3 "
    "empirical NTK eigenvalues approaches 2λ with an error going as n^-1 (the learning-driven kernel change "
    "is O(1/n), as for k >= 1). Rivals on the same runs: a constant kernel (L2 does nothing to a "
    "scale-invariant net), for the kernel and for the outputs."
)

SIZES = {
    # machinery only (pytest, seconds): thresholds are decided at "default" and "paper"
    "smoke": dict(n_train=16, widths=(64, 128), seeds=2, l2=1.0, horizon=0.1),
    "default": dict(n_train=128, widths=(256, 512, 1024), seeds=5, l2=1.0, horizon=0.5),
    "paper": dict(n_train=256, widths=(1024, 4096, 16384), seeds=8, l2=0.1, horizon=0.5),
}


def _rms_gap(a, b, scale):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)) / scale)


def run(ctx: harness.Context):
    started = time.perf_counter()
    cfg = SIZES[ctx.size]
    l2, widths, seeds, horizon = cfg["l2"], cfg["widths"], cfg["seeds"], cfg["horizon"]
    result = harness.ScenarioResult(NAME, TITLE, CLAIM)
    rate_err, kernel_rival, out_err, out_rival, rows, curves = [], [], [], [], [], None
    for width in widths:
        net = networks.scale_invariant(networks.mlp((width,)))
        d, problems = digits_problems(net, n_train=cfg["n_train"], n_test=8, seeds=seeds)
        gamma_max = max(float(np.linalg.eigvalsh(p.ntk_train)[-1]) for p in problems)
        # GD is stable while η γ_max e^{2λt} < 2: η = 0.5/(γ_max e^{2λ t_end}) keeps η·λ_max(t) <= 0.5
        lr = 0.5 / (gamma_max * np.exp(2.0 * horizon))  # e^{2λ t_end} with t_end = horizon/λ
        steps = int(np.ceil(horizon / l2 / lr))
        # GD's exact growth per step is (1 - ηλ)^{-2} (the Li-Arora identity, docs/theory_l2.md), a rate
        # -2 log(1 - ηλ)/η = 2λ(1 + ηλ/2 + ...) in t = η·step: the prediction for this GD, so that the
        # width-independent discretisation bias does not enter the width rate
        predicted = -2.0 * np.log1p(-lr * l2) / lr
        ctx.log(f"  width {width}: {seeds} seeds, {steps} GD steps to λt = {horizon}")
        key = f"{NAME}_w{width}_n{cfg['n_train']}_s{seeds}_l2{l2}_steps{steps}"
        run = train_problems(ctx, key, net, d, problems, learning_rate=lr, l2=l2, steps=steps, records=10, n_eigs=3)
        record_steps = np.asarray(run["steps"], dtype=int)
        record_steps = record_steps[0] if record_steps.ndim > 1 else record_steps
        t = run["t"][0]
        re, kr, oe, orv = [], [], [], []
        for i, p in enumerate(problems):
            eigs = np.asarray(run["ntk_top"][i])
            log_growth = np.log(eigs) - np.log(eigs[:1])  # (T, 3)
            rates = np.array([np.polyfit(t, log_growth[:, j], 1)[0] for j in range(3)])
            re.append(np.mean(np.abs(rates - predicted)) / predicted)
            scale = predicted * t[-1]  # eq. 2's total log growth over the window
            kr.append(
                np.sqrt(np.mean(log_growth**2)) / scale
                - np.sqrt(np.mean((log_growth - predicted * t[:, None]) ** 2)) / scale
            )
            # outputs: GD's exact function-space recursion at k = 0 (gd_solution) against the trained
            # net, and the rival without L2 (λ = 0: a constant kernel, same η and steps)
            theory = l2h.gd_solution(record_steps, p.ntk_train, d.y_train, p.f0_train, learning_rate=lr, l2=l2, k=0)
            rival = l2h.gd_solution(record_steps, p.ntk_train, d.y_train, p.f0_train, learning_rate=lr, l2=0.0, k=0)
            theory_loss = 0.5 * np.sum((np.asarray(theory.f_train) - np.asarray(d.y_train)[None]) ** 2, axis=(1, 2))
            rival_loss = 0.5 * np.sum((np.asarray(rival.f_train) - np.asarray(d.y_train)[None]) ** 2, axis=(1, 2))
            measured = np.asarray(run["train_loss"][i])
            motion = float(measured[0] - theory_loss[-1])  # how far the loss moves in the window
            oe.append(_rms_gap(measured, theory_loss, motion))
            orv.append(_rms_gap(measured, rival_loss, motion) - oe[-1])
            if width == widths[-1] and i == 0:
                curves = (t, eigs, measured, theory_loss, rival_loss)
        rate_err.append(re), kernel_rival.append(kr), out_err.append(oe), out_rival.append(orv)
        m, lo, hi = harness.seed_interval(np.asarray(re))
        rows.append(f"| {width} | {steps} | {lr * gamma_max:.3f} | {m:.4f} [{lo:.4f}, {hi:.4f}] | {np.mean(oe):.4f} | "
                    f"{np.mean(oe) + np.mean(orv):.4f} |")  # fmt: skip
    rate_err, out_err = np.asarray(rate_err).T, np.asarray(out_err).T  # (seeds, widths)
    widest = widths[-1]
    result.checks += [
        harness.seed_check(f"|measured growth rate - GD's 2λ(1 + ηλ/2 + ...)| / that, width {widest}", rate_err[:, -1], below=0.1,
                           note="per seed: mean over the top-3 NTK eigenvalues, fit of log γ_i(t) over the window"),
        harness.rate_check("slope of that error against width (theory: -1)", widths, rate_err, exponent=-1.0,
                           note="per-seed log-log slopes"),
        harness.seed_check(f"control: rms log-trajectory error of the top-3 eigenvalues, constant kernel minus eq. 2 "
                           f"(k = 0), width {widest}", np.asarray(kernel_rival[-1]), above=0.0, kind="control",
                           note="rival: Θ_t = Θ_0; same runs and window, whole trajectories"),
        harness.seed_check(f"rms |training loss - GD recursion of eq. 1 at k = 0| / loss drop, width {widest}",
                           out_err[:, -1], below=0.05, note="theory: `gd_solution(k=0)` from each seed's Θ0 and f0"),
        harness.seed_check(f"control: the same error for the no-L2 rival (λ = 0, constant kernel) minus k = 0's, width {widest}",
                           np.asarray(out_rival[-1]), above=0.0, kind="control"),
    ]  # fmt: skip
    slope_check = result.checks[1]
    fig_rate = plots.rate(
        ctx.figure_path("l2_scale_invariant_rate.png"), widths, rate_err, xlabel="width",
        ylabel="|measured growth rate - GD's| / GD's", slope=slope_check.value, interval=slope_check.interval,
        reference=-1.0, title="k = 0: kernel growth-rate error against width",
    )  # fmt: skip
    t, eigs, measured, theory_loss, rival_loss = curves
    panels = [
        {"title": f"top NTK eigenvalues, width {widest}, λ = {l2} (seed 0)", "xlabel": "t = η·step",
         "ylabel": "γ_i(t)", "yscale": "log",
         "theory": [("eq. 2 at k = 0: γ_i(0) e^(2λt), each in its colour" if i == 0 else None, t,
                     eigs[0, i] * np.exp(predicted * t), {"color": f"C{i}", "lw": 1.5}) for i in range(3)],
         "experiment": [(f"γ_{i + 1}(t) measured", t, eigs[:, i], {"color": f"C{i}", "alpha": 0.6}) for i in range(3)]},
        {"title": f"training loss, width {widest} (seed 0)", "xlabel": "t = η·step", "ylabel": "½Σ(f - y)²", "yscale": "log",
         "experiment": [("trained network", t, measured, {"color": "C0"})],
         "theory": [("GD recursion of eq. 1, k = 0", t, theory_loss, {"color": "k"}),
                    ("rival: no L2 effect (λ = 0)", t, rival_loss, {"color": "C3", "ls": "--"})]},
    ]  # fmt: skip
    fig = plots.curves(ctx.figure_path("l2_scale_invariant.png"), panels, title=TITLE)
    result.figures += [str(fig.relative_to(ctx.out_dir)), str(fig_rate.relative_to(ctx.out_dir))]
    result.tables.append(
        f"Per width ({seeds} seeds, {cfg['n_train']} digits, λ = {l2}, GD to λt = {horizon}): steps, η·γ_max(0), the growth-rate "
        "error with its 95% interval, and the rms training-loss error (units of the loss drop) of the k = 0 theory "
        "and of the no-L2 rival (means over seeds):\n\n"
        "| width | steps | η γ_max(0) | growth-rate error [95%] | loss error, k = 0 | loss error, rival |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(rows)
    )
    result.seconds = time.perf_counter() - started
    return result
