import numpy as np
import pytest
from scipy.integrate import solve_ivp

from widenet.theory import ode


def _problem(n=8, m=3, c=3, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n + m, 2 * n))
    gram = a @ a.T / (2 * n)
    y = np.eye(c)[rng.integers(0, c, n)]
    return gram[:n, :n], gram[n:, :n], y, 0.3 * rng.normal(size=(n, c)), 0.3 * rng.normal(size=(m, c))


@pytest.mark.parametrize("k, l2", [(1.0, 0.0), (2.0, 0.05), (3.0, 0.02)])
def test_cross_entropy_flow_matches_scipy_dop853(k, l2):
    ntk, ntk_xt, y, f0, f0x = _problem()
    weights = np.linspace(0.5, 1.5, 8)
    ts = np.linspace(0.0, 20.0, 9)
    ours = ode.function_space_ode(ts, ntk, y, f0, l2=l2, k=k, loss="cross_entropy", weights=weights,
                                  ntk_test_train=ntk_xt, f0_test=f0x)  # fmt: skip
    n, c = y.shape

    def rhs(t, state):
        f, fx = state[: n * c].reshape(n, c), state[n * c :].reshape(-1, c)
        p = np.exp(f - f.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = weights[:, None] * (p - y)  # d/df of -Σ w y·log softmax(f)
        scale = np.exp(-2 * (k - 1) * l2 * t)
        return np.concatenate([(-scale * ntk @ g - k * l2 * f).ravel(), (-scale * ntk_xt @ g - k * l2 * fx).ravel()])

    ref = solve_ivp(
        rhs, (0, 20), np.concatenate([f0.ravel(), f0x.ravel()]), method="DOP853", t_eval=ts, rtol=1e-12, atol=1e-14
    )
    want_train = ref.y[: n * c].T.reshape(-1, n, c)
    want_test = ref.y[n * c :].T.reshape(-1, 3, c)
    assert bool(ours.success)
    np.testing.assert_allclose(ours.f_train, want_train, atol=1e-9)
    np.testing.assert_allclose(ours.f_test, want_test, atol=1e-9)


def test_solver_failure_is_data_not_an_exception():
    ntk, _, y, f0, _ = _problem()
    sol = ode.function_space_ode(np.linspace(0, 100, 3), ntk, y, f0, l2=0.0, k=1.0, max_steps=2)
    assert not bool(sol.success)


def test_ode_input_errors():
    ntk, ntk_xt, y, f0, _ = _problem()
    with pytest.raises(ValueError, match="`f0_test` is required"):
        ode.function_space_ode([0.0, 1.0], ntk, y, f0, l2=0.1, k=2, ntk_test_train=ntk_xt)
    with pytest.raises(ValueError, match="`weights` must have shape"):
        ode.function_space_ode([0.0, 1.0], ntk, y, f0, l2=0.1, k=2, weights=np.ones(3))
    with pytest.raises(ValueError, match="`k` must lie in"):
        ode.function_space_ode([0.0, 1.0], ntk, y, f0, l2=0.1, k=-1.0)
    with pytest.raises(ValueError, match="`k` must be 0"):
        ode.function_space_ode([0.0, 1.0], ntk, y, f0, l2=0.1, k=0.5)


@pytest.mark.parametrize("k", [1.0, 2.0, 3.0])
def test_a_piecewise_constant_l2_schedule_is_eq3_restarted_at_the_switch(k):
    """Independent route: eq. 3 in closed form up to the switch, then again from the state there,
    with the kernel shrunk by e^{-2(k-1) λ1 t1} (the parameters by e^{-λ1 t1})."""
    import jax.numpy as jnp

    from widenet.theory import l2_homogeneous as l2h

    ntk, ntk_xt, y, f0, f0x = _problem()
    lam1, lam2, t1 = 0.2, 0.05, 3.0
    ts = np.concatenate([np.linspace(0.0, t1, 7), np.linspace(t1, 12.0, 10)[1:]])
    ours = ode.function_space_ode(ts, ntk, y, f0, l2=lambda t: jnp.where(t < t1, lam1, lam2), k=k,
                                  ntk_test_train=ntk_xt, f0_test=f0x)  # fmt: skip
    first = l2h.mse_solution(ts[:7], ntk, y, f0, l2=lam1, k=k, ntk_test_train=ntk_xt, f0_test=f0x)
    shrink = np.exp(-2 * (k - 1) * lam1 * t1)
    second = l2h.mse_solution(ts[6:] - t1, shrink * ntk, y, np.asarray(first.f_train[-1]), l2=lam2, k=k,
                              ntk_test_train=shrink * ntk_xt, f0_test=np.asarray(first.f_test[-1]))  # fmt: skip
    want = np.concatenate([np.asarray(first.f_train), np.asarray(second.f_train)[1:]])
    want_test = np.concatenate([np.asarray(first.f_test), np.asarray(second.f_test)[1:]])
    assert bool(ours.success)
    np.testing.assert_allclose(ours.f_train, want, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(ours.f_test, want_test, rtol=1e-9, atol=1e-11)
    # a constant schedule is the constant-λ flow
    const = ode.function_space_ode(ts, ntk, y, f0, l2=lambda t: 0.1 + 0.0 * t, k=k)
    np.testing.assert_allclose(const.f_train, ode.function_space_ode(ts, ntk, y, f0, l2=0.1, k=k).f_train,
                               rtol=1e-10, atol=1e-12)  # fmt: skip
    with pytest.raises(ValueError, match="`l2`"):
        ode.function_space_ode(ts, ntk, y, f0, l2=lambda t: -0.1 + 0.0 * t, k=k)
