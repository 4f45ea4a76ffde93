"""Special functions for the closed-form mode solution, evaluated in scaled form.

The integral in eq. 3 of the L2 paper is an upper incomplete gamma function
$\\Gamma(p, u) = \\int_u^\\infty s^{p-1} e^{-s} ds$ with $p \\le 1/2$ (possibly very negative).
Both $\\Gamma(p, u)$ and the $e^{u}$ that multiplies it in eq. 3 overflow for large $u$, so we
evaluate the *scaled* function

$$ H(p, u) = u^{-p} e^{u} \\Gamma(p, u), $$

which is O(1/u) for large $u$ and O(u^{-p}) for small $u$. It is computed from $\\log u$ so
that $u$ may underflow (late times of eq. 3 give $u = u_0 e^{-2(k-1)\\lambda t}$).

Two branches, both with a fixed number of iterations (jit-, vmap- and grad-friendly):

* $u \\ge 2$: Legendre's continued fraction
  $H(p,u) = 1/(u+1-p-\\frac{1(1-p)}{u+3-p-}\\frac{2(2-p)}{u+5-p-}\\cdots)$ (DLMF 8.9.2),
  evaluated by the modified Lentz algorithm.
* $u < 2$: $\\Gamma(p,u) = \\Gamma(p,2) + \\int_u^2 s^{p-1}e^{-s}ds$ with the integral as the
  alternating series $\\sum_n \\frac{(-1)^n}{n!}\\frac{2^{q}-u^{q}}{q}$, $q = p + n$, each term
  written as $u^{p+n}\\,L\\,\\mathrm{exprel}(qL)$, $L=\\log(2/u)$, which has no cancellation at
  $q = 0$ (the exponential-integral case $k = 2$) and no overflow.

`scaled_upper_gamma` evaluates both branches at every point (a `jnp.where`), ~250 ns a point. For a
fixed order $p$ (eq. 3 has one, $p = (k-2)/(2(k-1))$) `gamma_table(p)` tabulates it once as
piecewise Chebyshev series in $x = \\log u$ and `scaled_upper_gamma_tabulated` evaluates it at
~10 ns a point with the same accuracy (1e-13, tested against mpmath and against `scaled_upper_gamma`):

* $x \\in [-40, 48)$: 88 segments of width 1, each a degree-16 Chebyshev series of
  $F(x) = e^{\\max(x,0)} H(p, e^x)$ (bounded on each segment; $H$ is analytic in $x$ in the strip
  $|\\mathrm{Im}\\,x| < \\pi$, so the series converge like $12.7^{-n}$);
* $x < -40$ ($u < 4\\cdot10^{-18}$): exactly, up to a relative $u_{lo} = e^{-40}$, since
  $e^{-s} = 1$ there, $\\Gamma(p,u) = \\Gamma(p,u_{lo}) + (u_{lo}^p - u^p)/p$, i.e. with $d = -40 - x$,
  $H(p,u) = e^{pd}H(p,u_{lo}) + d\\,\\mathrm{exprel}(pd)$ (any $p$, including 0 and negative integers);
* $x \\ge 48$: $uH = 1$ to double precision, since the asymptotic series $uH = 1 + (p-1)/u + \\dots$
  (DLMF 8.11.2) has $|p-1|/u < 1.5\\cdot10^{-17}$ there for the orders a table accepts,
  $-10^4 \\le p \\le 1/2$ (k ≥ 1.00005 in eq. 3; closer to 1, eq. 3 takes the per-point route).
"""

import math
from dataclasses import dataclass
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_range, check_real

__all__ = ["scaled_upper_gamma", "gamma_table", "GammaTable", "scaled_upper_gamma_tabulated", "exprel"]

_CF_TERMS = 56  # Lentz iterations for u >= 2: converged to ~1e-15 at u = 2 by 45 (tests/theory/test_special.py)
_SERIES_TERMS = 30  # alternating series for u < 2: 2^n / n! < 1e-23 at n = 30
_SWITCH = 2.0


def exprel(z):
    """$(e^z - 1)/z$, equal to 1 at $z = 0$, accurate for all real $z$ that do not overflow."""
    check_real("z", z)
    z = jnp.asarray(z)
    small = jnp.abs(z) < 1e-4
    z_safe = jnp.where(small, 1.0, z)
    series = 1.0 + z / 2.0 + z * z / 6.0 + z * z * z / 24.0
    return jnp.where(small, series, jnp.expm1(z_safe) / z_safe)


def _log_exprel(z):
    """$\\log((e^z - 1)/z)$ without overflow for large positive $z$."""
    big = z > 1.0
    z_big = jnp.where(big, z, 2.0)
    z_small = jnp.where(big, 0.0, z)
    return jnp.where(big, z_big + jnp.log(-jnp.expm1(-z_big)) - jnp.log(z_big), jnp.log(exprel(z_small)))


