import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

from tests.helpers import SAME_ALGORITHM_RTOL, THEORY_RTOL
from widenet import _nt, networks
from widenet.theory import l2_homogeneous as l2h
from widenet.theory import ode


def _eq3_quadrature(t, gamma, y, f0, l2, k):
    """Eq. 3 by 30-digit quadrature, written in the substituted variable v = γ(t')/(2(k-1)λ):
    f = A f0 + γ y e^{-kλt} u0^{-p}/c ∫_{u_t}^{u0} v^{p-1} e^{u_t - v} dv. Independent of the
    scaled incomplete-gamma evaluation in the library."""
    with mp.workdps(30):
        t, gamma, y, f0, l2, k = map(mp.mpf, (t, gamma, y, f0, l2, k))
        if k == 1:
            r = gamma + l2
            return float(gamma * y / r + (f0 - gamma * y / r) * mp.e ** (-r * t))
        if t == 0:
            return float(f0)
        c = 2 * (k - 1) * l2
        p = (k - 2) / (2 * (k - 1))
        u0 = gamma / c
        ut = u0 * mp.e ** (-c * t)
        a = mp.e ** (ut - u0 - k * l2 * t)
        points = [ut * (u0 / ut) ** (mp.mpf(j) / 40) for j in range(41)]
        integral = mp.quad(lambda v: v ** (p - 1) * mp.e ** (ut - v), points)
        return float(a * f0 + u0 ** (1 - p) * mp.e ** (-k * l2 * t) * integral * y)


CASES = [
    (k, ratio, lt)
    for k in (1.0, 1.5, 2.0, 3.0, 5.0)
    for ratio in (1e-3, 1.0, 1e3, 1e6)
    for lt in (1e-4, 0.5, 5.0, 100.0)
]


@pytest.mark.parametrize("k", [1.0, 1.5, 2.0, 3.0, 5.0])
def test_mode_solution_matches_quadrature_of_eq3(k):
    l2 = 0.01
    cases = [(ratio, lt) for kk, ratio, lt in CASES if kk == k]
    ts = np.array([lt / l2 for _, lt in cases])
    gammas = np.array([ratio * l2 for ratio, _ in cases])
    solve = jax.jit(jax.vmap(lambda t, g: l2h.mode_solution(t, g, 1.0, 0.3, l2=l2, k=k)))
    got = np.asarray(solve(ts, gammas))
    want = np.array([_eq3_quadrature(t, g, 1.0, 0.3, l2, k) for t, g in zip(ts, gammas)])
    # relative accuracy even where f has decayed to 1e-200 (λt = 100)
    np.testing.assert_allclose(got, want, rtol=THEORY_RTOL)


def test_mode_solution_stays_finite_for_huge_u0():
    # u0 = γ/(2(k-1)λ) = 1e8: the naive e^{u(t)} e^{-u0} form overflows
    l2, k = 1e-3, 2.0
    gamma = 2e8 * l2
    ts = np.array([1e-9, 1e-6, 1.0, 1e3, 1e5])
    got = np.asarray(l2h.mode_solution(ts, gamma, 1.0, -0.5, l2=l2, k=k))
    want = [_eq3_quadrature(t, gamma, 1.0, -0.5, l2, k) for t in ts]
    np.testing.assert_allclose(got, want, rtol=THEORY_RTOL)


def test_closed_form_matches_high_precision_ode_for_many_modes():
    l2 = 0.01
    # non-stiff range for the explicit solver; γ/λ up to 1e6 is covered by the quadrature test
    gammas = np.geomspace(1e-3, 1e2, 12) * l2
    ts = np.concatenate([[0.0], np.geomspace(1e-3, 3e3, 60)])
    for k in (1.0, 2.0, 3.0):
        closed = np.asarray(l2h.mode_solution(ts, gammas, 1.0, 0.2, l2=l2, k=k))
        sol = ode.function_space_ode(
            ts, np.diag(gammas), np.ones(12), np.full(12, 0.2), l2=l2, k=k, rtol=1e-13, atol=1e-15
        )
        assert bool(sol.success)
        np.testing.assert_allclose(closed, np.asarray(sol.f_train[..., 0]), rtol=0, atol=THEORY_RTOL)


