import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

from widenet.theory import l2_homogeneous as l2h
from widenet.theory import symbolic


@pytest.mark.parametrize("k", [1, 2, 3, 1.5, sp.Rational(5, 2), None])
def test_mode_solution_solves_the_mode_ode(k):
    expr = symbolic.mode_solution(k)
    assert symbolic.ode_residual(expr, k) == 0
    assert sp.simplify(expr.subs(symbolic.t, 0) - symbolic.f0) == 0


def test_a_wrong_expression_does_not_pass_the_residual_check():
    wrong = symbolic.mode_solution(2).subs(symbolic.l2, 2 * symbolic.l2)
    assert symbolic.ode_residual(wrong, 2) != 0


@pytest.mark.parametrize("k", [1, 2, 3, 2.5])
def test_numeric_function_agrees_with_the_closed_form_in_jax(k):
    fn = symbolic.numeric(symbolic.mode_solution(k))
    for t, gamma, l2, f0, y in [(5.0, 0.7, 0.01, 0.3, 1.0), (300.0, 2.0, 0.02, -0.2, 0.5)]:
        want = float(l2h.mode_solution(jnp.asarray(t), gamma, y, f0, l2=l2, k=float(k)))
        np.testing.assert_allclose(float(fn(t, gamma, l2, f0, y)), want, rtol=1e-12)


def test_numeric_function_takes_arrays():
    fn = symbolic.numeric(symbolic.mode_solution(2))
    ts = np.array([0.0, 5.0, 50.0])
    got = fn(ts, np.array([[0.7], [2.0]]), 0.01, 0.3, 1.0)  # broadcast (2, 3)
    want = np.asarray(l2h.mode_solution(jnp.asarray(ts), jnp.array([0.7, 2.0]), 1.0, 0.3, l2=0.01, k=2.0)).T
    assert got.shape == (2, 3) and got.dtype == float
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_symbolic_k_numeric_takes_k_last():
    fn = symbolic.numeric(symbolic.mode_solution(None))
    want = float(l2h.mode_solution(jnp.asarray(50.0), 1.0, 1.0, 0.3, l2=0.01, k=2.5))
    np.testing.assert_allclose(float(fn(50.0, 1.0, 0.01, 0.3, 1.0, 2.5)), want, rtol=1e-12)


def test_k_below_one_is_rejected():
    with pytest.raises(ValueError, match="`k` must be >= 1"):
        symbolic.mode_solution(0.5)
