"""SM B.1 of the L2 paper: the late-time fixed point of a finite-width 2-layer linear net with L2."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize

from widenet import networks
from widenet.theory import finite_width as fw


@pytest.mark.parametrize("width", [16, 100, 4096])
@pytest.mark.parametrize("rho", [1e-9, 0.2, 0.5, 0.9, 0.999, 1.0, 1.5])
def test_one_sample_is_eq_s26(width, rho):
    """x = y = 1, d = 1: f = 1 - λ√n below λ√n = 1 (eq. S26, sign corrected), 0 above."""
    l2 = rho / np.sqrt(width)
    point = fw.linear_fixed_point([[1.0]], [1.0], l2=l2, width=width)
    assert point.threshold * np.sqrt(width) == pytest.approx(1.0, rel=1e-14)
    assert point.nontrivial == (rho < 1.0)
    np.testing.assert_allclose(point.f_train, [max(1.0 - rho, 0.0)], rtol=1e-12, atol=1e-14)
    # the kernel of f = c W1 W0 x at the balanced point: 2 c |w| for x = 1
    np.testing.assert_allclose(
        fw.linear_fixed_point_ntk(point, [[1.0]]),
        [[2.0 * max(1.0 - rho, 0.0) / np.sqrt(width)]],
        rtol=1e-12,
        atol=1e-15,
    )


def _problem(seed, n=6, d=3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=n)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_fixed_point_minimises_the_convex_problem(fraction):
    """Against a generic solver on ½‖Xw - y‖² + (λ/c)‖w‖ (independent of the μ-bisection)."""
    x, y = _problem(0)
    width = 64
    threshold = fw.linear_l2_threshold(x, y, width=width)
    l2 = fraction * threshold
    point = fw.linear_fixed_point(x, y, l2=l2, width=width)
    kappa = l2 / point.scale

    def objective(w):
        return 0.5 * np.sum((x @ w - y) ** 2) + kappa * np.linalg.norm(w)

    best = optimize.minimize(objective, np.ones(3), method="BFGS", options={"gtol": 1e-12})
    np.testing.assert_allclose(point.w, best.x, rtol=1e-6, atol=1e-8)
    assert objective(point.w) <= best.fun + 1e-12


@pytest.mark.parametrize("fraction", [0.4, 1.6])
def test_gd_on_the_stax_network_converges_to_the_fixed_point(fraction):
    """GD with L2 on the real 2-layer linear stax net (identity activation, NTK parameterisation)
    ends at the predicted outputs and kernel, below and above the threshold."""
    x, y = _problem(1)
    width = 32
    net = networks.mlp((width,), activation="identity")
    params = net.init(jax.random.PRNGKey(0), x.shape[1])
    l2 = fraction * fw.linear_l2_threshold(x, y, width=width)
    xs, ys = jnp.asarray(x), jnp.asarray(y)[:, None]

    def total(p):
        leaves = jax.tree.leaves(p)
        return 0.5 * jnp.sum((net.apply_fn(p, xs) - ys) ** 2) + 0.5 * l2 * sum(jnp.sum(q**2) for q in leaves)

    grad = jax.jit(jax.grad(total))
    eta = 0.05

    @jax.jit
    def run(p):
        return jax.lax.fori_loop(0, 40_000, lambda _, q: jax.tree.map(lambda a, g: a - eta * g, q, grad(q)), p)

    final = run(params)
    point = fw.linear_fixed_point(x, y, l2=l2, width=width)
    np.testing.assert_allclose(np.asarray(net.apply_fn(final, xs))[:, 0], point.f_train, rtol=1e-8, atol=1e-10)
    ntk = np.asarray(networks.empirical_ntk(net.apply_fn)(xs, None, final))
    np.testing.assert_allclose(ntk, fw.linear_fixed_point_ntk(point, x), rtol=1e-7, atol=1e-10)


def test_fixed_point_kernel_shrinks_as_one_over_root_width_at_fixed_l2_root_n():
    x, y = _problem(2)
    tops = []
    for width in (100, 400, 1600):
        rho = 0.5 * fw.linear_l2_threshold(x, y, width=width) * np.sqrt(width)
        point = fw.linear_fixed_point(x, y, l2=rho / np.sqrt(width), width=width)
        tops.append(np.linalg.eigvalsh(fw.linear_fixed_point_ntk(point, x))[-1])
    np.testing.assert_allclose(np.diff(np.log(tops)) / np.log(4.0), -0.5, rtol=1e-10)


@settings(max_examples=25, deadline=None)
@given(st.floats(-5.0, -1e-12) | st.just(0.0) | st.just(float("nan")) | st.just(float("inf")))
def test_bad_l2_is_refused(l2):
    x, y = _problem(0)
    with pytest.raises(ValueError, match="l2"):
        fw.linear_fixed_point(x, y, l2=l2, width=8)


@pytest.mark.parametrize("fraction", [1e-30, 1e-12, 1.0 - 1e-12])
def test_kkt_holds_at_extreme_l2_and_rank_deficient_inputs(fraction):
    """μ-bisection in log space: tiny λ (μ -> 0) and λ just under the threshold (μ -> ∞), with a
    rank-deficient X (d > n and a repeated column): the optimality condition Xᵀ(Xw - y) + (λ/c) w/‖w‖ = 0."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 6))
    x[:, 5] = x[:, 4]
    y = rng.normal(size=4)
    width = 50
    l2 = fraction * fw.linear_l2_threshold(x, y, width=width)
    point = fw.linear_fixed_point(x, y, l2=l2, width=width)
    assert point.nontrivial
    kkt = x.T @ (x @ point.w - y) + (l2 / point.scale) * point.w / np.linalg.norm(point.w)
    assert np.linalg.norm(kkt) <= 1e-9 * np.linalg.norm(x.T @ y)
    assert np.linalg.norm(point.w - np.linalg.pinv(x) @ (x @ point.w)) <= 1e-9 * np.linalg.norm(point.w)  # in row(X)


def test_bad_shapes_and_width_are_refused():
    x, y = _problem(0)
    with pytest.raises(ValueError, match="`y`"):
        fw.linear_fixed_point(x, np.ones((6, 2)), l2=0.1, width=8)
    with pytest.raises(ValueError, match="`y`"):
        fw.linear_fixed_point(x, np.ones(5), l2=0.1, width=8)
    with pytest.raises(ValueError, match="`x`"):
        fw.linear_fixed_point(np.ones(6), y, l2=0.1, width=8)
    with pytest.raises(ValueError, match="width"):
        fw.linear_fixed_point(x, y, l2=0.1, width=0)