def test_limits_zero_and_infinite_time():
    gammas = np.array([0.0, 1e-4, 0.5, 30.0])
    f0, y, l2 = np.array([0.3, -1.0, 2.0, 0.1]), np.array([1.0, 2.0, -1.0, 0.5]), 0.05
    for k in (1.0, 1.7, 2.0, 4.0):
        at_zero = np.asarray(l2h.mode_solution(0.0, gammas, y, f0, l2=l2, k=k))
        np.testing.assert_allclose(at_zero, f0, rtol=2e-15, atol=1e-16)  # round-off only
        at_inf = np.asarray(l2h.mode_solution(np.inf, gammas, y, f0, l2=l2, k=k))
        want = gammas * y / (gammas + l2) if k == 1.0 else np.zeros(4)
        np.testing.assert_allclose(at_inf, want, rtol=1e-15, atol=0)
        late = np.asarray(l2h.mode_solution(1e5, gammas, y, f0, l2=l2, k=k))
        np.testing.assert_allclose(late, want, atol=1e-12)


def test_k_to_one_limit_is_the_linear_model():
    ts, gammas = np.linspace(0, 200, 9), np.array([1e-3, 0.01, 1.0])
    linear = np.asarray(l2h.mode_solution(ts, gammas, 1.0, 0.4, l2=0.01, k=1.0))
    near = np.asarray(l2h.mode_solution(ts, gammas, 1.0, 0.4, l2=0.01, k=1.0 + 1e-7))
    np.testing.assert_allclose(near, linear, atol=1e-6)


def test_no_l2_is_plain_ntk_flow_for_any_k():
    ts, gammas = np.linspace(0, 10, 7), np.array([0.1, 2.0])
    want = 1.0 + (0.3 - 1.0) * np.exp(-np.outer(ts, gammas))
    for k in (1.0, 2.0, 3.5):
        np.testing.assert_allclose(np.asarray(l2h.mode_solution(ts, gammas, 1.0, 0.3, l2=0.0, k=k)), want, rtol=1e-14)


def test_broadcasting_shapes_and_dtype():
    out = l2h.mode_solution(jnp.zeros(5), jnp.ones((3, 1)), jnp.ones(4), 0.0, l2=0.1, k=2)
    assert out.shape == (5, 3, 4) and out.dtype == jnp.float64
    assert l2h.mode_solution(1.0, 2.0, 1.0, 0.0, l2=0.1, k=2).shape == ()


def test_jit_equals_no_jit_and_vmap_equals_loop():
    ts, gammas = jnp.linspace(0, 300, 11), jnp.geomspace(1e-4, 10, 6)
    eager = l2h.mode_solution(ts, gammas, 1.0, -0.2, l2=0.01, k=2.5)
    jitted = jax.jit(lambda t, g: l2h.mode_solution(t, g, 1.0, -0.2, l2=0.01, k=2.5))(ts, gammas)
    np.testing.assert_allclose(jitted, eager, rtol=SAME_ALGORITHM_RTOL)
    ks = jnp.array([1.0, 1.5, 2.0, 3.0])
    vmapped = jax.vmap(lambda k: l2h.mode_solution(ts, gammas, 1.0, -0.2, l2=0.01, k=k))(ks)
    looped = jnp.stack([l2h.mode_solution(ts, gammas, 1.0, -0.2, l2=0.01, k=float(k)) for k in ks])
    np.testing.assert_allclose(vmapped, looped, rtol=SAME_ALGORITHM_RTOL)


def test_gradient_in_l2_matches_finite_difference():
    fn = lambda lam: l2h.mode_solution(50.0, 0.7, 1.0, 0.1, l2=lam, k=2.0)  # noqa: E731
    h = 1e-6
    fd = (fn(0.02 + h) - fn(0.02 - h)) / (2 * h)
    np.testing.assert_allclose(float(jax.grad(fn)(0.02)), float(fd), rtol=1e-7)


def test_kernel_decay_equals_ntk_of_l2_flow_on_a_homogeneous_network():
    # pure L2 gradient flow is θ(t) = θ0 e^{-λt}; by homogeneity the NTK then scales exactly as eq. 2
    key = jax.random.PRNGKey(0)
    x = jax.random.normal(key, (6, 5))
    l2, t = 0.3, 2.0
    for hidden in ((64,), (32, 32)):
        net = networks.mlp(hidden)
        params = net.init(key, 5)
        ntk = networks.empirical_ntk(net.apply_fn)
        decayed = ntk(x, None, jax.tree.map(lambda p: p * np.exp(-l2 * t), params))
        want = l2h.kernel_decay(t, ntk(x, None, params), l2=l2, k=net.degree)
        np.testing.assert_allclose(decayed, want, rtol=1e-12)


