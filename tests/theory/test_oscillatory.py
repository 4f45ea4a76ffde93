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
    return data.spiral(jax.random.PRNGKey(0), n_per_class=10, n_classes=3)


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


def _class_weights(period, amplitude, labels, n_classes=3):
    steps = np.arange(n_classes * period)
    return np.asarray(schedules.class_weights(steps, n_classes=n_classes, period=period, amplitude=amplitude))[
        :, labels
    ]


def test_full_output_kernel_multipliers_give_the_linearised_network_residual_growth(spiral):
    """(n, n, C, C) kernels: the multipliers are those of the flattened residual, checked against
    function-space GD (weighted MSE) stepped through many periods; Θ ⊗ I_C gives the (n, n) ones."""
    net = networks.mlp((24,), 3, b_std=1.0)
    params = net.init(jax.random.PRNGKey(4), 2)
    kernel = networks.empirical_ntk_full(net.apply_fn)(spiral.x_train, None, params)
    labels = spiral.labels_train
    weights = _class_weights(3, 8.0, labels)
    lam = np.linalg.eigvalsh(np.asarray(kernel).transpose(0, 2, 1, 3).reshape(90, 90))[-1]
    eta = 2.2 / lam
    mu = oscillatory.floquet_multipliers(kernel, weights, learning_rate=eta)
    assert mu.shape == (90,) and np.abs(mu[0]) > 1
    cycles = 30
    f = oscillatory.function_space_gd(kernel, np.zeros((30, 3)), spiral.y_train, np.tile(weights, (cycles, 1)),
                                      learning_rate=eta, loss="mse")  # fmt: skip
    norms = np.linalg.norm((np.asarray(f) - spiral.y_train)[:: len(weights)].reshape(cycles + 1, -1), axis=1)
    rate = np.exp(np.polyfit(np.arange(15, cycles + 1), np.log(norms[15:]), 1)[0])
    np.testing.assert_allclose(rate, np.abs(mu[0]), rtol=1e-6)
    traced = np.asarray(kernel).trace(axis1=2, axis2=3) / 3
    block = traced[:, :, None, None] * np.eye(3)
    np.testing.assert_allclose(
        oscillatory.floquet_radius(block, weights, learning_rate=eta),
        oscillatory.floquet_radius(traced, weights, learning_rate=eta),
        rtol=1e-10,
    )


def test_stability_boundary_reduces_to_two_over_lambda_max_for_constant_weights():
    kernel = _kernel()
    lam = np.linalg.eigvalsh(kernel)[-1]
    eta = oscillatory.stability_boundary(kernel, np.ones((4, 12)), eta_max=5.0 / lam, rtol=1e-12)
    np.testing.assert_allclose(eta * lam, 2.0, rtol=1e-8)
    assert oscillatory.stability_boundary(kernel, np.ones((4, 12)), eta_max=1.9 / lam) == np.inf


def test_stability_boundary_of_one_sample_is_the_root_of_the_scalar_multiplier():
    """n = 1: the period map is the number prod_t (1 - η λ w_t); its first crossing of |.| = 1 by
    an independent root finder (scipy brentq on the polynomial)."""
    from scipy.optimize import brentq

    lam, w = 3.0, np.array([0.2, 1.0, 2.5, 1.0, 0.3])
    multiplier = lambda eta: abs(np.prod(1 - eta * lam * w)) - 1  # noqa: E731
    etas = np.linspace(1e-4, 2.0, 20001)
    first = np.argmax([multiplier(e) > 0 for e in etas])
    expected = brentq(multiplier, etas[first - 1], etas[first], xtol=1e-15)
    got = oscillatory.stability_boundary(np.array([[lam]]), w[:, None], eta_max=2.0, grid=256, rtol=1e-13)
    np.testing.assert_allclose(got, expected, rtol=1e-8)
    assert abs(expected * lam * w.max() / 2 - 1) > 0.1  # not simply the largest weight's edge


