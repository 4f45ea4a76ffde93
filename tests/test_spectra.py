import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from widenet import data, losses, networks, spectra


def test_full_order_lanczos_reproduces_eigh():
    a = jax.random.normal(jax.random.PRNGKey(0), (40, 40))
    sym = a @ a.T - 5 * jnp.eye(40)  # indefinite, like a Hessian
    res = jax.jit(lambda: spectra.lanczos(lambda v: sym @ v, 40, 40, key=jax.random.PRNGKey(1)))()
    np.testing.assert_allclose(res.eigenvalues, np.linalg.eigvalsh(sym), atol=1e-8 * np.abs(sym).max())
    # Ritz vectors are eigenvectors
    np.testing.assert_allclose(sym @ res.eigenvectors[:, -1], res.eigenvalues[-1] * res.eigenvectors[:, -1], atol=1e-7)


def test_top_hessian_eigenvalues_of_the_spiral_network_at_the_default_order():
    d = data.spiral(jax.random.PRNGKey(0), n_per_class=100, n_classes=3)
    x, y = d.x_train, d.y_train
    net = networks.mlp((100,), 3, b_std=1.0)  # the paper's 2 -> 100 -> 3 with biases: 603 parameters
    params = net.init(jax.random.PRNGKey(1), 2)
    loss = lambda p: losses.cross_entropy(net.apply_fn(p, x), y) / x.shape[0]  # noqa: E731
    top = spectra.hessian_top_eigenvalues(loss, params, k=3, key=jax.random.PRNGKey(2))
    flat, unravel = ravel_pytree(params)
    assert flat.size == 603
    dense = jax.hessian(lambda v: loss(unravel(v)))(flat)
    exact = np.linalg.eigvalsh(dense)[::-1]
    np.testing.assert_allclose(top, exact[:3], rtol=1e-10)  # the default order (40) converges the top 3
    coarse = spectra.hessian_top_eigenvalues(loss, params, k=3, order=10, key=jax.random.PRNGKey(2))
    assert np.max(np.abs(coarse / exact[:3] - 1)) > 1e-8  # ... which order 10 does not
    assert top.shape == (3,) and np.all(np.diff(np.asarray(top)) <= 0)


def test_ntk_top_eigenvalues_match_the_dense_kernel():
    net = networks.mlp((64,), 2)
    params = net.init(jax.random.PRNGKey(3), 5)
    x = jax.random.normal(jax.random.PRNGKey(4), (12, 5))
    jac = jax.jacobian(lambda p: net.apply_fn(p, x).reshape(-1))(params)
    flat = jnp.concatenate([j.reshape(24, -1) for j in jax.tree.leaves(jac)], axis=1)
    exact = np.linalg.eigvalsh(flat @ flat.T)[::-1][:3]
    got = spectra.ntk_top_eigenvalues(net.apply_fn, params, x, k=3, order=24, key=jax.random.PRNGKey(5))
    np.testing.assert_allclose(got, exact, rtol=1e-9)


def test_lanczos_order_must_not_exceed_the_dimension():
    with pytest.raises(ValueError, match="`order` must lie in"):
        spectra.lanczos(lambda v: v, 5, 6, key=jax.random.PRNGKey(0))