def _random_problem(n=14, m=5, c=2, seed=0):
    keys = jax.random.split(jax.random.PRNGKey(seed), 5)
    a = jax.random.normal(keys[0], (n + m, 3 * n))
    gram = a @ a.T / (3 * n)
    return (
        np.asarray(gram[:n, :n]), np.asarray(gram[n:, :n]),
        np.asarray(jax.random.normal(keys[1], (n, c))), np.asarray(0.3 * jax.random.normal(keys[2], (n, c))),
        np.asarray(0.3 * jax.random.normal(keys[3], (m, c))),
    )  # fmt: skip


@pytest.mark.parametrize("k", [1.0, 2.0, 3.0])
def test_mse_solution_train_and_test_match_the_function_space_ode(k):
    ntk, ntk_xt, y, f0, f0x = _random_problem()
    ts = np.linspace(0.0, 200.0, 21)
    closed = l2h.mse_solution(ts, ntk, y, f0, l2=0.02, k=k, ntk_test_train=ntk_xt, f0_test=f0x)
    numeric = ode.function_space_ode(
        ts, ntk, y, f0, l2=0.02, k=k, ntk_test_train=ntk_xt, f0_test=f0x, rtol=1e-13, atol=1e-15
    )
    np.testing.assert_allclose(closed.f_train, numeric.f_train, rtol=0, atol=THEORY_RTOL)
    np.testing.assert_allclose(closed.f_test, numeric.f_test, rtol=0, atol=THEORY_RTOL)


def test_fixed_point_matches_neural_tangents_ridge_solution():
    # NT's diag_reg regularises the kernel of the train dynamics (its train outputs go to y), so its
    # *test* prediction at t = inf is the ridge solution Θ(x,X)(Θ + λI)^{-1}Y; on the train set we
    # ask it for the "test" prediction at the training points.
    ntk, ntk_xt, y, _, _ = _random_problem()
    l2 = 0.05
    predict = _nt.predict.gradient_descent_mse(ntk, y, diag_reg=l2, diag_reg_absolute_scale=True)
    for kernel in (ntk_xt, ntk):
        nt_test = predict(None, None, np.zeros((kernel.shape[0], y.shape[1])), kernel)
        np.testing.assert_allclose(l2h.fixed_point(ntk, y, l2=l2, ntk_test_train=kernel), nt_test, rtol=1e-10)
    np.testing.assert_allclose(l2h.fixed_point(ntk, y, l2=l2), l2h.fixed_point(ntk, y, l2=l2, ntk_test_train=ntk))


def test_k1_solution_at_infinity_is_the_fixed_point():
    ntk, ntk_xt, y, f0, f0x = _random_problem()
    sol = l2h.mse_solution(np.array([np.inf]), ntk, y, f0, l2=0.05, k=1.0, ntk_test_train=ntk_xt, f0_test=f0x)
    np.testing.assert_allclose(sol.f_train[0], l2h.fixed_point(ntk, y, l2=0.05), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        sol.f_test[0], l2h.fixed_point(ntk, y, l2=0.05, ntk_test_train=ntk_xt), rtol=1e-10, atol=1e-12
    )