def test_stability_boundary_matches_a_dense_radius_scan_on_class_weights():
    kernel = _kernel(15, seed=3) + 1.0  # a dominant mean mode, as a ReLU NTK has
    labels = np.array([0] * 9 + [1] * 3 + [2] * 3)  # imbalanced: the boundary moves with the emphasis
    lam = np.linalg.eigvalsh(kernel)[-1]
    for period, amp in [(2, 30.0), (10, 30.0)]:
        w = _class_weights(period, amp, labels)
        eta = oscillatory.stability_boundary(kernel, w, eta_max=4.0 / lam, rtol=1e-12)
        below = oscillatory.floquet_radius(kernel, w, learning_rate=eta * (1 - 1e-6))
        above = oscillatory.floquet_radius(kernel, w, learning_rate=eta * (1 + 1e-6))
        assert below <= 1 + 1e-9 < above
        scan = np.linspace(0.01, 1, 400) * eta
        assert all(float(oscillatory.floquet_radius(kernel, w, learning_rate=e)) <= 1 + 1e-9 for e in scan[::20])
        assert abs(eta * lam - 2.0) > 0.05  # class emphasis on imbalanced classes moves the edge


@pytest.mark.parametrize("grid", [17, 24, 33])
def test_stability_boundary_block_scan_finds_the_full_scans_first_unstable_point(grid):
    """The scan in blocks of 16 (stopping at the first block with an unstable point) against a plain
    reference: every grid point's radius, the first unstable index, bisection of its interval. eta_max
    is set so that the first unstable point falls at k = 0, at a block boundary (k = 16, its stable
    neighbour in the block before), in the padded last block, and nowhere (all stable)."""
    kernel = _kernel(15, seed=3) + 1.0
    labels = np.array([0] * 9 + [1] * 3 + [2] * 3)
    w = _class_weights(2, 30.0, labels)
    eta_star = oscillatory.stability_boundary(kernel, w, eta_max=4.0 / np.linalg.eigvalsh(kernel)[-1], rtol=1e-12)

    def reference(eta_max):
        etas = eta_max * np.arange(1, grid + 1) / grid
        unstable = [float(oscillatory.floquet_radius(kernel, w, learning_rate=e)) > 1 + 1e-9 for e in etas]
        if not any(unstable):
            return np.inf
        k = int(np.argmax(unstable))
        low, high = (0.0 if k == 0 else etas[k - 1]), etas[k]
        while high - low > 1e-9 * high:
            mid = 0.5 * (low + high)
            unstable_mid = float(oscillatory.floquet_radius(kernel, w, learning_rate=mid)) > 1 + 1e-9
            low, high = (low, mid) if unstable_mid else (mid, high)
        return 0.5 * (low + high)

    for first in (0.5, 16.5, grid - 0.5, grid + 3.0):  # η* sits just below grid point `first` + 1 (1-based)
        eta_max = eta_star * grid / first
        got = oscillatory.stability_boundary(kernel, w, eta_max=eta_max, grid=grid, rtol=1e-9)
        want = reference(eta_max)
        assert got == want if np.isinf(want) else got == pytest.approx(want, rel=1e-12), (grid, first)


def test_transient_amplification_is_the_largest_partial_product_norm():
    kernel = _kernel(10, seed=5)
    labels = np.array([0] * 6 + [1] * 2 + [2] * 2)
    w = _class_weights(6, 20.0, labels)
    eta = 1.5 / np.linalg.eigvalsh(kernel)[-1]
    m, norms = np.eye(10), []
    for wt in w:
        m = (np.eye(10) - eta * kernel * wt[None, :]) @ m
        norms.append(np.linalg.svd(m, compute_uv=False)[0])
    got = oscillatory.transient_amplification(kernel, w, learning_rate=eta)
    np.testing.assert_allclose(got, max(1.0, max(norms)), rtol=1e-10)
    assert got > 1.5  # the emphasised majority class grows the residual mid-period
    tiny = oscillatory.transient_amplification(kernel, w, learning_rate=1e-3 * eta)
    assert float(tiny) == 1.0


def test_floquet_bad_input():
    kernel = _kernel()
    with pytest.raises(ValueError, match="`eta_max`"):
        oscillatory.stability_boundary(kernel, np.ones((4, 12)), eta_max=-1.0)
    with pytest.raises(ValueError, match="`grid`"):
        oscillatory.stability_boundary(kernel, np.ones((4, 12)), eta_max=1.0, grid=1)
    with pytest.raises(ValueError, match="`weights` must have shape"):
        oscillatory.transient_amplification(kernel, np.ones((4, 3)), learning_rate=0.1)
    bad = np.ones((3, 3, 2, 2))
    bad[0, 0, 0, 0] = -5.0
    with pytest.raises(ValueError, match="positive semi-definite|symmetric"):
        oscillatory.floquet_multipliers(bad, np.ones((2, 3)), learning_rate=0.1)


