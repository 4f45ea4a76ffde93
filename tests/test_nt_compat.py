"""What widenet takes from neural-tangents, checked against independent routes (not NT against NT).

These run on whichever jax is installed; CI runs them on python3's newest jax and on Python >= 3.12's
newest jax (jax 0.12), so every shim in `widenet._nt` is exercised where it is applied.
"""

import subprocess
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from widenet import _nt, networks

# analytic kernels: the same closed formula in numpy; only summation order differs
KERNEL_RTOL = 1e-12


def _arccos_relu(k11, k22, k12):
    """E[relu(u) relu(v)] and E[relu'(u) relu'(v)] for (u, v) ~ N(0, [[k11, k12], [k12, k22]]).

    The arc-cosine kernels of Cho & Saul (2009), degrees 1 and 0:
    $\\frac{\\sqrt{k_{11}k_{22}}}{2\\pi}(\\sin\\theta + (\\pi-\\theta)\\cos\\theta)$ and $\\frac{\\pi-\\theta}{2\\pi}$,
    $\\cos\\theta = k_{12}/\\sqrt{k_{11}k_{22}}$.
    """
    norm = np.sqrt(np.outer(k11, k22))
    theta = np.arccos(np.clip(k12 / norm, -1.0, 1.0))
    value = norm / (2 * np.pi) * (np.sin(theta) + (np.pi - theta) * np.cos(theta))
    derivative = (np.pi - theta) / (2 * np.pi)
    return value, derivative


def _relu_kernels_numpy(x1, x2, w_std, depth):
    """NNGP and NTK of a bias-free ReLU MLP in NTK parameterization with `depth` hidden layers.

    Layer recursion (Jacot et al. 2018; Lee et al. 2019): $K^{0} = \\sigma_w^2 x\\cdot x'/d$,
    $\\Theta^0 = K^0$; $K^{l+1} = \\sigma_w^2 E[\\phi\\phi]$, $\\Theta^{l+1} = K^{l+1} + \\sigma_w^2
    E[\\phi'\\phi'] \\Theta^{l}$.
    """
    d = x1.shape[1]
    k12 = w_std**2 * x1 @ x2.T / d
    k11 = w_std**2 * np.sum(x1 * x1, axis=1) / d
    k22 = w_std**2 * np.sum(x2 * x2, axis=1) / d
    ntk = k12
    for _ in range(depth):
        value, derivative = _arccos_relu(k11, k22, k12)
        # diagonal variances propagate as E[relu(u)^2] = k/2
        k11, k22 = w_std**2 * k11 / 2, w_std**2 * k22 / 2
        k12 = w_std**2 * value
        ntk = k12 + w_std**2 * derivative * ntk
    return k12, ntk


@pytest.mark.parametrize("depth, w_std", [(1, 1.0), (2, 1.5), (3, 0.8)])
def test_analytic_relu_kernels_equal_the_arccosine_formula(depth, w_std):
    key1, key2 = jax.random.split(jax.random.PRNGKey(0))
    x1 = np.asarray(jax.random.normal(key1, (6, 5)))
    x2 = np.asarray(jax.random.normal(key2, (4, 5)))
    net = networks.mlp((32,) * depth, 1, W_std=w_std)
    kernels = net.kernel_fn(x1, x2, ("nngp", "ntk"))
    nngp, ntk = _relu_kernels_numpy(x1, x2, w_std, depth)
    np.testing.assert_allclose(kernels.nngp, nngp, rtol=KERNEL_RTOL)
    np.testing.assert_allclose(kernels.ntk, ntk, rtol=KERNEL_RTOL)


def test_analytic_relu_ntk_on_coincident_points_is_limited_by_arccos_conditioning():
    """On the diagonal cos θ = 1 exactly, but NT computes it as 1 - O(ε) and θ = arccos(cos θ) then
    carries an error of order √(2ε) ≈ 2e-8: the derivative kernel (π - θ)/(2π) is off by ~3e-9 per
    layer. This is why jax releases whose XLA rounds cos θ differently (0.9.2 against 0.8.3/0.10.2)
    give ReLU NTK diagonals that differ by ~1e-9 while everything else agrees to 1e-15."""
    x = np.asarray(jax.random.normal(jax.random.PRNGKey(3), (12, 5)))
    off_diagonal = ~np.eye(12, dtype=bool)
    for depth in (1, 3):
        net = networks.mlp((32,) * depth, 1)
        ntk = np.asarray(net.kernel_fn(x, None, "ntk"))
        want = _relu_kernels_numpy(x, x, 1.0, depth)[1]
        np.fill_diagonal(want, np.sum(x * x, axis=1) / 5 * (depth + 1) / 2**depth)  # θ = 0 exactly
        np.testing.assert_allclose(ntk[off_diagonal], want[off_diagonal], rtol=KERNEL_RTOL)
        diagonal_error = np.max(np.abs(np.diag(ntk) - np.diag(want)) / np.diag(want))
        assert diagonal_error < depth * 1e-8


