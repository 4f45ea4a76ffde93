import jax
import jax.numpy as jnp
import numpy as np
import pytest

from widenet import networks
from widenet.theory import catapult


def _uv_params(key, n):
    ku, kv = jax.random.split(key)
    return jax.random.normal(ku, (n,)), jax.random.normal(kv, (n,))


@pytest.mark.parametrize("l2", [0.0, 0.05])
def test_uv_map_equals_gd_on_the_parameters(l2):
    """Also with L2 (the catapult and the decay in one exact map): GD on ½(f - y)² + (λ2/2)(|u|² + |v|²)."""
    n, eta, y = 64, 0.9, 0.3
    u, v = _uv_params(jax.random.PRNGKey(0), n)
    loss = lambda u, v: 0.5 * (v @ u / np.sqrt(n) - y) ** 2 + 0.5 * l2 * (u @ u + v @ v)  # noqa: E731
    f, lam = v @ u / np.sqrt(n), (u @ u + v @ v) / n
    for _ in range(40):
        gu, gv = jax.grad(loss, argnums=(0, 1))(u, v)
        u, v = u - eta * gu, v - eta * gv
        f, lam = catapult.uv_map(f, lam, learning_rate=eta, width=n, y=y, l2=l2)
        np.testing.assert_allclose(f, v @ u / np.sqrt(n), rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(lam, (u @ u + v @ v) / n, rtol=1e-12)


@pytest.mark.parametrize("rho", [0.3, 0.8, 2.0])
def test_uv_map_with_l2_ends_at_the_finite_width_fixed_point_of_sm_b1(rho):
    """Iterated to convergence, the exact uv map with L2 reaches SM B.1's f = y - λ√n and its kernel
    2f/√n (`finite_width`, an independent route), or 0 above the threshold λ√n = y."""
    from widenet.theory import finite_width

    n, y, eta = 400, 1.5, 0.2
    l2 = rho * y / np.sqrt(n)
    traj = catapult.uv_trajectory(0.3, 2.0, learning_rate=eta, width=n, steps=200_000, y=y, l2=l2)
    point = finite_width.linear_fixed_point([[1.0]], [y], l2=l2, width=n)
    np.testing.assert_allclose(traj.f[-1], point.f_train[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(traj.lam[-1], finite_width.linear_fixed_point_ntk(point, [[1.0]])[0, 0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("rho", [1.5, 3.0])
def test_uv_map_with_l2_above_the_threshold_decays_at_the_slow_rate(rho):
    """Above SM B.1's threshold λ2√n = y the kernel decays per step by (1 - η(λ2 - y/√n))², the trivial
    point's slowest direction, not by eq. 2's (1 - ηλ2)² (the `l2_finite_width` scenario's rate check)."""
    n, y, eta = 400, 1.5, 0.2
    l2 = rho * y / np.sqrt(n)
    traj = catapult.uv_trajectory(0.3, 2.0, learning_rate=eta, width=n, steps=3000, y=y, l2=l2)  # no underflow
    lam = np.asarray(traj.lam)
    np.testing.assert_allclose(lam[-1] / lam[-2], (1 - eta * (l2 - y / np.sqrt(n))) ** 2, rtol=1e-9)
    assert abs(lam[-1] / lam[-2] - (1 - eta * l2) ** 2) > 1e-4


def test_uv_phases_at_large_width():
    n, f0, lam0 = 10_000, 0.5, 1.0
    final = {}
    for x in (1.5, 3.0, 4.5):
        traj = catapult.uv_trajectory(f0, lam0, learning_rate=x / lam0, width=n, steps=2000)
        final[x] = traj
    assert int(final[1.5].diverged_at) == -1 and abs(float(final[1.5].f[-1])) < 1e-8
    assert abs(float(final[1.5].lam[-1]) - lam0) < 1e-3  # lazy: the kernel barely moves
    cat = final[3.0]
    assert int(cat.diverged_at) == -1 and abs(float(cat.f[-1])) < 1e-6
    assert float(cat.lam[-1]) < 2.0 / (3.0 / lam0)  # λ ends below 2/η
    assert float(jnp.max(jnp.abs(cat.f))) > 10 * f0  # the catapult's spike
    assert int(final[4.5].diverged_at) > 0
    assert catapult.uv_phase(lam0, learning_rate=np.array([1.5, 3.0, 4.5])).tolist() == [
        "lazy",
        "catapult",
        "divergent",
    ]


def test_catapult_peak_prediction_and_log_width_growth():
    lam0, f0, eta = 1.0, 0.1, 3.0
    times = []
    for n in (1e3, 1e5, 1e7):
        traj = catapult.uv_trajectory(f0, lam0, learning_rate=eta, width=n, steps=400)
        loss = 0.5 * np.asarray(traj.f) ** 2
        t_pred, loss_pred = catapult.uv_catapult_peak(f0, lam0, learning_rate=eta, width=n)
        times.append(int(np.argmax(loss)))
        assert abs(np.argmax(loss) - float(t_pred)) <= 3
        assert 0.3 < loss.max() / float(loss_pred) < 3.0  # leading order only
    # peak time grows like log n: equal steps for equal factors of n
    assert abs((times[2] - times[1]) - (times[1] - times[0])) <= 2


def test_quadratic_model_of_a_quadratic_network_is_the_network():
    n = 32
    net = networks.mlp((n,), activation="identity")  # the uv model on x = 1
    params0 = net.init(jax.random.PRNGKey(1), 1)
    quad = catapult.quadratic_model(net.apply_fn, params0)
    x = jnp.ones((1, 1))
    moved = jax.tree.map(lambda p: p + 0.3 * jnp.ones_like(p), params0)
    np.testing.assert_allclose(quad(moved, x), net.apply_fn(moved, x), rtol=1e-12)
    # and the uv map follows GD on it
    u, v = params0[0][0][0], params0[2][0][:, 0]
    lam0 = float((u @ u + v @ v) / n)
    np.testing.assert_allclose(lam0, networks.empirical_ntk(net.apply_fn)(x, None, params0)[0, 0], rtol=1e-12)


def test_quadratic_model_is_second_order_accurate_for_relu_like_nets():
    net = networks.mlp((64,), activation="erf")
    params0 = net.init(jax.random.PRNGKey(2), 3)
    x = jax.random.normal(jax.random.PRNGKey(3), (4, 3))
    quad = catapult.quadratic_model(net.apply_fn, params0)
    direction = jax.tree.map(lambda p: jax.random.normal(jax.random.PRNGKey(4), p.shape), params0)
    errs = []
    for eps in (1e-1, 5e-2):
        moved = jax.tree.map(lambda p, d, eps=eps: p + eps * d, params0, direction)
        errs.append(float(jnp.abs(quad(moved, x) - net.apply_fn(moved, x)).max()))
    np.testing.assert_allclose(errs[0] / errs[1], 8.0, rtol=0.15)  # third-order remainder


def test_critical_learning_rate_is_the_gd_stability_edge():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(10, 20))
    kernel = a @ a.T / 20
    eta = float(catapult.critical_learning_rate(kernel))
    residual = rng.normal(size=10)
    for factor, grows in ((0.99, False), (1.01, True)):
        r = residual.copy()
        for _ in range(3000):
            r = r - factor * eta * kernel @ r  # GD on ½Σ(f - y)² of a linear model
        assert (np.linalg.norm(r) > np.linalg.norm(residual)) == grows
    np.testing.assert_allclose(catapult.critical_learning_rate(kernel, reduction="mean"), 10 * eta)
    batched = catapult.critical_learning_rate(np.stack([kernel, 2 * kernel]))
    np.testing.assert_allclose(batched, [eta, eta / 2])


def test_loss_decomposition_sums_to_the_loss_and_finds_the_top_direction():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(8, 30))
    kernel = a @ a.T
    residual = rng.normal(size=(8, 2))
    for s in (0, 1, 3, 8):
        top, rest = catapult.loss_decomposition(kernel, residual, top=s)
        np.testing.assert_allclose(top + rest, np.sum(residual**2) / 8, rtol=1e-13)
    vals, vecs = np.linalg.eigh(kernel)
    top, rest = catapult.loss_decomposition(kernel, 5.0 * vecs[:, -1], top=1)
    np.testing.assert_allclose([top, rest], [25.0 / 8, 0.0], atol=1e-12)
    # a precomputed eigh is used as given: the same split from (vals, vecs), another basis gives another split
    given = catapult.loss_decomposition(kernel, residual, top=3, eigh=(vals, vecs))
    np.testing.assert_allclose(given, catapult.loss_decomposition(kernel, residual, top=3), rtol=1e-12)
    flipped = catapult.loss_decomposition(kernel, residual, top=3, eigh=(vals[::-1], vecs[:, ::-1]))
    assert abs(float(flipped[0]) - float(given[0])) > 1e-3
    with pytest.raises(ValueError, match="`eigh`"):
        catapult.loss_decomposition(kernel, residual, top=3, eigh=(vals, vecs[:4]))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: catapult.uv_map(1.0, 1.0, learning_rate=-0.1, width=10), "`learning_rate`"),
        (lambda: catapult.uv_map(1.0, 1.0, learning_rate=0.1, width=0.5), "`width`"),
        (lambda: catapult.critical_learning_rate(-np.eye(3)), "positive semi-definite"),
        (lambda: catapult.critical_learning_rate(np.eye(3), reduction="max"), "`reduction`"),
        (lambda: catapult.loss_decomposition(np.eye(3), np.ones(3), top=4), "`top` must lie in"),
        (lambda: catapult.loss_decomposition(np.eye(3), np.ones(4), top=1), "`residual` must have shape"),
        (lambda: catapult.uv_catapult_peak(0.1, 1.0, learning_rate=1.0, width=100), "catapult window"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_measured_phase_and_window_edges():
    loss = np.array(
        [
            [10.0, 5.0, 2.0, 1.0],  # lazy: never above the start
            [10.0, 30.0, 4.0, 1.0],  # catapult: up, then below the start
            [10.0, 30.0, 300.0, 3000.0],  # ends above the start: divergent
            [10.0, 20.0, np.nan, np.nan],  # diverged (frozen, NaN after)
        ]
    )
    phases = catapult.measured_phase(loss, np.array([-1, -1, -1, 2]))
    assert phases.tolist() == ["lazy", "catapult", "divergent", "divergent"]
    grid = np.array([1.0, 1.5, 2.5, 3.0, 4.5, 5.0])
    lower, upper = catapult.phase_edges(
        grid, np.array(["lazy", "lazy", "catapult", "catapult", "divergent", "divergent"])
    )
    assert (lower, upper) == (2.0, 3.75)
    assert catapult.phase_edges(grid, np.array(["lazy"] * 3 + ["catapult"] * 3))[1] == np.inf


@pytest.mark.parametrize("x, phase", [(1.99, "lazy"), (2.01, "catapult"), (2.1, "catapult"), (3.9, "catapult"), (3.99, "catapult"), (4.01, "divergent"), (4.1, "divergent")])  # fmt: skip
def test_uv_phase_boundaries_agree_with_the_exact_map_at_large_width(x, phase):
    """Both edges (2 and 4), on either side, against the exact uv map iterated at width 1e8."""
    assert catapult.uv_phase(1.0, learning_rate=x) == phase
    traj = catapult.uv_trajectory(0.1, 1.0, learning_rate=x, width=1e8, steps=20_000)
    measured = np.asarray(catapult.measured_phase(0.5 * np.asarray(traj.f) ** 2, traj.diverged_at)).item()
    assert measured == phase


@pytest.mark.parametrize("x", [2.5, 3.0, 3.5])
def test_uv_catapult_peak_is_where_the_exact_map_stops_growing(x):
    """At f_peak the exact map's multiplier f'/f (λ still λ0) is exactly -1, and |1 - x|^t_peak f0 = f_peak."""
    lam0, f0, n = 1.0, 0.1, 1e7
    eta = x / lam0
    t_peak, loss_peak = catapult.uv_catapult_peak(f0, lam0, learning_rate=eta, width=n)
    f_peak = np.sqrt(2 * float(loss_peak))
    f_next, _ = catapult.uv_map(f_peak, lam0, learning_rate=eta, width=n)
    assert float(f_next) / f_peak == pytest.approx(-1.0, abs=1e-12)
    assert f0 * abs(1 - x) ** float(t_peak) == pytest.approx(f_peak, rel=1e-12)
    traj = catapult.uv_trajectory(f0, lam0, learning_rate=eta, width=n, steps=200)
    assert abs(int(np.argmax(np.abs(np.asarray(traj.f)))) - float(t_peak)) <= 1.5


def test_measured_phase_with_the_kernel_separates_catapults_from_spikes():
    rise = np.array([1.0, 3.0, 0.5, 0.1])  # rises above L(0) and comes back
    flat = np.array([1.0, 0.6, 0.3, 0.1])
    up = np.array([1.0, 2.0, 4.0, 8.0])
    losses_ = np.stack([rise, rise, flat, up])
    diverged = np.array([-1, -1, -1, -1])
    start = np.array([10.0, 10.0, 10.0, 10.0])
    end = np.array([7.0, 12.0, 10.0, 10.0])  # the first run's kernel dropped, the second's grew
    phases = catapult.measured_phase(losses_, diverged, lambda_start=start, lambda_end=end)
    assert phases.tolist() == ["catapult", "spike", "lazy", "divergent"]
    # without the kernel a rise and return is a catapult
    assert catapult.measured_phase(losses_, diverged).tolist() == ["catapult", "catapult", "lazy", "divergent"]
    # a spike counts as non-lazy for the window's lower edge
    assert catapult.phase_edges(np.array([1.0, 2.0, 3.0]), np.array(["lazy", "spike", "catapult"]))[0] == 1.5
    with pytest.raises(ValueError, match="lambda_end"):
        catapult.measured_phase(losses_, diverged, lambda_start=start)
