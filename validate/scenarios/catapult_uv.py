"""The uv model trained as a real network against the exact uv map (catapult slides; Lewkowycz et al.
2020), its three phases, and the log-width growth of the catapult's peak time."""

import time

import jax
import jax.numpy as jnp
import numpy as np

from widenet import data, harness, networks, plots
from widenet.experiment.train import TrainConfig, train_sweep
from widenet.theory import catapult

NAME = "catapult_uv"
TITLE = "uv model: exact map vs a trained width-n network; phases and log-n peak time"
CLAIM = (
    "GD on the two-layer linear network f = vᵀu/√n (x = 1, y = 0) is exactly the uv map on (f, λ): "
    "lazy for ηλ0 < 2, a catapult for 2 < ηλ0 < 4 (λ ends below 2/η), divergent above 4; the "
    "catapult peaks after ~log n steps at f² ≈ n(ηλ0 - 2)/η². A linear (constant-kernel) model "
    "misses the catapult."
)

SIZES = {
    # machinery only (pytest, seconds): thresholds are decided at "default" and "paper"
    "smoke": dict(width=64, steps=30, seeds=2, widths=(1e3, 1e4)),
    "default": dict(width=512, steps=120, seeds=5, widths=(1e3, 1e4, 1e5, 1e6, 1e7)),
    "paper": dict(width=4096, steps=200, seeds=8, widths=(1e3, 1e5, 1e7, 1e9)),
}


