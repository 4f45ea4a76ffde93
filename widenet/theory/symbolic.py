"""Eq. 3 of the L2 paper as a sympy expression, for users who solve mode equations analytically.

    >>> from widenet.theory import symbolic
    >>> expr = symbolic.mode_solution(2)          # k = 2: upper incomplete gamma of order 0 (E1)
    >>> symbolic.ode_residual(expr, 2)            # substituted into the mode ODE (eq. 1)
    0
    >>> f = symbolic.numeric(expr)                # fast numeric function f(t, gamma, l2, f0, y)

The symbols are `t, gamma, l2, f0, y` (all positive except f0 and y, which are real) and `k` when
no number is given. With $c = 2(k-1)\\lambda$, $u(t) = \\gamma e^{-ct}/c$, $p = (k-2)/(2(k-1))$:
$$ f(t) = e^{u(t) - u(0) - k\\lambda t} f_0 + \\frac{\\gamma y}{c} u(0)^{-p} e^{u(t) - k\\lambda t}
\\left[\\Gamma(p, u(t)) - \\Gamma(p, u(0))\\right] $$
(docs/theory_l2.md derives it); k = 1 gives the linear model.
"""

import numpy as np
import sympy as sp

__all__ = ["symbols", "mode_solution", "mode_ode_rhs", "ode_residual", "numeric"]

t, gamma, l2 = sp.symbols("t gamma l2", positive=True)
f0, y = sp.symbols("f0 y", real=True)
k_symbol = sp.Symbol("k", positive=True)


def symbols():
    """The sympy symbols used by the expressions: dict name -> Symbol."""
    return {"t": t, "gamma": gamma, "l2": l2, "f0": f0, "y": y, "k": k_symbol}


def _k(k):
    if k is None:
        return k_symbol
    k = sp.nsimplify(k)
    if k.is_number and k < 1:
        raise ValueError(f"`k` must be >= 1 (degree of homogeneity); got k={k}")
    return k


def mode_solution(k=None):
    """Eq. 3 (L2 paper, Thm 2) in t, γ, λ, f0, y; `k` a number (int, float, Rational) or None for a symbol.

    k = 1 returns the linear model $f^* + (f_0 - f^*)e^{-(\\gamma+\\lambda)t}$, $f^* = \\gamma y/(\\gamma+\\lambda)$.
    A symbolic k stands for any k > 1.
    """
    k = _k(k)
    if k == 1:
        f_star = gamma * y / (gamma + l2)
        return f_star + (f0 - f_star) * sp.exp(-(gamma + l2) * t)
    c = 2 * (k - 1) * l2
    p = sp.simplify((k - 2) / (2 * (k - 1)))
    u0 = gamma / c
    u = u0 * sp.exp(-c * t)
    return sp.exp(u - u0 - k * l2 * t) * f0 + gamma * y / c * u0 ** (-p) * sp.exp(u - k * l2 * t) * (
        sp.uppergamma(p, u) - sp.uppergamma(p, u0)
    )


def mode_ode_rhs(f, k=None):
    """Right-hand side of eq. 1 for one MSE mode: $-\\gamma e^{-2(k-1)\\lambda t}(f - y) - k\\lambda f$."""
    k = _k(k)
    return -gamma * sp.exp(-2 * (k - 1) * l2 * t) * (f - y) - k * l2 * f


def ode_residual(expr, k=None):
    """$\\dot f - \\mathrm{rhs}(f)$ simplified; 0 proves that `expr` solves the mode ODE."""
    residual = sp.diff(expr, t) - mode_ode_rhs(expr, k)
    residual = sp.expand(sp.powsimp(sp.expand_power_base(sp.expand(residual), force=True), force=True))
    residual = sp.simplify(residual)
    # bring every exponent to one rational function of k, so equal exponents cancel (symbolic k)
    canonical = residual.replace(lambda e: isinstance(e, sp.exp), lambda e: sp.exp(sp.factor(sp.cancel(e.args[0]))))
    return sp.simplify(canonical)


def numeric(expr, *, modules="mpmath"):
    """A numeric function `f(t, gamma, l2, f0, y[, k])` of `expr` via `sympy.lambdify`.

    `modules="mpmath"` (default) evaluates the incomplete gamma function of any real order at the
    current mpmath precision; `modules="scipy"` is faster but scipy's incomplete gamma only covers
    k > 2 (order p > 0). For large arrays prefer `l2_homogeneous.mode_solution`, which is the same
    formula in overflow-safe scaled form under jit.

    The function takes scalars or arrays (broadcast against each other) and returns a float, or a
    float array of the broadcast shape (mpmath evaluates point by point).
    """
    if modules not in ("mpmath", "scipy", "numpy", "sympy"):
        raise ValueError(f"`modules` must be 'mpmath', 'scipy', 'numpy' or 'sympy'; got {modules!r}")
    args = [t, gamma, l2, f0, y] + ([k_symbol] if k_symbol in expr.free_symbols else [])
    scalar = sp.lambdify(args, expr, modules=modules)
    if modules == "sympy":
        return scalar
    pointwise = np.vectorize(lambda *values: float(scalar(*values)), otypes=[float])

    def fn(*values):
        if all(np.ndim(v) == 0 for v in values):
            return float(scalar(*values))
        return pointwise(*values)

    return fn