def _jacobian_gram(apply_fn, params, x1, x2):
    """$\\sum_p \\partial_p f_c(x_1)\\partial_p f_d(x_2)$ from `jax.jacrev`, shape (n1, n2, C, C)."""

    def flat_jacobian(x):
        leaves = jax.tree.leaves(jax.jacrev(apply_fn)(params, x))
        return jnp.concatenate([j.reshape(j.shape[0], j.shape[1], -1) for j in leaves], axis=-1)

    return jnp.einsum("icp,jdp->ijcd", flat_jacobian(x1), flat_jacobian(x2))


@pytest.mark.parametrize("hidden", [(24,), (16, 16)])
def test_empirical_ntk_equals_jacobian_contraction(hidden):
    net = networks.mlp(hidden, 3, b_std=0.3)
    key1, key2, key3 = jax.random.split(jax.random.PRNGKey(1), 3)
    params = net.init(key1, 4)
    x1 = jax.random.normal(key2, (5, 4))
    x2 = jax.random.normal(key3, (3, 4))
    want = _jacobian_gram(net.apply_fn, params, x1, x2)
    full = networks.empirical_ntk_full(net.apply_fn)(x1, x2, params)
    traced = networks.empirical_ntk(net.apply_fn)(x1, x2, params)
    np.testing.assert_allclose(full, want, rtol=1e-12, atol=1e-14 * float(jnp.abs(want).max()))
    np.testing.assert_allclose(traced, jnp.einsum("ijcc->ij", want) / 3, rtol=1e-12)


@pytest.mark.parametrize("implementation", [1, 2, 3])
def test_every_empirical_ntk_implementation_equals_jacobian_contraction(implementation):
    net = networks.mlp((20,), 2)
    params = net.init(jax.random.PRNGKey(2), 3)
    x = jax.random.normal(jax.random.PRNGKey(3), (4, 3))
    ntk = _nt.empirical_ntk_fn(net.apply_fn, trace_axes=(), vmap_axes=0, implementation=implementation)
    np.testing.assert_allclose(ntk(x, None, params), _jacobian_gram(net.apply_fn, params, x, x), rtol=1e-12)


def test_implementation_zero_is_refused():
    with pytest.raises(ValueError, match="`implementation` must be 1"):
        _nt.empirical_ntk_fn(lambda p, x: x, implementation=0)


@pytest.fixture(scope="module")
def perturbed():
    """A 2-output ReLU net, its parameters θ0, inputs x, a direction v and θ = θ0 + v."""
    net = networks.mlp((32,), 2)
    params0 = net.init(jax.random.PRNGKey(4), 3)
    x = jax.random.normal(jax.random.PRNGKey(5), (6, 3))
    leaves, treedef = jax.tree.flatten(params0)
    keys = jax.random.split(jax.random.PRNGKey(6), len(leaves))
    delta = jax.tree.unflatten(treedef, [0.3 * jax.random.normal(k, p.shape) for k, p in zip(keys, leaves)])
    return net, params0, x, delta, jax.tree.map(jnp.add, params0, delta)


def test_linearize_is_the_first_order_taylor_polynomial(perturbed):
    """$f_{lin}(\\theta) = f(\\theta_0) + J(\\theta_0)(\\theta - \\theta_0)$, with J·v from `jax.jvp`."""
    net, params0, x, delta, params = perturbed
    f0, jv = jax.jvp(lambda p: net.apply_fn(p, x), (params0,), (delta,))
    lin = _nt.linearize(net.apply_fn, params0)
    np.testing.assert_allclose(lin(params, x), f0 + jv, rtol=1e-12)


def test_taylor_expand_degree_two_adds_half_the_second_directional_derivative(perturbed):
    """$f_2(\\theta) = f_0 + J v + \\tfrac12 v^T H v$ with $v^T H v$ from a jvp of a jvp."""
    net, params0, x, delta, params = perturbed

    def directional(p):
        return jax.jvp(lambda q: net.apply_fn(q, x), (p,), (delta,))[1]

    f0, jv = jax.jvp(lambda p: net.apply_fn(p, x), (params0,), (delta,))
    _, vhv = jax.jvp(directional, (params0,), (delta,))
    quadratic = _nt.taylor_expand(net.apply_fn, params0, 2)
    np.testing.assert_allclose(quadratic(params, x), f0 + jv + vhv / 2, rtol=1e-12)


@pytest.fixture
def fresh_self_check(monkeypatch):
    monkeypatch.setattr(_nt, "_self_check", _nt._SelfCheck())
    return monkeypatch