def run(ctx: harness.Context):
    started = time.perf_counter()
    cfg = SIZES[ctx.size]
    result = harness.ScenarioResult(NAME, TITLE, CLAIM)
    n, seeds = cfg["width"], cfg["seeds"]
    net = networks.mlp((n,), activation="identity")  # f = W2ᵀ W1ᵀ x / √n: the uv model on x = 1
    inits = [net.init(k, 1) for k in jax.random.split(jax.random.PRNGKey(0), seeds)]
    x = np.ones((1, 1))
    uv_data = data.Dataset(x, np.zeros((1, 1)), x, np.zeros((1, 1)), name="uv")
    kernel = networks.empirical_ntk(net.apply_fn)
    f0 = np.array([float(net.apply_fn(p, x)[0, 0]) for p in inits])
    lam0 = np.array([float(kernel(x, None, p)[0, 0]) for p in inits])
    products = np.array([1.5, 3.0, 4.5])
    # runs seed-major: run s * 3 + i is init s at ηλ0 = products[i] (λ0 that init's own kernel)
    lrs = (products[None, :] / lam0[:, None]).ravel()
    stacked = jax.tree.map(lambda *q: jnp.stack([v for v in q for _ in products]), *inits)
    config = TrainConfig(steps=cfg["steps"], record_every=1, n_eigs=1, record_outputs=True, divergence_loss=1e30)
    res = train_sweep(net.apply_fn, stacked, uv_data, config, learning_rate=jnp.asarray(lrs), l2=0.0)
    f_net = res.f_train[:, :, 0, 0]
    lam_net = res.ntk_top[:, :, 0]
    errors, missed, panels, kernel_panels = [], [], [], []
    steps = np.arange(cfg["steps"] + 1)
    for run_, lr in enumerate(lrs):
        seed, i = divmod(run_, len(products))
        prod = products[i]
        traj = catapult.uv_trajectory(
            f0[seed], lam0[seed], learning_rate=lr, width=n, steps=cfg["steps"], divergence=1e15
        )
        f_map, lam_map = np.asarray(traj.f), np.asarray(traj.lam)
        valid = np.isfinite(f_net[run_]) & (np.abs(f_map) < 1e6)
        scale = np.maximum(np.abs(f_map[valid]), 1.0)
        errors.append(
            max(
                np.max(np.abs(f_net[run_][valid] - f_map[valid]) / scale),
                np.max(np.abs(lam_net[run_][valid] - lam_map[valid]) / lam_map[valid]),
            )
        )
        expected = catapult.uv_phase(lam0[seed], learning_rate=lr)
        # the phase of the trained network (its own f and λ), against the one uv_phase predicts
        f_end, lam_end = abs(f_net[run_][-1]), lam_net[run_][-1]
        if expected == "lazy":
            missed.append(not (f_end < 1e-6 and abs(lam_end - lam0[seed]) < 0.01 * lam0[seed]))
        elif expected == "catapult":
            missed.append(
                not (f_end < 1e-6 and lam_end < 2 / lr and np.nanmax(np.abs(f_net[run_])) > 10 * abs(f0[seed]))
            )
        else:
            missed.append(not res.diverged_at[run_] >= 0)
        if seed:
            continue  # the figures show the first init; the checks take every run
        panels.append(
            {
                "title": f"ηλ0 = {prod} ({expected}): loss", "xlabel": "step", "ylabel": "½f²", "yscale": "log",
                "theory": [("uv map", steps, 0.5 * f_map**2, {"color": "C3"})],
                "experiment": [("trained network", steps, 0.5 * f_net[run_] ** 2, {"color": "C0"})],
            }
        )  # fmt: skip
        kernel_panels.append(
            {
                "title": f"ηλ0 = {prod} ({expected}): tangent kernel", "xlabel": "step", "ylabel": "λ (NTK)",
                "yscale": "log",
                "theory": [("uv map: λ", steps, lam_map, {"color": "C3"})],
                "experiment": [("trained network: λ_max(NTK)", steps, lam_net[run_], {"color": "C0"})],
                "hlines": [("2/η", 2 / lr, {"color": "k", "ls": ":"})],
            }
        )  # fmt: skip
    # negative control, per init: the linear model f' = (1 - ηλ0) f of its catapult run (ηλ0 = 3)
    lin = f0[:, None] * (1 - products[1]) ** np.arange(cfg["steps"] + 1)[None, :]
    cat = f_net[1 :: len(products), :40]
    control = np.log10(np.nanmax(np.abs(lin[:, :40] - cat) / np.maximum(np.abs(cat), 1.0), axis=1))
    # log-n growth of the peak time at ηλ0 = 3 (uv map, large widths)
    peak_steps, predicted = [], []
    for width in cfg["widths"]:
        traj = catapult.uv_trajectory(0.1, 1.0, learning_rate=3.0, width=width, steps=300)
        peak_steps.append(int(np.argmax(np.abs(np.asarray(traj.f)))))
        predicted.append(float(catapult.uv_catapult_peak(0.1, 1.0, learning_rate=3.0, width=width)[0]))
    slope = np.polyfit(np.log(cfg["widths"]), peak_steps, 1)[0]
    slope_pred = 0.5 / np.log(2.0)  # t_peak = log(f_peak/f0)/log|1 - ηλ0|, f_peak ∝ √n, ηλ0 = 3
    runs = f"{seeds} inits x 3 phases"
    result.checks += [
        harness.check(f"max rel. error over every run and step, trained network vs uv map ({runs})", max(errors),
                      below=1e-9, n=len(errors), note="an identity: the maximum over runs, not a mean"),
        harness.count_check(f"runs not in the phase uv_phase predicts (lazy, catapult, divergent; {runs})",
                            np.reshape(missed, (seeds, len(products)))),
        harness.check("uv map (theory): |d t_peak / d log n - 1/(2 log 2)| / that", abs(slope - slope_pred) / slope_pred,
                      below=0.1, kind="rate", note=f"measured {slope:.3f}, predicted {slope_pred:.3f}"),
        harness.seed_check("control: log10 max rel. error of the constant-kernel model vs each init's catapult run "
                           "(first 40 steps)", control, above=0.0, kind="control"),
    ]  # fmt: skip
    result.tables.append(
        "| n | peak step (uv map) | predicted t_peak |\n|---|---|---|\n"
        + "\n".join(f"| {w:.0e} | {s} | {p:.1f} |" for w, s, p in zip(cfg["widths"], peak_steps, predicted))
    )
    shown = f" (the first of {seeds} inits; the checks take every run)"
    fig = plots.curves(ctx.figure_path("catapult_uv.png"), panels, title=TITLE + shown, width=4.6)
    fig_kernel = plots.curves(ctx.figure_path("catapult_uv_kernel.png"), kernel_panels,
                              title="uv model: the tangent kernel λ against 2/η, the same runs" + shown, width=4.6)  # fmt: skip
    result.figures += [str(fig.relative_to(ctx.out_dir)), str(fig_kernel.relative_to(ctx.out_dir))]
    result.seconds = time.perf_counter() - started
    return result
