import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

from tests.helpers import SAME_ALGORITHM_RTOL, SPECIAL_RTOL
from widenet.theory.special import exprel, gamma_table, scaled_upper_gamma, scaled_upper_gamma_tabulated


def _reference(p, log_u):
    """H(p,u) = u^{-p} e^u Γ(p,u) = (1/u)∫_0^∞ (1 + v/u)^{p-1} e^{-v} dv, by 30-digit quadrature."""
    with mp.workdps(30):
        u = mp.e ** mp.mpf(log_u)
        integral = mp.quad(lambda v: (1 + v / u) ** (p - 1) * mp.e ** (-v), [0, 1, 10, 100, mp.inf])
        return float(integral / u)


ORDERS = [0.5, 0.25, 1e-9, 0.0, -1e-9, -0.5, -2.5, -50.0, -499.5]
LOG_ARGS = [-5.0, -1.0, 0.0, np.log(1.99), np.log(2.0), np.log(2.01), 1.0, 5.0, 18.42]


@pytest.mark.parametrize("p", ORDERS)
def test_scaled_upper_gamma_matches_mpmath_quadrature(p):
    got = np.asarray(jax.jit(scaled_upper_gamma)(jnp.full(len(LOG_ARGS), p), jnp.asarray(LOG_ARGS)))
    want = np.array([_reference(p, lu) for lu in LOG_ARGS])
    np.testing.assert_allclose(got, want, rtol=SPECIAL_RTOL)


def test_exponential_integral_case_equals_scipy_exp1():
    # p = 0 (k = 2 in eq. 3): H(0, u) = e^u E1(u)
    from scipy.special import exp1

    u = np.geomspace(1e-6, 600.0, 40)
    got = np.asarray(scaled_upper_gamma(0.0, jnp.log(u)))
    np.testing.assert_allclose(got, np.exp(u) * exp1(u), rtol=SPECIAL_RTOL)


def test_positive_order_equals_scipy_gammaincc():
    from scipy.special import gamma, gammaincc

    u = np.geomspace(1e-3, 50.0, 30)
    p = 0.3
    want = u ** (-p) * np.exp(u) * gammaincc(p, u) * gamma(p)
    np.testing.assert_allclose(np.asarray(scaled_upper_gamma(p, jnp.log(u))), want, rtol=1e-12)


def test_log_scale_combines_exponents_where_factors_under_and_overflow():
    # e^{-800} underflows and H(1/2, e^{-800}) ~ e^{400} is large; their product is e^{-400}·(...)
    p, log_u = 0.5, -800.0
    got = float(scaled_upper_gamma(p, log_u, log_scale=-800.0))
    # H(p,u) -> u^{-p} Γ(p) for u -> 0
    want = np.exp(-800.0 - p * log_u) * float(mp.gamma(p))
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_exprel_is_smooth_through_zero():
    z = np.array([-1e-3, -1e-6, 0.0, 1e-6, 1e-3, 1.0, -30.0])
    with mp.workdps(30):
        want = [1.0 if v == 0 else float(mp.expm1(mp.mpf(v)) / v) for v in z]
    np.testing.assert_allclose(np.asarray(exprel(z)), want, rtol=SAME_ALGORITHM_RTOL)


def test_gradient_is_finite_on_both_branches():
    g = jax.grad(lambda lu: scaled_upper_gamma(0.25, lu))
    for lu in (-3.0, 0.5, 3.0):
        assert np.isfinite(float(g(lu)))


# --- the tabulated evaluation (special.gamma_table / scaled_upper_gamma_tabulated) -------------

TABLE_LOG_ARGS = [-1400.0, -100.0, -40.5, -40.0, -39.99, -17.3, -5.0, 0.0, 0.69, 5.0, 47.99, 48.0, 60.0, 300.0]


def _reference_exact(p, log_u, log_scale):
    """e^s u^{-p} e^u Γ(p, u) from mpmath's incomplete gamma at 120 digits (quadrature where it underflows).

    120, not 50: at p = -50, u = e^5.5 mpmath's gammainc at 50 digits is off by 3% (cancellation).
    """
    if log_u > 30:  # e^{-u} underflows mpmath's gammainc; the scaled integral does not
        return float(np.exp(log_scale) * _reference(p, log_u))
    with mp.workdps(120):
        u = mp.e ** mp.mpf(log_u)
        gamma_pu = mp.e1(u) if p == 0 else mp.gammainc(mp.mpf(p), u)
        return float(mp.e ** (mp.mpf(log_scale) + u - p * mp.mpf(log_u)) * gamma_pu)


@pytest.mark.parametrize("p", [0.5, 0.25, 1e-9, 0.0, -1e-9, -0.5, -1.0, -2.5, -50.0])
def test_tabulated_matches_mpmath_on_every_piece(p):
    # x < -40 (exact tail), the table (both sides of x = 0 and of segment edges), x >= 48 (asymptotic);
    # log_scale keeps e^s H in range where H alone would over- or underflow.
    log_u = np.asarray(TABLE_LOG_ARGS)
    log_scale = np.where(log_u < 0, p * log_u, log_u)
    got = np.asarray(jax.jit(scaled_upper_gamma_tabulated)(gamma_table(p), log_u, log_scale))
    want = np.array([_reference_exact(p, a, s) for a, s in zip(log_u, log_scale)])
    # 1e-13 plus the argument's own conditioning: d log H / d log u ~ max(1, u), u known to 1.1e-16 |x|
    np.testing.assert_allclose(got, want, rtol=SPECIAL_RTOL + 2.2e-16 * np.abs(log_u).max())


@pytest.mark.parametrize("p", [0.5, 0.0, -0.5, -1.0000000000000002, -499.5])
def test_tabulated_equals_direct_evaluation_on_a_dense_grid(p):
    # two routes to one function: the table (built once) and the two-branch evaluation at every point
    log_u = np.linspace(-45.0, 50.0, 9501)
    got = np.asarray(scaled_upper_gamma_tabulated(gamma_table(p), log_u))
    want = np.asarray(scaled_upper_gamma(p, log_u))
    np.testing.assert_allclose(got, want, rtol=SPECIAL_RTOL)


def test_tabulated_gradient_matches_direct_evaluation():
    table = gamma_table(-0.5)
    for lu in (-50.0, -3.0, 0.5, 3.0, 60.0):
        got = float(jax.grad(lambda x: scaled_upper_gamma_tabulated(table, x))(lu))
        want = float(jax.grad(lambda x: scaled_upper_gamma(-0.5, x))(lu))
        # at x = -50 the slope (~2e-11) is a difference of O(1) terms: exact to 1e-13 of H ~ 2, not relatively
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-13 * float(scaled_upper_gamma(-0.5, lu)))


def test_gamma_table_refuses_orders_outside_the_scaled_form():
    with pytest.raises(ValueError, match="p"):
        gamma_table(0.75)
    with pytest.raises(ValueError, match="scalar"):
        gamma_table(np.array([0.0, 0.1]))
