import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from widenet import _nt, data, losses, networks, schedules
from widenet.experiment.train import TrainConfig, train
from widenet.theory import oscillatory


@pytest.fixture(scope="module")
def spiral():
    return data.spiral_dataset(jax.random.PRNGKey(0), n_per_class=10, n_classes=3)


def _kernel(n=12, seed=0):
    a = np.random.default_rng(seed).normal(size=(n, 3 * n))
    return a @ a.T / (3 * n)


def test_floquet_multipliers_give_the_growth_of_the_residual_over_many_periods():
    kernel = _kernel()
    labels = np.arange(12) % 3
    period, eta = 8, 0.9 / np.linalg.eigvalsh(kernel)[-1]
    weights = np.asarray(schedules.class_weights(np.arange(period * 3), n_classes=3, period=period, amplitude=6.0))[
        :, labels
    ]
    one_period = weights[: period * 3]  # classes take turns: the weights repeat after 3 periods
    mu = oscillatory.floquet_multipliers(kernel, one_period, learning_rate=eta)
    r = np.random.default_rng(1).normal(size=12)
    norms = []
    for _ in range(40):
        for w in one_period:
            r = r - eta * kernel @ (w * r)
        norms.append(np.linalg.norm(r))
    rate = np.exp(np.polyfit(np.arange(20, 40), np.log(norms[20:]), 1)[0])
    np.testing.assert_allclose(rate, np.abs(mu[0]), rtol=1e-6)
    assert float(oscillatory.floquet_radius(kernel, one_period, learning_rate=eta)) == pytest.approx(
        float(np.abs(mu[0]))
    )


def test_constant_weights_reduce_to_the_gd_stability_edge():
    kernel = _kernel()
    lam = np.linalg.eigvalsh(kernel)[-1]
    ones = np.ones((5, 12))
    assert float(oscillatory.floquet_radius(kernel, ones, learning_rate=1.99 / lam)) < 1
    assert float(oscillatory.floquet_radius(kernel, ones, learning_rate=2.01 / lam)) > 1


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_linearized_network_reproduces_function_space_gd_exactly(spiral, loss):
    net = networks.mlp((64,), 3, b_std=1.0)
    params = net.init(jax.random.PRNGKey(1), 2)
    lin = _nt.linearize(net.apply_fn, params)
    weights_fn = lambda step: schedules.class_weights(step, n_classes=3, period=6, amplitude=20.0)[spiral.labels_train]  # noqa: E731
    steps, eta = 30, 0.01
    res = train(lin, params, spiral, TrainConfig(steps=steps, record_every=1, loss=loss, n_eigs=0), learning_rate=eta,
                sample_weights=weights_fn)  # fmt: skip
    kernel = networks.empirical_ntk_full(net.apply_fn)(spiral.x_train, None, params)
    weights = np.stack([np.asarray(weights_fn(s)) for s in range(steps)])
    theory = oscillatory.function_space_gd(kernel, net.apply_fn(params, spiral.x_train), spiral.y_train, weights,
                                           learning_rate=eta, loss=loss)  # fmt: skip
    np.testing.assert_allclose(res.f_train, theory, rtol=0, atol=1e-10)


def test_gauss_newton_sharpness_is_the_top_hessian_eigenvalue_of_the_linearized_model(spiral):
    net = networks.mlp((16,), 3, b_std=1.0)
    params = net.init(jax.random.PRNGKey(2), 2)
    lin = _nt.linearize(net.apply_fn, params)
    shifted = jax.tree.map(lambda p: p + 0.3 * jax.random.normal(jax.random.PRNGKey(3), p.shape), params)
    w = jnp.linspace(0.2, 2.0, spiral.n_train)
    flat, unravel = ravel_pytree(shifted)
    hess = jax.hessian(lambda v: losses.cross_entropy(lin(unravel(v), spiral.x_train), spiral.y_train, w))(flat)
    kernel = networks.empirical_ntk_full(net.apply_fn)(spiral.x_train, None, params)
    got = oscillatory.gauss_newton_sharpness(kernel, lin(shifted, spiral.x_train), w)
    np.testing.assert_allclose(got, np.linalg.eigvalsh(hess)[-1], rtol=1e-9)


def test_instability_intervals():
    assert oscillatory.instability_intervals(np.array([1.0, 3.0, 3.0, 1.0, 5.0]), learning_rate=1.0) == [(1, 3), (4, 5)]


def test_bad_input():
    kernel = _kernel()
    with pytest.raises(ValueError, match="`weights` must have shape"):
        oscillatory.floquet_multipliers(kernel, np.ones((4, 5)), learning_rate=0.1)
    with pytest.raises(ValueError, match="positive semi-definite"):
        oscillatory.floquet_multipliers(-kernel, np.ones((4, 12)), learning_rate=0.1)
    with pytest.raises(ValueError, match="`learning_rate`"):
        oscillatory.floquet_multipliers(kernel, np.ones((4, 12)), learning_rate=0.0)
    with pytest.raises(ValueError, match="`weights` must lie in"):
        oscillatory.floquet_multipliers(kernel, -np.ones((4, 12)), learning_rate=0.1)


def test_floquet_radius_grid_matches_pointwise_radii():
    kernel = _kernel()
    labels = np.arange(12) % 3
    lam = np.linalg.eigvalsh(kernel)[-1]
    grid = oscillatory.floquet_radius_grid(kernel, labels, n_classes=3, periods=[4, 6], amplitudes=[1.0, 30.0],
                                           learning_rates=[1.0 / lam, 2.5 / lam])  # fmt: skip
    assert grid.shape == (2, 2, 2)
    for i, period in enumerate([4, 6]):
        for j, amp in enumerate([1.0, 30.0]):
            w = np.asarray(schedules.class_weights(np.arange(3 * period), n_classes=3, period=period, amplitude=amp))[
                :, labels
            ]
            for k, lr in enumerate([1.0 / lam, 2.5 / lam]):
                np.testing.assert_allclose(
                    grid[i, j, k], oscillatory.floquet_radius(kernel, w, learning_rate=lr), rtol=1e-12
                )
    assert np.all(grid[:, :, 1] > 1) and np.all(grid[:, 0, 0] <= 1 + 1e-12)
