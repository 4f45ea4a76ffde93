import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

from tests.helpers import SAME_ALGORITHM_RTOL, SPECIAL_RTOL
from widenet.theory.special import exprel, scaled_upper_gamma


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