def test_self_check_passes_on_this_jax(fresh_self_check):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        _nt.empirical_ntk_fn(lambda p, x: x, trace_axes=(), implementation=3)
    checked, ok, err, _ = _nt.structured_ntk_status()
    assert checked and ok and err < 1e-10


def test_self_check_falls_back_to_implementation_one_when_structured_ntk_is_wrong(fresh_self_check):
    true_ntk_fn = _nt.nt.empirical_ntk_fn
    used = []

    def corrupted(apply_fn, implementation, **kwargs):
        used.append(implementation)
        ntk = true_ntk_fn(apply_fn, implementation=implementation, **kwargs)
        if implementation == 3:
            return lambda *args: ntk(*args) * (1 + 1e-8)  # a disagreement of 1e-8 > 1e-10
        return ntk

    fresh_self_check.setattr(_nt.nt, "empirical_ntk_fn", corrupted)
    net = networks.mlp((8,), 1)
    with pytest.warns(RuntimeWarning, match="uses implementation=1"):
        _nt.empirical_ntk_fn(net.apply_fn, trace_axes=(), vmap_axes=0, implementation=3)
    assert used == [3, 1]  # the check ran implementation 3; the user's kernel is implementation 1
    checked, ok, err, reason = _nt.structured_ntk_status()
    assert checked and not ok and 5e-9 < err < 2e-8 and "relative error" in reason
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # warned once per process, not again
        _nt.empirical_ntk_fn(net.apply_fn, trace_axes=(), vmap_axes=0, implementation=3)
    assert used == [3, 1, 1]


def test_self_check_falls_back_when_structured_ntk_raises(fresh_self_check):
    def broken(apply_fn, implementation, **kwargs):
        if implementation == 3:
            raise TypeError("simulated jax API change")
        return lambda *args: 0.0

    fresh_self_check.setattr(_nt.nt, "empirical_ntk_fn", broken)
    with pytest.warns(RuntimeWarning, match="simulated jax API change"):
        _nt.empirical_ntk_fn(lambda p, x: x, implementation=3)
    assert not _nt.structured_ntk_status()[1]


def test_shims_are_documented_and_leave_jax_namespaces_as_they_were():
    names = {shim.name for shim in _nt.SHIMS}
    assert set(_nt.APPLIED) <= names
    import jax.core
    import jax.extend.core

    if "jax.core.{Jaxpr, JaxprEqn, Literal, Var, Primitive}" in _nt.APPLIED:
        # added for neural-tangents' import only
        for name in ("Jaxpr", "JaxprEqn", "Literal", "Var"):
            assert name not in vars(jax.core)
    if "jax.util.safe_map / safe_zip" in _nt.APPLIED:
        assert "jax.util" not in sys.modules or getattr(sys.modules["jax.util"], "safe_map", None) is not _nt._safe_map
    if "ad.zeros_like_p placeholder primitive" in _nt.APPLIED:
        assert "zeros_like_p" not in vars(jax.interpreters.ad)
    # run-time shims live on neural-tangents' own module references, never on jax's
    empirical = sys.modules["neural_tangents._src.empirical"]
    assert empirical.ad is not jax.interpreters.ad
    assert empirical.ad.Zero is jax.interpreters.ad.Zero
    assert isinstance(jax.extend.core.Primitive("p").map_primitive, bool)


def test_safe_map_and_zip_refuse_unequal_lengths():
    assert _nt._safe_map(lambda a, b: a + b, [1, 2], [3, 4]) == [4, 6]
    assert _nt._safe_zip([1, 2], "ab") == [(1, "a"), (2, "b")]
    with pytest.raises(ValueError, match="length mismatch"):
        _nt._safe_zip([1, 2], [1])
    with pytest.raises(ValueError, match="length mismatch"):
        _nt._safe_map(lambda a, b: a, [1], [1, 2])


def test_show_versions_names_jax_the_devices_and_the_shims():
    out = subprocess.run(
        [sys.executable, "-m", "widenet", "info", "--check-ntk"], capture_output=True, text=True, check=True
    ).stdout
    assert f"jax              {jax.__version__}" in out
    assert "float64 (x64)    on" in out
    assert "NTK self-check   ok" in out
    for name in _nt.APPLIED:
        assert name in out


def test_self_check_runs_eagerly_when_the_kernel_is_built_inside_jit(fresh_self_check):
    net = networks.mlp((8,), 1)
    x = jnp.ones((2, 3))
    params = net.init(jax.random.PRNGKey(0), 3)

    @jax.jit
    def kernel(params):
        return _nt.empirical_ntk_fn(net.apply_fn, trace_axes=(), vmap_axes=0, implementation=3)(x, None, params)

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        kernel(params)
    assert _nt.structured_ntk_status()[:2] == (True, True)