def _continued_fraction(p, u):
    """$H(p, u)$ for $u \\ge 2$ by the modified Lentz algorithm on DLMF 8.9.2."""
    tiny = 1e-300
    b = u + 1.0 - p
    d = 1.0 / b
    c = jnp.full_like(b, 1.0 / tiny)
    h = d

    def body(i, carry):
        b, c, d, h = carry
        n = i + 1.0
        a = -n * (n - p)
        b = b + 2.0
        d = a * d + b
        d = jnp.where(jnp.abs(d) < tiny, tiny, d)
        c = b + a / c
        c = jnp.where(jnp.abs(c) < tiny, tiny, c)
        d = 1.0 / d
        return b, c, d, h * d * c

    *_, h = jax.lax.fori_loop(0, _CF_TERMS, body, (b, c, d, h))
    return h


def _series_below_two(p, log_u, log_scale):
    """$e^{s} u^{-p}\\int_u^2 t^{p-1}e^{-t}dt$ for $u < 2$ as a stable alternating series.

    Term n is $\\frac{(-1)^n}{n!} e^{s} u^{-p}\\frac{2^q - u^q}{q}$, $q = p + n$, computed as
    $(2^n e^{pL + s} - u^n e^{s})/q$ with $L = \\log(2/u)$; the one term with $q$ nearest 0 (the
    exponential-integral case) is computed as $e^{n\\log u + s} L\\,\\mathrm{exprel}(qL)$ instead.
    """
    ell = jnp.log(2.0) - log_u  # L = log(2/u) > 0
    u = jnp.exp(log_u)
    big = jnp.exp(p * ell + log_scale)  # 2^{-n} e^{s} u^{-p} 2^q
    n_near = jnp.clip(jnp.round(-p), 0, _SERIES_TERMS - 1)
    q_near = p + n_near
    near = jnp.exp(n_near * log_u + log_scale + jnp.log(ell) + _log_exprel(q_near * ell))
    total = jnp.zeros_like(ell)
    small = jnp.exp(log_scale)  # u^n e^{s}, by recurrence
    for n in range(_SERIES_TERMS):
        q = p + n
        q_safe = jnp.where(n_near == n, 1.0, q)
        term = jnp.where(n_near == n, near, (2.0**n * big - small) / q_safe)
        total = total + ((-1.0) ** n / math.factorial(n)) * term
        small = small * u
    return total


def scaled_upper_gamma(p, log_u, log_scale=0.0):
    """$H(p, u) = u^{-p} e^{u} \\Gamma(p, u)$ from $\\log u$, for real $p \\le 1/2$.

    The upper incomplete gamma function $\\Gamma(p, u)$ (DLMF 8.2.2), scaled so that it stays
    finite for $u$ from underflow to 1e300. Used by `l2_homogeneous.mode_solution` (L2 paper,
    eq. 3). Checked against mpmath to 1e-13 relative in `tests/test_special.py`.

    Args:
        p: order, any real <= 1/2 (broadcasts with `log_u`).
        log_u: natural log of the argument $u > 0$.
        log_scale: optional $s$; the result is multiplied by $e^{s}$ with the exponents combined
            before exponentiation, so that $e^{s} H(p, u)$ is accurate when $e^{s}$ alone would
            underflow and $H$ overflow (late times of eq. 3).

    Returns:
        $e^{s} H(p, u)$, same broadcast shape, float64 when x64 is on.
    """
    check_range("p", p, high=0.5, meaning="the scaled form covers orders p <= 1/2")
    check_range("log_u", log_u, meaning="log of the argument u > 0")
    p_own = jnp.asarray(p, dtype=float)
    p, log_u, log_scale = jnp.broadcast_arrays(
        p_own, jnp.asarray(log_u, dtype=float), jnp.asarray(log_scale, dtype=float)
    )
    log_switch = jnp.log(_SWITCH)
    large = log_u >= log_switch
    u_large = jnp.exp(jnp.where(large, log_u, log_switch))
    h_large = jnp.exp(log_scale) * _continued_fraction(p, u_large)
    # u < 2: H(p,u) = e^u [ (2/u)^p e^{-2} H(p,2) + u^{-p} int_u^2 ... ]
    log_u_small = jnp.where(large, 0.0, log_u)
    h_two = jnp.broadcast_to(_continued_fraction(p_own, jnp.full_like(p_own, _SWITCH)), p.shape)  # once per order
    u_small = jnp.exp(log_u_small)
    head = jnp.exp(p * (jnp.log(2.0) - log_u_small) - _SWITCH + u_small + log_scale) * h_two
    h_small = head + _series_below_two(p, log_u_small, u_small + log_scale)
    return jnp.where(large, h_large, h_small)


# Piecewise Chebyshev table of F(x) = e^{max(x,0)} H(p, e^x); accuracy in tests/theory/test_special.py.
_TABLE_LO, _TABLE_HI, _TABLE_DEGREE = -40.0, 48.0, 16
TABLE_MIN_ORDER = -1e4  # above u = e^48, |p - 1|/u < 1.5e-17 for every tabulated order
_TABLE_SEGMENTS = int(_TABLE_HI - _TABLE_LO)  # width 1


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class GammaTable:
    """$H(p, \\cdot)$ for one order $p$ as piecewise Chebyshev coefficients (see the module docstring).

    Attributes:
        p: the order (a float64 scalar array).
        coeffs: (17, 88) Chebyshev coefficients, coefficient-major, segment $j$ covering
            $x = \\log u \\in [-40 + j, -39 + j)$.
        h_lo: $H(p, e^{-40})$, the start of the small-$u$ tail.
    """

    p: jax.Array
    coeffs: jax.Array
    h_lo: jax.Array