def test_no_l2_matches_neural_tangents_finite_time_prediction():
    # neural-tangents normalises the MSE by y.size: its time t_nt equals our t * y.size / learning_rate
    ntk, ntk_xt, y, f0, f0x = _random_problem()
    ts = np.array([0.0, 0.3, 2.0, 15.0])
    ours = l2h.mse_solution(ts, ntk, y, f0, l2=0.0, k=2.0, ntk_test_train=ntk_xt, f0_test=f0x)
    predict = _nt.predict.gradient_descent_mse(ntk, y, learning_rate=1.0)
    for i, t in enumerate(ts):
        nt_train, nt_test = predict(t * y.size, f0, f0x, ntk_xt)
        np.testing.assert_allclose(ours.f_train[i], nt_train, rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(ours.f_test[i], nt_test, rtol=1e-9, atol=1e-11)


def test_loss_minimum_time_is_a_stationary_minimum():
    ntk, _, y, f0, _ = _random_problem()
    t_star = float(l2h.loss_minimum_time(ntk, y, f0, l2=0.01, k=2.0))
    grid = np.linspace(0.5 * t_star, 1.5 * t_star, 201)
    losses = np.asarray(l2h.training_loss(grid, ntk, y, f0, l2=0.01, k=2.0))
    at_star = float(l2h.training_loss(np.array([t_star]), ntk, y, f0, l2=0.01, k=2.0)[0])
    assert at_star <= losses.min() + 1e-12
    h = 1e-4 * t_star
    slope = np.diff(np.asarray(l2h.training_loss(np.array([t_star - h, t_star + h]), ntk, y, f0, l2=0.01, k=2.0)))[
        0
    ] / (2 * h)
    assert abs(slope) < 1e-6
    # from f0 = 0 every mode of the linear model moves monotonically towards γy/(γ+λ): no minimum
    assert np.isinf(float(l2h.loss_minimum_time(ntk, y, np.zeros_like(f0), l2=0.01, k=1.0)))


def test_optimal_l2_is_c_over_budget():
    np.testing.assert_allclose(l2h.optimal_l2(jnp.array([100.0, 200.0]), c=0.0066), [6.6e-5, 3.3e-5])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: l2h.mode_solution(1.0, 1.0, 1.0, 0.0, l2=0.1, k=0.5), "`k` must be 0 .* or >= 1"),
        (lambda: l2h.mode_solution(1.0, 1.0, 1.0, 0.0, l2=0.1, k=-1.0), "`k` must lie in"),
        (lambda: ode.function_space_ode([0.0, 1.0], np.eye(2), np.ones(2), np.zeros(2), l2=0.1, k=0.5), "`k` must be 0"),
        (lambda: l2h.loss_minimum_time(np.eye(3), np.ones(3), np.zeros(3), l2=0.1, k=0), "no loss minimum"),
        (lambda: l2h.mode_solution(1.0, 1.0, 1.0, 0.0, l2=-0.1, k=2), "`l2` must lie in"),
        (lambda: l2h.mode_solution(1.0, -1.0, 1.0, 0.0, l2=0.1, k=2), "`gamma0` must lie in"),
        (lambda: l2h.kernel_decay(1.0, 1.0, l2=0.1, k=0.9), "`k` must be 0 .* or >= 1"),
        (lambda: l2h.mse_solution([0.0], -np.eye(3), np.ones(3), np.zeros(3), l2=0.1, k=2), "positive semi-definite"),
        (lambda: l2h.mse_solution([0.0], np.eye(3), np.ones(4), np.zeros(4), l2=0.1, k=2), "`y_train` must have shape"),
        (
            lambda: l2h.mse_solution([0.0], np.eye(3), np.ones(3), np.zeros(2), l2=0.1, k=2),
            "`f0_train` must have shape",
        ),
        (lambda: l2h.mse_solution([0.0], np.ones((3, 2)), np.ones(3), np.zeros(3), l2=0.1, k=2), "square"),
        (lambda: l2h.fixed_point(np.eye(3), np.ones(3), l2=0.1, ntk_test_train=np.ones((2, 4))), "`ntk_test_train`"),
        (lambda: l2h.loss_minimum_time(np.eye(3), np.ones(3), np.zeros(3), l2=0.0, k=2), "lambda > 0"),
        (lambda: l2h.optimal_l2(0.0, c=0.1), "`time_budget`"),
    ],
)
def test_bad_input_raises_a_clear_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("k", [1.5, 2.0, 3.0, 7.0, 1.0 + 1e-5])
def test_tabulated_route_equals_per_point_route(k):
    # k = 1 + 1e-5 (order -5e4, below the tables' range) takes the per-point route on both sides
    # concrete k -> special.gamma_table; traced k (inside jit) -> scaled_upper_gamma at every point
    ts = jnp.concatenate([jnp.linspace(0.0, 50.0, 101), jnp.array([1e3, 1e5, jnp.inf])])
    gammas = jnp.array([0.0, 1e-6, 3e-3, 0.7, 40.0, 2e4, 1e8])
    fast = l2h.mode_coefficients(ts, gammas, l2=0.01, k=k)
    direct = jax.jit(lambda kk: l2h.mode_coefficients(ts, gammas, l2=0.01, k=kk))(k)
    for got, want in zip(fast, direct):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-12, atol=1e-14)


