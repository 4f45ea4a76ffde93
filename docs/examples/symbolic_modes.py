"""Eq. 3 of the L2 paper solved symbolically (sympy) and checked three ways, then plotted.

The mode solution comes out of `widenet.theory.symbolic` as a sympy expression in t, γ, λ, f0, y.
`ode_residual` proves it solves the mode ODE (it simplifies to 0). `numeric` evaluates it with
mpmath, which is compared with the jitted closed form `l2_homogeneous.mode_solution`.
`python docs/examples/symbolic_modes.py [--small] [--out DIR]`.
"""

import argparse
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from widenet.theory import l2_homogeneous as l2h  # noqa: E402
from widenet.theory import symbolic  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--small", action="store_true", help="fewer points (what the tests run)")
parser.add_argument("--out", default=".")
args = parser.parse_args()
lam, gamma, f0, y = 0.01, 1.0, 0.3, 1.0
ts = np.linspace(0.0, 500.0, 12 if args.small else 200)

fig = Figure(figsize=(6.0, 4.2))
ax = fig.subplots()
for k, colour in ((1, "C0"), (1.5, "C1"), (2, "C2"), (3, "C3")):
    expr = symbolic.mode_solution(k)
    residual = symbolic.ode_residual(expr, k)  # 0: the expression solves f' = -γe^{-2(k-1)λt}(f - y) - kλf
    exact = symbolic.numeric(expr)(ts, gamma, lam, f0, y)  # mpmath, point by point
    fast = np.asarray(l2h.mode_solution(ts, gamma, y, f0, l2=lam, k=k))  # jit, scaled incomplete gamma
    print(f"k = {k}: ODE residual {residual}; max |sympy - closed form| = {np.max(np.abs(exact - fast)):.1e}")
    ax.plot(ts * lam, fast, color=colour, lw=2, label=f"k = {k}: closed form (jit)")
    ax.plot(ts[:: max(1, len(ts) // 20)] * lam, exact[:: max(1, len(ts) // 20)], "o", color=colour, ms=4, mfc="none",
            label=f"k = {k}: sympy + mpmath")  # fmt: skip
ax.set_xlabel("λt")
ax.set_ylabel("mode output f(t)")
ax.set_title(f"eq. 3 for one mode: γ = {gamma}, λ = {lam}, f0 = {f0}, y = {y}")
ax.legend(fontsize=7)
ax.grid(alpha=0.3)
path = Path(args.out) / "symbolic_modes.png"
fig.tight_layout()
fig.savefig(path, dpi=110)
print("figure:", path)
