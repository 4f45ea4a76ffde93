"""Fig. 5a/b of the L2 paper: single modes of eq. 3 for small and large γ/λ, k = 2 and k = 1,
closed form against a high-precision integration of the mode ODE (eq. 1)."""

import time

import numpy as np

from widenet import harness, plots
from widenet.theory import l2_homogeneous as l2h
from widenet.theory import ode

NAME = "l2_modes"
TITLE = "L2 paper Fig. 5a/b: mode solution (eq. 3) vs a high-precision ODE"
CLAIM = (
    "Each kernel mode of an MSE-trained k-homogeneous network with L2 follows eq. 3: for γ/λ > 1 it "
    "learns its label at t ~ 1/γ and decays to 0 at t ~ 1/λ (k = 2), while a linear model (k = 1) "
    "stays at γy/(γ+λ). The closed form must match an independent diffrax integration of eq. 1 "
    "(Dopri8, rtol 1e-13) to 1e-10 absolute for |y| = 1."
)


def _ode(ts, gammas, l2, k):
    return ode.function_space_ode(ts, np.diag(gammas), np.ones(2), np.zeros(2), l2=l2, k=k, rtol=1e-13, atol=1e-15)


def run(ctx: harness.Context):
    started = time.perf_counter()
    result = harness.ScenarioResult(NAME, TITLE, CLAIM)
    l2 = 0.01  # as Fig. 5a/b
    ratios = np.array([0.1, 100.0])  # gamma / lambda: small and large
    gammas = ratios * l2
    ts = np.concatenate([[0.0], np.geomspace(1e-2, 3e3, 240)])
    panels = []
    worst = {}
    for k in (2.0, 1.0):
        closed = np.asarray(l2h.mode_solution(ts, gammas, 1.0, 0.0, l2=l2, k=k))
        # independent route: diffrax on eq. 1 with a diagonal kernel diag(gamma)
        numeric = _ode(ts, gammas, l2, k)
        numeric = np.asarray(numeric.f_train[..., 0])
        worst[k] = float(np.max(np.abs(closed - numeric)))
        result.checks.append(
            harness.check(f"k={k:g}: max |eq.3 - ODE| over modes and t <= 30/λ", worst[k], below=1e-10)
        )
        panels.append(
            {
                "title": f"k = {k:g}, λ = {l2}",
                "xlabel": "t",
                "ylabel": "f_mode(t)  (y = 1, f0 = 0)",
                "xscale": "log",
                "theory": [(f"eq. 3, γ/λ = {r:g}", ts[1:], closed[1:, i]) for i, r in enumerate(ratios)],
                "experiment": [(f"ODE, γ/λ = {r:g}", ts[1::12], numeric[1::12, i]) for i, r in enumerate(ratios)],
                "vlines": [("t = 1/λ", 1 / l2)],
            }
        )
    # negative control: the k = 1 closed form against the k = 2 dynamics
    k1 = np.asarray(l2h.mode_solution(ts, gammas, 1.0, 0.0, l2=l2, k=1.0))
    k2 = np.asarray(_ode(ts, gammas, l2, 2.0).f_train[..., 0])
    result.checks.append(
        harness.check("control: max |k=1 closed form - k=2 ODE|", np.max(np.abs(k1 - k2)), above=0.1, kind="control")
    )
    # late-time limits (Thm 2): k = 2 decays to 0, k = 1 sits at gamma y/(gamma + lambda)
    late_k2 = np.abs(np.asarray(l2h.mode_solution(np.array([3e3]), gammas, 1.0, 0.0, l2=l2, k=2.0))).max()
    result.checks.append(harness.check("k=2 mode at λt = 30 (→ 0)", late_k2, below=1e-10))

    path = plots.curves(ctx.figure_path("l2_modes.png"), panels, title=TITLE, width=5.0)
    result.figures.append(str(path.relative_to(ctx.out_dir)))
    result.seconds = time.perf_counter() - started
    return result