def test_gd_solution_is_exact_gd_on_a_linear_model_for_k1():
    # f = Jθ is 1-homogeneous with a constant kernel JJᵀ: GD with L2 on θ gives the recursion exactly
    rng = np.random.default_rng(0)
    n, m, P = 6, 3, 40
    J, Jx = rng.normal(size=(n, P)) / np.sqrt(P), rng.normal(size=(m, P)) / np.sqrt(P)
    theta = rng.normal(size=P)
    y = rng.normal(size=(n, 1))
    eta, lam, steps = 0.3, 0.05, np.array([0, 1, 7, 40])
    sol = l2h.gd_solution(steps, J @ J.T, y, (J @ theta)[:, None], learning_rate=eta, l2=lam, k=1.0,
                          ntk_test_train=Jx @ J.T, f0_test=(Jx @ theta)[:, None])  # fmt: skip
    th, f, ft = theta.copy(), [], []
    for _ in range(steps.max() + 1):
        f.append(J @ th), ft.append(Jx @ th)
        th = (1 - eta * lam) * th - eta * J.T @ (J @ th - y[:, 0])
    np.testing.assert_allclose(np.asarray(sol.f_train)[:, :, 0], np.array(f)[steps], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(np.asarray(sol.f_test)[:, :, 0], np.array(ft)[steps], rtol=1e-12, atol=1e-13)


def test_gd_solution_tends_to_eq3_linearly_in_the_step():
    # at fixed t the recursion differs from gradient flow (eq. 3) by O(η): halving η halves the gap
    rng = np.random.default_rng(1)
    a = rng.normal(size=(8, 8))
    ntk, y, f0 = a @ a.T / 8, rng.normal(size=8), 0.3 * rng.normal(size=8)
    xt = rng.normal(size=(3, 8)) @ a.T / 8
    t_end, lam = 4.0, 0.2
    gaps = []
    for eta in (0.02, 0.01, 0.005):
        steps = np.arange(0, int(round(t_end / eta)) + 1, int(round(0.5 / eta)))
        gd = l2h.gd_solution(steps, ntk, y, f0, learning_rate=eta, l2=lam, k=2.0, ntk_test_train=xt, f0_test=f0[:3])
        flow = l2h.mse_solution(eta * steps, ntk, y, f0, l2=lam, k=2.0, ntk_test_train=xt, f0_test=f0[:3])
        gaps.append(max(float(jnp.max(jnp.abs(gd.f_train - flow.f_train))), float(jnp.max(jnp.abs(gd.f_test - flow.f_test)))))
    ratios = np.array(gaps[:-1]) / np.array(gaps[1:])
    np.testing.assert_allclose(ratios, 2.0, rtol=0.05)  # first order in η
    assert gaps[-1] < 1e-2


def test_gd_solution_equals_the_recursion_on_the_full_kernel_matrix():
    # a second route: the recursion iterated on (n, n) matrices in numpy, no eigendecomposition
    rng = np.random.default_rng(2)
    a = rng.normal(size=(5, 5))
    ntk, y, f0 = a @ a.T / 5, rng.normal(size=5), rng.normal(size=5)
    eta, lam, k = 0.1, 0.3, 3.0
    sol = l2h.gd_solution(np.array([0, 3, 50]), ntk, y, f0, learning_rate=eta, l2=lam, k=k)
    f, out = f0.copy(), []
    for s in range(51):
        out.append(f.copy())
        f = (1 - eta * lam) ** k * f - eta * (1 - eta * lam) ** (k - 1) * (1 - eta * lam) ** (2 * (k - 1) * s) * ntk @ (f - y)
    np.testing.assert_allclose(np.asarray(sol.f_train)[:, :, 0], np.array(out)[[0, 3, 50]], rtol=1e-12, atol=1e-14)


def test_scale_invariant_k0_closed_form_matches_high_precision_ode_and_its_limits():
    """k = 0: f = y + (f0 - y) exp(-γ (e^{2λt} - 1)/(2λ)) against diffrax on eq. 1 with Θ_t = Θ_0 e^{2λt}
    (an independent route), at λ = 0 the plain NTK flow, and f -> y as t -> inf for every γ > 0."""
    l2 = 0.05
    gammas = np.array([0.0, 1e-3, 0.02, 0.3, 2.0])
    ts = np.concatenate([[0.0], np.geomspace(1e-3, 40.0, 50)])
    closed = np.asarray(l2h.mode_solution(ts, gammas, 1.0, 0.2, l2=l2, k=0))
    sol = ode.function_space_ode(ts, np.diag(gammas), np.ones(5), np.full(5, 0.2), l2=l2, k=0, rtol=1e-13, atol=1e-15)
    assert bool(sol.success)
    np.testing.assert_allclose(closed, np.asarray(sol.f_train[..., 0]), rtol=0, atol=THEORY_RTOL)
    by_hand = 1.0 + (0.2 - 1.0) * np.exp(-gammas[None] * np.expm1(2 * l2 * ts[:, None]) / (2 * l2))
    np.testing.assert_allclose(closed, by_hand, rtol=1e-13, atol=1e-15)
    flat = np.asarray(l2h.mode_solution(ts, gammas, 1.0, 0.2, l2=0.0, k=0))
    np.testing.assert_allclose(flat, np.asarray(l2h.mode_solution(ts, gammas, 1.0, 0.2, l2=0.0, k=2)), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(l2h.mode_solution(np.inf, gammas, 1.0, 0.2, l2=l2, k=0)), [0.2, 1, 1, 1, 1], rtol=0, atol=0)
    np.testing.assert_allclose(np.asarray(l2h.kernel_decay(ts, 2.0, l2=l2, k=0)), 2.0 * np.exp(2 * l2 * ts), rtol=1e-15)


def test_scale_invariant_k0_mse_solution_and_gd_recursion_on_train_and_test_points():
    """Test points follow Θ(x, X)Θ^{-1} of the train motion (diffrax on the full system), and the GD
    recursion at k = 0, f_{s+1} = f_s - η(1-ηλ)^{-2s-1}Θ(f_s - y), is iterated on full matrices."""
    rng = np.random.default_rng(4)
    a = rng.normal(size=(7, 6))
    gram = a @ a.T / 6
    ntk, ntk_xt = gram[:5, :5], gram[5:, :5]
    y, f0, f0_x = rng.normal(size=5), rng.normal(size=5), rng.normal(size=2)
    ts = np.linspace(0.0, 6.0, 13)
    closed = l2h.mse_solution(ts, ntk, y, f0, l2=0.1, k=0, ntk_test_train=ntk_xt, f0_test=f0_x)
    sol = ode.function_space_ode(ts, ntk, y, f0, l2=0.1, k=0, ntk_test_train=ntk_xt, f0_test=f0_x, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(closed.f_train, sol.f_train, rtol=0, atol=THEORY_RTOL)
    np.testing.assert_allclose(closed.f_test, sol.f_test, rtol=0, atol=THEORY_RTOL)
    eta, lam = 0.05, 0.3
    gd = l2h.gd_solution(np.array([0, 4, 60]), ntk, y, f0, learning_rate=eta, l2=lam, k=0)
    f, out = f0.copy(), []
    for s_ in range(61):
        out.append(f.copy())
        f = f - eta * (1 - eta * lam) ** (-2 * s_ - 1) * ntk @ (f - y)
    np.testing.assert_allclose(np.asarray(gd.f_train)[:, :, 0], np.array(out)[[0, 4, 60]], rtol=1e-12, atol=1e-14)


def test_k0_inside_vmap_over_k_and_a_zero_mode_at_late_time_stay_finite():
    """A traced k = 0 (vmap over k) takes the k = 0 closed form, not eq. 3's c < 0 branch; a γ = 0
    mode does not move even when e^{2λt} overflows (no 0·inf)."""
    gammas = np.array([0.0, 0.5])
    by_k = jax.vmap(lambda k: l2h.mode_solution(jnp.array([0.0, 3.0]), gammas, 1.0, 0.3, l2=0.2, k=k))(jnp.array([0.0, 2.0]))
    np.testing.assert_allclose(by_k[0], l2h.mode_solution(jnp.array([0.0, 3.0]), gammas, 1.0, 0.3, l2=0.2, k=0), rtol=1e-14)
    np.testing.assert_allclose(by_k[1], l2h.mode_solution(jnp.array([0.0, 3.0]), gammas, 1.0, 0.3, l2=0.2, k=2), rtol=1e-12)
    late = np.asarray(l2h.mode_solution([1e3], gammas, 1.0, 0.3, l2=1.0, k=0))
    np.testing.assert_array_equal(late, [[0.3, 1.0]])
    sol = l2h.mse_solution([0.0, 1e3], np.diag(gammas), np.ones(2), np.full(2, 0.3), l2=1.0, k=0)
    np.testing.assert_allclose(np.asarray(sol.f_train)[-1, :, 0], [0.3, 1.0], rtol=1e-14)