def test_floquet_radius_equals_a_numpy_period_product_and_direct_iteration():
    """Two routes that share nothing with `_period_map`: the period map multiplied out in numpy, and
    the residual iterated over many periods (its growth per period tends to the radius)."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    kernel = a @ a.T / 5
    labels = np.array([0, 0, 1, 2, 2])
    weights = np.asarray(schedules.class_weights(np.arange(3 * 4), n_classes=3, period=4, amplitude=8.0))[:, labels]
    eta = 1.9 / np.linalg.eigvalsh(kernel)[-1]
    product = np.eye(5)
    for w in weights:
        product = (np.eye(5) - eta * kernel * w[None, :]) @ product
    want = np.max(np.abs(np.linalg.eigvals(product)))
    got = float(oscillatory.floquet_radius(kernel, weights, learning_rate=eta))
    assert got == pytest.approx(want, rel=1e-12)
    r = rng.normal(size=5)
    logs = []
    for _ in range(400):
        for w in weights:
            r = r - eta * kernel @ (w * r)
        norm = np.linalg.norm(r)
        logs.append(np.log(norm))
        r = r / norm
    assert np.exp(np.mean(logs[-100:])) == pytest.approx(want, rel=1e-6)


def test_neutral_modes_pin_the_radius_at_one_and_floquet_stable_says_stable():
    """A kernel with a zero eigenvalue: its mode never moves (multiplier exactly 1 up to rounding)."""
    v = np.array([1.0, -1.0, 0.0]) / np.sqrt(2)
    kernel = np.eye(3) - np.outer(v, v)  # eigenvalues 0, 1, 1
    weights = np.ones((4, 3))
    assert abs(float(oscillatory.floquet_radius(kernel, weights, learning_rate=0.5)) - 1.0) < 1e-12
    assert oscillatory.floquet_stable(kernel, weights, learning_rate=0.5)
    assert not oscillatory.floquet_stable(kernel, weights, learning_rate=2.5)  # |1 - 2.5| > 1


def _hand_cycle(labels, n_classes, period, amplitude):
    """The triangle class-weight schedule written out step by step (the SM's rule, not the library's)."""
    rows = []
    for s in range(n_classes * period):
        emphasised, phase = (s // period) % n_classes, (s % period) / period
        raw = np.ones(n_classes)
        raw[emphasised] += (amplitude - 1.0) * (1.0 - abs(2.0 * phase - 1.0))
        rows.append((n_classes * raw / raw.sum())[labels])
    return np.array(rows)


def test_cycle_weights_are_the_full_cycle_of_the_class_weight_schedule():
    labels = np.array([0, 2, 1, 1, 0, 2, 2])
    w = oscillatory.cycle_weights(labels, n_classes=3, period=6, amplitude=70.0)
    assert w.shape == (18, 7)
    np.testing.assert_allclose(w, _hand_cycle(labels, 3, 6, 70.0), rtol=1e-14)
    # the schedule repeats after C·T steps and not after T
    later = np.asarray(schedules.class_weights(np.arange(18, 36), n_classes=3, period=6, amplitude=70.0))[:, labels]
    np.testing.assert_allclose(w, later, rtol=1e-14)
    assert not np.allclose(w[:6], w[6:12])


def test_one_period_instead_of_the_cycle_gives_another_boundary():
    """The footgun `cycle_weights` removes: one period T is the first class emphasised forever."""
    kernel = _kernel()
    labels = np.arange(12) % 3
    full = oscillatory.cycle_weights(labels, n_classes=3, period=8, amplitude=20.0)
    edge = 2.0 / np.linalg.eigvalsh(kernel)[-1]
    eta_full = oscillatory.stability_boundary(kernel, full, eta_max=3 * edge)
    eta_one = oscillatory.stability_boundary(kernel, full[:8], eta_max=3 * edge)
    assert abs(eta_full - eta_one) > 1e-3 * edge
    # and the grid (which builds the cycle itself) agrees with the explicit cycle
    grid = oscillatory.floquet_radius_grid(kernel, labels, n_classes=3, periods=[8], amplitudes=[20.0],
                                           learning_rates=[0.9 * eta_full, 1.1 * eta_full])  # fmt: skip
    by_hand = [oscillatory.floquet_radius(kernel, _hand_cycle(labels, 3, 8, 20.0), learning_rate=e)
               for e in (0.9 * eta_full, 1.1 * eta_full)]  # fmt: skip
    np.testing.assert_allclose(np.asarray(grid)[0, 0], by_hand, rtol=1e-12)
    assert by_hand[0] <= 1 + 1e-9 < by_hand[1]