def gamma_table(p):
    """Tabulate $H(p, u) = u^{-p} e^u \\Gamma(p, u)$ for one real order $-10^4 \\le p \\le 1/2$ (cached per $p$).

    Costs 1496 evaluations of `scaled_upper_gamma` (about a millisecond, once per order); use the
    result with `scaled_upper_gamma_tabulated`. `p` must be concrete (not traced).
    """
    check_range("p", p, low=TABLE_MIN_ORDER, high=0.5,
                meaning="tabulated orders; below -1e4 use scaled_upper_gamma, whose series covers any p <= 1/2")
    value = np.asarray(p, dtype=float)
    if value.ndim != 0:
        raise ValueError(f"`p` must be a scalar order for a table; got shape {value.shape}")
    return _gamma_table(float(value))


@lru_cache(maxsize=64)
def _gamma_table(p):
    n = _TABLE_DEGREE + 1
    angles = np.pi * (np.arange(n) + 0.5) / n
    xs = _TABLE_LO + np.arange(_TABLE_SEGMENTS)[:, None] + (np.cos(angles)[None, :] + 1.0) / 2.0
    with jax.ensure_compile_time_eval():  # concrete arrays even when first asked for inside a jit
        values = np.asarray(_scaled_upper_gamma_jit(p, xs, np.maximum(xs, 0.0)))
        h_lo = np.asarray(_scaled_upper_gamma_jit(p, _TABLE_LO, 0.0))
        coeffs = (2.0 / n) * np.cos(np.outer(np.arange(n), angles)) @ values.T  # (n, segments)
        coeffs[0] /= 2.0
        return GammaTable(p=jnp.asarray(p, dtype=float), coeffs=jnp.asarray(coeffs), h_lo=jnp.asarray(h_lo))


@jax.jit
def _scaled_upper_gamma_jit(p, log_u, log_scale):
    return scaled_upper_gamma(p, log_u, log_scale)


def scaled_upper_gamma_tabulated(table, log_u, log_scale=0.0):
    """$e^{s} H(p, u)$ from a `gamma_table(p)`: `scaled_upper_gamma` at one branch's cost.

    Same contract as `scaled_upper_gamma` (argument $\\log u$, optional $s$ = `log_scale`), same
    accuracy (1e-13 relative, tests/theory/test_special.py), about 25x faster on CPU: a segment
    lookup and a 17-term Clenshaw recurrence, or an exact tail (module docstring). jit/vmap/grad
    friendly in `log_u` and `log_scale` (not in $p$: the table is built for a concrete order).
    """
    if not isinstance(table, GammaTable):
        raise ValueError(f"`table` must be a GammaTable from gamma_table(p); got {type(table).__name__}")
    check_range("log_u", log_u, finite=False, meaning="log of the argument u > 0")
    x, log_scale = jnp.broadcast_arrays(jnp.asarray(log_u, dtype=float), jnp.asarray(log_scale, dtype=float))
    p, coeffs = table.p, table.coeffs
    segment = jnp.clip(jnp.floor(x - _TABLE_LO), 0, _TABLE_SEGMENTS - 1).astype(jnp.int32)
    z = 2.0 * (x - _TABLE_LO - segment) - 1.0
    b1 = jnp.zeros_like(x)
    b2 = jnp.zeros_like(x)
    for m in range(_TABLE_DEGREE, 0, -1):  # Clenshaw; one gather per coefficient row (contiguous)
        b1, b2 = 2.0 * z * b1 - b2 + jnp.take(coeffs[m], segment), b1
    f_table = z * b1 - b2 + jnp.take(coeffs[0], segment)
    scale = jnp.exp(log_scale - jnp.maximum(x, 0.0))  # e^{s - max(x, 0)}
    # u < e^-40: e^{s}[e^{pd} H_lo + (e^{pd} - 1)/p], d = -40 - x; three forms without cancellation
    d = jnp.maximum(_TABLE_LO - x, 0.0)
    pd = p * d
    e_s = jnp.exp(log_scale)
    p_safe = jnp.where(p == 0.0, 1.0, p)
    grow_part = jnp.where(
        jnp.abs(pd) < 1e-4,
        e_s * d * (1.0 + pd * (0.5 + pd * (1.0 / 6.0 + pd / 24.0))),
        jnp.where(pd <= 1.0, e_s * jnp.expm1(jnp.minimum(pd, 1.0)) / p_safe, (jnp.exp(log_scale + pd) - e_s) / p_safe),
    )
    h_low = jnp.exp(log_scale + pd) * table.h_lo + grow_part
    # u >= e^48: u H = 1 - (1 - p)/u + ... = 1 to double precision for tabulated p (module docstring)
    return jnp.where(x >= _TABLE_HI, scale, jnp.where(x < _TABLE_LO, h_low, scale * f_table))
