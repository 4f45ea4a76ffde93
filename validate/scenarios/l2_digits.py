"""Fig. 5c of the L2 paper: a 2-layer ReLU network trained on digits (even/odd, MSE, L2) against the
k = 2 and k = 1 theory curves built from its empirical NTK at initialisation, at several widths."""

import time

import numpy as np

from widenet import harness, networks, plots
from widenet.theory import l2_homogeneous as l2h

from ._common import digits_problems, relative_error, stable_learning_rate, train_problems

NAME = "l2_digits"
TITLE = "L2 paper Fig. 5c: trained 2-layer ReLU nets vs eq. 3 (k = 2) and the linear model (k = 1)"
CLAIM = (
    "Gradient descent on a wide 2-layer ReLU network with L2 follows eq. 1 with k = 2 until after the "
    "minimum of the training loss; the error shrinks with width. The linear model (k = 1), which "
    "ignores the kernel decay, fails after t ~ 1/λ."
)

SIZES = {
    # machinery only (pytest, seconds): thresholds are decided at "default" and "paper"
    "smoke": dict(n_train=16, n_test=16, widths=(64, 128), seeds=2, l2=0.5, horizon=2.0),
    "default": dict(n_train=128, n_test=128, widths=(256, 512, 1024, 2048), seeds=3, l2=0.1, horizon=2.0),
    "paper": dict(n_train=200, n_test=200, widths=(1024, 4096, 16384), seeds=2, l2=0.02, horizon=2.0),
}


def run(ctx: harness.Context):
    started = time.perf_counter()
    cfg = SIZES[ctx.size]
    l2, widths = cfg["l2"], cfg["widths"]
    result = harness.ScenarioResult(NAME, TITLE, CLAIM)
    per_width = {}
    for width in widths:
        ctx.log(f"  width {width}: {cfg['seeds']} seeds, vmapped")
        net = networks.mlp((width,))
        d, problems = digits_problems(net, n_train=cfg["n_train"], n_test=cfg["n_test"], seeds=cfg["seeds"])
        lr = stable_learning_rate(problems)
        steps = int(np.ceil(cfg["horizon"] / l2 / lr))
        key = f"l2_digits_w{width}_n{cfg['n_train']}_s{cfg['seeds']}_l2{l2}_steps{steps}"
        run = train_problems(ctx, key, net, d, problems, learning_rate=lr, l2=l2, steps=steps)
        rows = []
        for i, p in enumerate(problems):
            t = run["t"][i]
            th = {}
            for k in (2.0, 1.0):
                sol = l2h.mse_solution(
                    t,
                    p.ntk_train,
                    d.y_train,
                    p.f0_train,
                    l2=l2,
                    k=k,
                    ntk_test_train=p.ntk_test_train,
                    f0_test=p.f0_test,
                )
                th[k] = (
                    0.5 * np.sum((np.asarray(sol.f_train) - d.y_train) ** 2, axis=(1, 2)),
                    0.5 * np.sum((np.asarray(sol.f_test) - d.y_test) ** 2, axis=(1, 2)),
                )
            i_min = int(np.argmin(run["train_loss"][i]))
            late = t >= 1.0 / l2
            rows.append(
                dict(
                    err_train=relative_error(run["train_loss"][i], th[2.0][0])[: i_min + 1].max(),
                    err_test=relative_error(run["test_loss"][i], th[2.0][1])[: i_min + 1].max(),
                    err_k1_late=relative_error(run["train_loss"][i], th[1.0][0])[late].max(),
                    t_min_exp=t[i_min],
                    t_min_th=float(l2h.loss_minimum_time(p.ntk_train, d.y_train, p.f0_train, l2=l2, k=2.0)),
                    t=t,
                    exp=run["train_loss"][i],
                    th2=th[2.0][0],
                    th1=th[1.0][0],
                    exp_test=run["test_loss"][i],
                    th2_test=th[2.0][1],
                )  # fmt: skip
            )
        per_width[width] = rows

    def mean(width, name):
        return float(np.mean([row[name] for row in per_width[width]]))

    widest = widths[-1]
    err = np.array([mean(w, "err_train") for w in widths])
    slope = harness.fit_slope(widths, err)
    t_min_gap = np.mean([abs(r["t_min_exp"] - r["t_min_th"]) / r["t_min_th"] for r in per_width[widest]])
    result.checks += [
        harness.check(f"k=2: train-loss rel. error up to its minimum, width {widest}", err[-1], below=0.1,
                      note=f"mean of {cfg['seeds']} seeds"),
        harness.check(f"k=2: test-loss rel. error up to the minimum, width {widest}", mean(widest, "err_test"), below=0.15),
        harness.check("k=2: slope of that error against width (log-log)", slope, below=-0.25, kind="rate"),
        harness.check(f"t* of the minimum: |exp - eq. 3| / eq. 3, width {widest}", t_min_gap, below=0.15),
        harness.check(f"control: k=1 train-loss rel. error for t >= 1/λ, width {widest}", mean(widest, "err_k1_late"),
                      above=0.3, kind="control"),
    ]  # fmt: skip
    header = (
        "| width | train err (k=2) | test err (k=2) | k=1 err, t ≥ 1/λ | t* exp | t* eq. 3 |\n|---|---|---|---|---|---|"
    )
    body = [
        f"| {w} | {mean(w, 'err_train'):.4f} | {mean(w, 'err_test'):.4f} | {mean(w, 'err_k1_late'):.3f} | "
        f"{mean(w, 't_min_exp'):.3g} | {mean(w, 't_min_th'):.3g} |"
        for w in widths
    ]
    result.tables.append(
        f"λ = {l2}, n = {cfg['n_train']}, η = 0.5/γ_max, errors are max over t up to the experiment's loss "
        f"minimum (mean over {cfg['seeds']} seeds):\n\n" + header + "\n" + "\n".join(body)
    )
    row = per_width[widest][0]
    panels = [
        {
            "title": f"training loss (seed 0), λ = {l2}",
            "xlabel": "t = η·step", "ylabel": "½Σ(f - y)²", "yscale": "log",
            "theory": [(f"eq. 3, k = 2 (width {widest} Θ0)", row["t"], row["th2"]), ("k = 1 (linear model)", row["t"], row["th1"])],
            "experiment": [(f"GD, width {w}", per_width[w][0]["t"], per_width[w][0]["exp"]) for w in widths],
            "vlines": [("t = 1/λ", 1 / l2)],
        },
        {
            "title": "test loss (seed 0)",
            "xlabel": "t = η·step", "ylabel": "½Σ(f - y)² on test", "yscale": "log",
            "theory": [("eq. 1 at test points, k = 2", row["t"], row["th2_test"])],
            "experiment": [(f"GD, width {w}", per_width[w][0]["t"], per_width[w][0]["exp_test"]) for w in widths],
            "vlines": [("t = 1/λ", 1 / l2)],
        },
    ]  # fmt: skip
    fig = plots.curves(ctx.figure_path("l2_digits_loss.png"), panels, title=TITLE)
    fig_rate = plots.rate(
        ctx.figure_path("l2_digits_rate.png"), widths, err, xlabel="width", ylabel="rel. error up to the minimum",
        slope=slope, reference=-0.5, title="k = 2 theory vs GD: error against width",
    )  # fmt: skip
    result.figures += [str(fig.relative_to(ctx.out_dir)), str(fig_rate.relative_to(ctx.out_dir))]
    result.seconds = time.perf_counter() - started
    return result
