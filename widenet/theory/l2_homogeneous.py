"""Gradient flow of k-homogeneous wide networks with L2 regularisation, in closed form.

Spec: Lewkowycz & Gur-Ari, "On the training dynamics of deep networks: L2 regularization and
kernel decay" (shared/papers/l2-regularization-training-dynamics.txt), Theorems 1 and 2.

Conventions (docs/notation.md): loss $L_{tot} = \\sum_i \\ell(f(x_i), y_i) + \\frac{\\lambda}{2}\\|\\theta\\|^2$
(a sum over samples), MSE sample loss $\\ell = \\frac12 (f - y)^2$, gradient-flow time
$t = \\eta \\cdot \\mathrm{step}$, kernel $\\Theta_0$ the empirical or analytic NTK on the training set
with outputs traced out (an (n, n) matrix shared by every output dimension).

With $c = 2(k-1)\\lambda$, $u(t) = \\gamma(t)/c$, $u_0 = \\gamma/c$, $p = (k-2)/(2(k-1))$, eq. 3 reads
$$ f(t) = A(t) f_0 + B(t) y, \\qquad A(t) = e^{u(t) - u_0 - k\\lambda t}, $$
$$ B(t) = \\gamma e^{u(t) - k\\lambda t}\\int_0^t e^{-u(t') - (k-2)\\lambda t'} dt'
        = u_0 \\left[ e^{-ct} H(p, u(t)) - A(t) H(p, u_0) \\right], $$
with $H(p, u) = u^{-p} e^{u} \\Gamma(p, u)$ the scaled upper incomplete gamma function
(`special.scaled_upper_gamma`); docs/theory_l2.md derives it. k = 1 (or λ = 0) is the linear model
$A = e^{-(\\gamma + k\\lambda)t}$, $B = \\gamma (1 - e^{-(\\gamma+k\\lambda)t})/(\\gamma + k\\lambda)$.
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_degree, check_int, check_psd_kernel, check_range, check_shape, concrete, warn_if_float32
from .solution import FunctionSpaceSolution
from .special import TABLE_MIN_ORDER, exprel, gamma_table, scaled_upper_gamma, scaled_upper_gamma_tabulated

__all__ = [
    "kernel_decay",
    "mode_coefficients",
    "mode_solution",
    "mse_solution",
    "gd_solution",
    "fixed_point",
    "training_loss",
    "loss_minimum_time",
    "optimal_l2",
]


def _check_l2_k(l2, k):
    check_range("l2", l2, low=0.0, meaning="L2 coefficient lambda >= 0")
    if k is None:
        raise TypeError(
            "`k` must be 0 or a real number >= 1 (the degree of homogeneity); got None. A network's `degree` is "
            "None when it is not homogeneous (biases, erf, gelu): eq. 3 does not apply to it"
        )
    check_degree("k", k)


def kernel_decay(ts, gamma0, *, l2, k):
    """Kernel under L2: $\\Theta_t = \\Theta_0 e^{-2(k-1)\\lambda t}$ (L2 paper, eq. 2 / Thm 2).

    Args:
        ts: times, any shape (gradient-flow time, $t = \\eta\\cdot$step).
        gamma0: initial kernel eigenvalue(s) $\\gamma_0$ or kernel entries $\\Theta_0(x, x')$, any shape.
        l2: $\\lambda \\ge 0$.
        k: degree of homogeneity: $k \\ge 1$, or $k = 0$ (a scale-invariant network).

    Returns:
        Array of shape `ts.shape + gamma0.shape`.

    Example:
        >>> kernel_decay(jnp.array([0.0, 1.0]), 2.0, l2=0.5, k=2)  # 2 e^{-t}
    """
    _check_l2_k(l2, k)
    t, (gamma0,) = _time_major(ts, gamma0)
    return gamma0 * jnp.exp(-2.0 * (k - 1.0) * l2 * t)


def _coefficients(t, gamma, l2, k):
    """(decay, a_excess, b) with decay = e^{-kλt}, A = decay + a_excess, f = A f0 + B y (eq. 3).

    For a concrete k (the usual case; λ may be traced) H(p, ·) is evaluated from a Chebyshev table
    for the one order p = (k-2)/(2(k-1)) (`special.gamma_table`, ~25x faster), and only the branch
    that applies (linear model or eq. 3) is computed when k and λ are known; for a traced k (grad or
    vmap over k) H is evaluated by `special.scaled_upper_gamma` at every point.
    """
    k_value, l2_value = concrete(k), concrete(l2)
    if k_value is not None and k_value.ndim == 0 and k_value == 0.0:
        return _coefficients_scale_invariant(t, gamma, l2)
    if k_value is None or k_value.ndim != 0 or not np.isfinite(k_value) or k_value < 1.0:
        # a traced or array k may hold 0, which eq. 3's incomplete-gamma form cannot take (c < 0):
        # the k = 0 closed form is selected there
        mixed = _coefficients_jit(t, gamma, l2, k, None, "mixed")
        at_zero = _coefficients_scale_invariant(t, gamma, l2)
        zero = jnp.asarray(k) == 0.0
        return tuple(jnp.where(zero, a, b) for a, b in zip(at_zero, mixed))
    k_value = float(k_value)
    known_l2 = l2_value is not None and l2_value.ndim == 0
    if k_value == 1.0 or (known_l2 and l2_value == 0.0):
        return _coefficients_jit(t, gamma, l2, k, None, "linear")
    order = (k_value - 2.0) / (2.0 * (k_value - 1.0))
    table = gamma_table(order) if order >= TABLE_MIN_ORDER else None  # k within 5e-5 of 1: per point
    return _coefficients_jit(t, gamma, l2, k, table, "general" if known_l2 else "mixed")


@jax.jit
def _coefficients_scale_invariant(t, gamma, l2):
    r"""k = 0 (a scale-invariant network): eq. 1 per mode is $\dot f = -\gamma e^{2\lambda t}(f - y)$ (the
    kernel grows, no $k\lambda f$ term), so $A = e^{-\gamma s(t)}$, $B = 1 - A$ with the effective time
    $s(t) = \int_0^t e^{2\lambda t'}dt' = (e^{2\lambda t} - 1)/(2\lambda)$: gradient flow without L2 on the
    clock s, the continuous form of Li & Arora's exponentially growing learning rate (L2 paper, Sec. 2).
    Returned as (decay, a_excess, b) = (1, A - 1, B)."""
    gamma = jnp.asarray(gamma, dtype=float)
    t, gamma = jnp.broadcast_arrays(jnp.asarray(t, dtype=float), gamma)
    l2 = jnp.asarray(l2, dtype=float)
    at_infinity = jnp.isinf(t)
    t0 = jnp.where(at_infinity, 0.0, t)
    s = t0 * exprel(2.0 * l2 * t0)  # exact as λt -> 0 (then s = t); inf once 2λt > ~709
    excess = jnp.expm1(jnp.where(gamma > 0, -gamma * s, 0.0))  # a γ = 0 mode never moves (not 0·inf)
    excess = jnp.where(at_infinity, jnp.where(gamma > 0, -1.0, 0.0), excess)
    return jnp.ones_like(t), excess, -excess


@partial(jax.jit, static_argnames=("branches",))
def _coefficients_jit(t, gamma, l2, k, table, branches):
    """`branches`: "linear" (k = 1 or λ = 0 known), "general" (k > 1 and λ > 0 known) or "mixed"."""
    if table is None:
        scaled_gamma = scaled_upper_gamma
    else:

        def scaled_gamma(p, log_u, log_scale=0.0):
            del p  # the table's own order
            return scaled_upper_gamma_tabulated(table, log_u, log_scale)

    gamma_mode = jnp.asarray(gamma, dtype=float)
    active_mode = gamma_mode > 0
    t, gamma = jnp.broadcast_arrays(jnp.asarray(t, dtype=float), gamma_mode)
    l2 = jnp.asarray(l2, dtype=float)
    k = jnp.asarray(k, dtype=float)
    at_infinity = jnp.isinf(t)
    t = jnp.where(at_infinity, 0.0, t)
    decay = jnp.exp(-k * l2 * t)
    linear = (k == 1.0) | (l2 == 0.0)

    if branches != "general":  # linear model (k = 1, or no L2): rate r = gamma + k*lambda.
        rate = gamma + k * l2
        lin_excess = decay * jnp.expm1(-gamma * t)
        lin_b = gamma * t * exprel(-rate * t)
        lin_b_inf = jnp.where(rate > 0, gamma / jnp.where(rate > 0, rate, 1.0), 0.0)
    if branches != "linear":  # k > 1 with lambda > 0 (eq. 3 through the scaled incomplete gamma function)
        active = (~linear) & (gamma > 0)
        c = 2.0 * jnp.where(linear, 1.0, k - 1.0) * jnp.where(linear, 1.0, l2)
        p = (jnp.where(linear, 3.0, k) - 2.0) / (2.0 * jnp.where(linear, 2.0, k - 1.0))
        g = jnp.where(active, gamma, 1.0)
        u0 = g / c
        log_u0 = jnp.log(g) - jnp.log(c)
        shift = u0 * jnp.expm1(-c * t)  # u(t) - u0, exact for small ct
        gen_a = jnp.exp(shift - k * l2 * t)
        h_t = scaled_gamma(p, log_u0 - c * t, log_scale=jnp.log(u0) - c * t)  # u0 e^{-ct} H(p, u_t)
        # u0 A H(p, u0): H(p, u0) depends on the mode only, so it is evaluated once per mode
        h_0 = scaled_gamma(p, jnp.log(jnp.where(active_mode, gamma_mode, 1.0)) - jnp.log(c))
        gen_b = jnp.where(active, h_t - u0 * gen_a * h_0, 0.0)
        gen_excess = jnp.where(active, decay * jnp.expm1(shift), 0.0)

    if branches == "linear":
        excess, b, b_inf = lin_excess, lin_b, lin_b_inf
    elif branches == "general":
        excess, b, b_inf = gen_excess, gen_b, 0.0
    else:
        excess = jnp.where(linear, lin_excess, gen_excess)
        b = jnp.where(linear, lin_b, gen_b)
        b_inf = jnp.where(linear, lin_b_inf, 0.0)
    # t = inf: linear model -> fixed point, k > 1 -> 0 (Thm 2).
    decay_inf = jnp.where(k * l2 > 0, 0.0, 1.0)
    excess_inf = jnp.where(linear & (gamma > 0), -decay_inf, 0.0)
    return (
        jnp.where(at_infinity, decay_inf, decay),
        jnp.where(at_infinity, excess_inf, excess),
        jnp.where(at_infinity, b_inf, b),
    )


def _time_major(ts, *arrays):
    """Times as (T..., 1...) and the arrays broadcast together as (1..., S...): equal ranks."""
    ts = jnp.asarray(ts, dtype=float)
    arrays = jnp.broadcast_arrays(*[jnp.asarray(a, dtype=float) for a in arrays])
    t = ts.reshape(ts.shape + (1,) * arrays[0].ndim)
    return t, [a.reshape((1,) * ts.ndim + a.shape) for a in arrays]


def mode_coefficients(ts, gamma0, *, l2, k):
    """Coefficients $(A, B)$ of eq. 3: $f_a(t) = A(t) f_a(0) + B(t) y_a$ (L2 paper, Thm 2).

    Closed form through the scaled upper incomplete gamma function (module docstring), finite for
    $u_0 = \\gamma/(2(k-1)\\lambda)$ up to 1e300 and for $\\lambda t$ in the hundreds.

    Args:
        ts: times, shape (T,) or any.
        gamma0: kernel eigenvalue(s) $\\ge 0$, any shape.
        l2: $\\lambda \\ge 0$; k: real $k \\ge 1$, or $k = 0$ (scale-invariant; concrete). Scalars (may be traced).

    Returns:
        (A, B), each of shape `ts.shape + gamma0.shape`.
    """
    warn_if_float32("l2_homogeneous.mode_coefficients", "the closed form (eq. 3) is accurate to ~1e-6 instead of 1e-10")
    _check_l2_k(l2, k)
    check_range("gamma0", gamma0, low=0.0, meaning="kernel eigenvalues are >= 0")
    t, (gamma,) = _time_major(ts, gamma0)
    decay, excess, b = _coefficients(t, gamma, l2, k)
    return decay + excess, b


def mode_solution(ts, gamma0, y_mode, f0_mode, *, l2, k):
    """One mode (or many) of the MSE gradient flow under L2 (L2 paper, eq. 3).

    $$ f_a(t) = e^{\\frac{\\gamma_a(t)}{2(k-1)\\lambda} - k\\lambda t}\\Big\\{ e^{-\\frac{\\gamma_a}{2(k-1)\\lambda}} f_a(0)
       + \\gamma_a y_a \\int_0^t dt' \\exp\\Big[-\\frac{\\gamma_a(t')}{2(k-1)\\lambda} - (k-2)\\lambda t'\\Big]\\Big\\} $$

    for real $k > 1$, evaluated in closed form (no quadrature), and for $k = 1$ the linear model
    $f^* + (f_0 - f^*)e^{-(\\gamma+\\lambda)t}$, $f^* = \\gamma y/(\\gamma + \\lambda)$. `ts` may contain
    `inf` (the $t\\to\\infty$ limit). Checked against an mpmath quadrature of eq. 3 and against the
    ODE of eq. 1 to 1e-10 (tests/theory/test_l2_homogeneous.py).

    Args:
        ts: times (gradient-flow time $t = \\eta \\cdot$ step), shape (T,) or any.
        gamma0: kernel eigenvalue(s) $\\gamma_a \\ge 0$.
        y_mode: label projection(s) $y_a = \\hat e_a^T y$.
        f0_mode: initial output projection(s) $f_a(0)$.
        l2: $\\lambda \\ge 0$.
        k: degree of homogeneity, real $k \\ge 1$, or $k = 0$ (a scale-invariant network: the kernel grows
            as $e^{2\\lambda t}$ and L2 acts as an exponentially growing learning rate; concrete).

    Returns:
        Array of shape `ts.shape + broadcast(gamma0, y_mode, f0_mode).shape`.

    Raises:
        ValueError: for k < 0 or 0 < k < 1, l2 < 0 or gamma0 < 0 (when concrete).

    Example:
        >>> mode_solution(jnp.linspace(0, 500, 6), jnp.array([1e-3, 1.0]), 1.0, 0.0, l2=0.01, k=2)
    """
    warn_if_float32("l2_homogeneous.mode_solution", "the closed form (eq. 3) is accurate to ~1e-6 instead of 1e-10")
    _check_l2_k(l2, k)
    check_range("gamma0", gamma0, low=0.0, meaning="kernel eigenvalues are >= 0")
    check_range("y_mode", y_mode)
    check_range("f0_mode", f0_mode, meaning="the network's initial output projection(s)")
    check_range("ts", ts, low=0.0, finite=False, meaning="times t >= 0; inf gives the t -> infinity limit")
    t, (gamma, y, f0) = _time_major(ts, gamma0, y_mode, f0_mode)
    decay, excess, b = _coefficients(t, gamma, l2, k)
    return (decay + excess) * f0 + b * y


def _as_2d(name, y, n):
    y = jnp.asarray(y, dtype=float)
    if y.ndim == 1:
        y = y[:, None]
    check_shape(name, y, (n, None), other=f"the kernel's n={n}")
    return y


def _modes_of(ntk_train, y_train, f0_train, ntk_test_train, f0_test):
    """Checked inputs of the function-space solutions and the eigendecomposition of the kernel:
    (y (n, C), f0 (n, C), Θ(x, X) (m, n) or None, f0 at x (m, C) or None, γ (n,) >= 0, vectors)."""
    check_psd_kernel("ntk_train", ntk_train)
    ntk_train = jnp.asarray(ntk_train, dtype=float)
    n = ntk_train.shape[0]
    y = _as_2d("y_train", y_train, n)
    f0 = _as_2d("f0_train", f0_train, n)
    check_shape("f0_train", f0, y.shape, other="y_train")
    ntk_xt = f0_x = None
    if ntk_test_train is not None:
        if f0_test is None:
            raise ValueError("`f0_test` is required with `ntk_test_train` (the network's initial test outputs)")
        ntk_xt = jnp.asarray(ntk_test_train, dtype=float)
        check_shape("ntk_test_train", ntk_xt, (None, n), other=f"the training set's n={n}")
        f0_x = _as_2d("f0_test", f0_test, ntk_xt.shape[0])
        check_shape("f0_test", f0_x, (ntk_xt.shape[0], y.shape[1]), other=f"{y.shape[1]} outputs like y_train")
    gamma, vecs = jnp.linalg.eigh(ntk_train)
    return y, f0, ntk_xt, f0_x, jnp.clip(gamma, 0.0), vecs  # clip: round-off negatives of a PSD kernel


def mse_solution(ts, ntk_train, y_train, f0_train, *, l2, k, ntk_test_train=None, f0_test=None, rcond=1e-12):
    """Whole function-space MSE solution of eq. 1 on train and test points, in closed form.

    Train: $f(t) = \\sum_a \\hat e_a [A_a(t) f_a(0) + B_a(t) y_a]$ (Thm 2, eq. 3), from the
    eigendecomposition $\\Theta_0 = \\sum_a \\gamma_a \\hat e_a \\hat e_a^T$.
    Test: eq. 1 at a test point $x$ is driven by $\\Theta_t(x, X) = e^{-2(k-1)\\lambda t}\\Theta_0(x, X)$,
    and integrating it against the train modes gives
    $$ f_t(x) = e^{-k\\lambda t} f_0(x) + \\Theta_0(x, X) \\sum_a \\frac{\\hat e_a}{\\gamma_a}
       \\big[f_a(t) - e^{-k\\lambda t} f_a(0)\\big] $$
    (docs/theory_l2.md); modes with $\\gamma_a \\le$ `rcond` $\\cdot\\gamma_{max}$ are dropped there
    (for a Gram kernel $\\Theta_0(x, X)\\hat e_a = 0$ when $\\gamma_a = 0$).

    Args:
        ts: (T,) times.
        ntk_train: (n, n) PSD kernel $\\Theta_0(X, X)$.
        y_train: (n,) or (n, C) targets; f0_train: same shape, the network's initial outputs.
        l2, k: as in `mode_solution`.
        ntk_test_train: optional (m, n) kernel $\\Theta_0(x, X)$; f0_test: (m,) or (m, C).
        rcond: relative eigenvalue cut-off for the test-point solution.

    Returns:
        `FunctionSpaceSolution` with f_train (T, n, C) and f_test (T, m, C) or None.
    """
    warn_if_float32("l2_homogeneous.mse_solution", "the closed form (eq. 3) is accurate to ~1e-6 instead of 1e-10")
    _check_l2_k(l2, k)
    y, f0, ntk_xt, f0_x, gamma, vecs = _modes_of(ntk_train, y_train, f0_train, ntk_test_train, f0_test)
    ts = jnp.asarray(ts, dtype=float)
    y_m, f0_m = vecs.T @ y, vecs.T @ f0
    decay, excess, b = _coefficients(ts[:, None], gamma[None, :], l2, k)  # (T, n)
    f_modes = (decay + excess)[..., None] * f0_m[None] + b[..., None] * y_m[None]
    f_train = jnp.einsum("ia,tac->tic", vecs, f_modes)
    f_test = None
    if ntk_xt is not None:
        keep = gamma > rcond * jnp.max(gamma)
        inv = jnp.where(keep, 1.0 / jnp.where(keep, gamma, 1.0), 0.0)
        driven = excess[..., None] * f0_m[None] + b[..., None] * y_m[None]  # f_a(t) - e^{-k l2 t} f_a(0)
        f_test = decay[:, :1, None] * f0_x[None] + jnp.einsum("xi,ia,tac->txc", ntk_xt, vecs * inv[None, :], driven)
    return FunctionSpaceSolution(ts=ts, f_train=f_train, f_test=f_test)


def gd_solution(steps, ntk_train, y_train, f0_train, *, learning_rate, l2, k, ntk_test_train=None, f0_test=None):
    """Gradient *descent* (step η) on a wide k-homogeneous network with L2, in function space.

    The discrete-time counterpart of eq. 1 (L2 paper), derived in docs/theory_l2.md: GD with L2 is
    $\\theta_{s+1} = (1-\\eta\\lambda)\\theta_s - \\eta\\nabla L$; by homogeneity
    $f(c\\theta) = c^k f(\\theta)$ and $\\Theta(c\\theta) = c^{2(k-1)}\\Theta(\\theta)$, and to first order
    in the gradient step (exact at infinite width, where the kernel moves only through the L2 scaling)
    $$ f_{s+1} = (1-\\eta\\lambda)^k f_s - \\eta(1-\\eta\\lambda)^{k-1} q^s\\,\\Theta_0 (f_s - y),
       \\qquad q = (1-\\eta\\lambda)^{2(k-1)}, $$
    and at a test point $x$ the same with $\\Theta_0(x, X)$. As $\\eta \\to 0$ at fixed $t = \\eta s$ it
    becomes eq. 1 (solved by `mse_solution`), with an O(η) difference; this is the theory to hold GD
    at a finite step against, so that the discretisation is not mistaken for a width effect.

    Args:
        steps: (S,) non-negative integer steps at which to report (any order, repeats allowed).
        ntk_train, y_train, f0_train, ntk_test_train, f0_test: as in `mse_solution`.
        learning_rate: $\\eta > 0$ with $\\eta\\lambda < 1$.
        l2: $\\lambda \\ge 0$. k: degree of homogeneity $k \\ge 1$ or $k = 0$.

    Returns:
        `FunctionSpaceSolution` with ts = η·steps, f_train (S, n, C) and f_test (S, m, C) or None.
    """
    warn_if_float32("l2_homogeneous.gd_solution", "the recursion is accurate to ~1e-6 instead of 1e-12")
    _check_l2_k(l2, k)
    check_range("learning_rate", learning_rate, low=0.0, low_open=True, meaning="step size eta > 0")
    if float(learning_rate) * float(l2) >= 1.0:
        raise ValueError(f"`learning_rate` * `l2` must be < 1 (GD's L2 factor 1 - eta*lambda > 0); got {learning_rate} * {l2}")
    steps_np = np.asarray(steps)
    if steps_np.ndim != 1 or not np.issubdtype(steps_np.dtype, np.integer) or np.any(steps_np < 0):
        raise ValueError(f"`steps` must be a 1-D array of integers >= 0; got {steps!r:.80}")
    y, f0, ntk_xt, f0_x, gamma, vecs = _modes_of(ntk_train, y_train, f0_train, ntk_test_train, f0_test)
    last = int(steps_np.max()) if steps_np.size else 0
    f_modes, g_modes = _gd_modes(gamma, vecs.T @ y, vecs.T @ f0, float(learning_rate), float(l2), float(k), last + 1)
    idx = jnp.asarray(steps_np)
    f_train = jnp.einsum("ia,sac->sic", vecs, f_modes[idx])
    f_test = None
    if ntk_xt is not None:
        shrink = (1.0 - learning_rate * l2) ** (k * idx.astype(float))  # (1 - ηλ)^{k s}
        f_test = shrink[:, None, None] * f0_x[None] - jnp.einsum("xi,ia,sac->sxc", ntk_xt, vecs, g_modes[idx])
    return FunctionSpaceSolution(ts=learning_rate * jnp.asarray(steps_np, dtype=float), f_train=f_train, f_test=f_test)


@partial(jax.jit, static_argnums=6)
def _gd_modes(gamma, y_m, f0_m, eta, l2, k, length):
    """Mode coordinates f_s and the test-point accumulator g_s (f_test = a^s f0 - Θ(x,X) V g_s) for s < length."""
    a = (1.0 - eta * l2) ** k
    c0 = eta * (1.0 - eta * l2) ** (k - 1.0)
    q = (1.0 - eta * l2) ** (2.0 * (k - 1.0))

    def body(carry, s):
        f, g = carry
        c = c0 * q**s
        r = f - y_m
        return (a * f - c * gamma[:, None] * r, a * g + c * r), (f, g)

    _, (fs, gs) = jax.lax.scan(body, (f0_m, jnp.zeros_like(f0_m)), jnp.arange(length, dtype=float))
    return fs, gs


def fixed_point(ntk_train, y_train, *, l2, ntk_test_train=None):
    """k = 1 late-time solution $f_*(x) = \\Theta(x, X)(\\Theta + \\lambda I)^{-1} Y$ (L2 paper, Sec. 4).

    Independent of the initial outputs. Cross-checked against
    `neural_tangents.predict.gradient_descent_mse(..., diag_reg=l2, diag_reg_absolute_scale=True)` at
    t = inf in tests.

    Args:
        ntk_train: (n, n) PSD kernel. y_train: (n,) or (n, C). l2: $\\lambda > 0$ (or 0 for a
        positive-definite kernel). ntk_test_train: optional (m, n).

    Returns:
        $f_*$ on the training set, shape (n, C), or on the test points (m, C) if `ntk_test_train` is given.
    """
    warn_if_float32(
        "l2_homogeneous.fixed_point",
        "the k = 1 fixed point is accurate to ~1e-6 relative, worse for ill-conditioned kernels",
    )
    check_range("l2", l2, low=0.0, meaning="L2 coefficient lambda >= 0")
    check_psd_kernel("ntk_train", ntk_train)
    ntk_train = jnp.asarray(ntk_train, dtype=float)
    n = ntk_train.shape[0]
    y = _as_2d("y_train", y_train, n)
    kernel_value = concrete(ntk_train)
    if kernel_value is not None and concrete(l2) is not None and float(l2) == 0.0:
        eigs = np.linalg.eigvalsh(kernel_value)
        if eigs[0] <= n * np.finfo(float).eps * eigs[-1]:
            raise ValueError(
                "`l2`=0 needs a positive-definite `ntk_train`, but its smallest eigenvalue is "
                f"{eigs[0]:.3g} (largest {eigs[-1]:.3g}): the fixed point is not unique. Use l2 > 0."
            )
    alpha = jnp.linalg.solve(ntk_train + l2 * jnp.eye(n), y)
    if ntk_test_train is None:
        return ntk_train @ alpha
    check_shape("ntk_test_train", ntk_test_train, (None, n), other=f"the training set's n={n}")
    return jnp.asarray(ntk_test_train, dtype=float) @ alpha


def training_loss(ts, ntk_train, y_train, f0_train, *, l2, k):
    """Training loss without the L2 term, $\\frac12\\sum_i (f_t(x_i) - y_i)^2$, from eq. 3; shape (T,)."""
    sol = mse_solution(ts, ntk_train, y_train, f0_train, l2=l2, k=k)
    y = _as_2d("y_train", y_train, sol.f_train.shape[1])
    return 0.5 * jnp.sum((sol.f_train - y[None]) ** 2, axis=(1, 2))


def _mode_loss_and_slope(t, gamma, y_m, f0_m, l2, k):
    decay, excess, b = _coefficients(t, gamma, l2, k)
    f = (decay + excess)[:, None] * f0_m + b[:, None] * y_m
    c = 2.0 * (k - 1.0) * l2
    fdot = -gamma[:, None] * jnp.exp(-c * t) * (f - y_m) - k * l2 * f  # eq. 1 per mode
    return 0.5 * jnp.sum((f - y_m) ** 2), jnp.sum((f - y_m) * fdot)


def loss_minimum_time(ntk_train, y_train, f0_train, *, l2, k, grid=512, bisections=80):
    """Time $t^*$ of the minimum of the training loss (no L2 term) predicted by eq. 3.

    For $k > 1$ the loss first falls (modes with $\\gamma_a \\gg \\lambda$ learn at $t\\sim 1/\\gamma_a$)
    and then rises as every mode decays at $t \\sim 1/\\lambda$ (L2 paper, Sec. 4). $t^* \\propto 1/\\lambda$
    (what `optimal_l2` assumes) holds only when the label mass sits in modes with $\\gamma_a \\lesssim
    \\lambda$: for one mode from $f_0 = 0$ at k = 2, $\\lambda t^* \\approx 0.50$ for $\\gamma \\le \\lambda$ but
    0.080, 0.0125, 0.0017 at $\\gamma/\\lambda$ = 1e2, 1e3, 1e4 (docs/theory_l2.md).
    Found on a log-spaced grid from $10^{-3}/\\gamma_{max}$ to $50/(k\\lambda)$, then refined by
    bisection on the sign of $dL/dt = \\sum_a (f_a - y_a)\\dot f_a$ (exact, from eq. 1).
    Returns inf when the loss decreases on the whole grid (k = 1 or no L2).
    """
    warn_if_float32(
        "l2_homogeneous.loss_minimum_time", "the loss-minimum time is located to ~1e-4 relative instead of 1e-10"
    )
    _check_l2_k(l2, k)
    if concrete(k) is not None and float(concrete(k)) == 0.0:
        raise ValueError("`k` = 0 has no loss minimum: every mode decays monotonically (the kernel grows as e^{2λt})")
    check_range("l2", l2, low=0.0, low_open=True, meaning="a loss minimum needs lambda > 0")
    grid = check_int("grid", grid, low=3, meaning="log-spaced search points")
    bisections = check_int("bisections", bisections, low=0)
    check_psd_kernel("ntk_train", ntk_train)
    ntk_train = jnp.asarray(ntk_train, dtype=float)
    n = ntk_train.shape[0]
    y = _as_2d("y_train", y_train, n)
    f0 = _as_2d("f0_train", f0_train, n)
    return _loss_minimum_time(
        ntk_train, y, f0, jnp.asarray(l2, dtype=float), jnp.asarray(k, dtype=float), grid, bisections
    )


@partial(jax.jit, static_argnums=(5, 6))
def _loss_minimum_time(ntk_train, y, f0, l2, k, grid, bisections):
    gamma, vecs = jnp.linalg.eigh(ntk_train)
    gamma = jnp.clip(gamma, 0.0)
    y_m, f0_m = vecs.T @ y, vecs.T @ f0
    t_grid = jnp.geomspace(1e-3 / jnp.max(gamma), 50.0 / (k * l2), grid)
    losses, _ = jax.vmap(lambda t: _mode_loss_and_slope(t, gamma, y_m, f0_m, l2, k))(t_grid)
    i = jnp.argmin(losses)
    lo, hi = t_grid[jnp.maximum(i - 1, 0)], t_grid[jnp.minimum(i + 1, grid - 1)]

    def bisect(_, bracket):
        lo, hi = bracket
        mid = jnp.sqrt(lo * hi)
        slope = _mode_loss_and_slope(mid, gamma, y_m, f0_m, l2, k)[1]
        return jnp.where(slope > 0, lo, mid), jnp.where(slope > 0, mid, hi)

    lo, hi = jax.lax.fori_loop(0, bisections, bisect, (lo, hi))
    # a minimum only if the loss rises again by more than round-off before the end of the grid
    interior = losses[i] < losses[-1] * (1.0 - 1e-9)
    return jnp.where(interior, jnp.sqrt(lo * hi), jnp.inf)


def optimal_l2(time_budget, *, c):
    """Predicted best L2 coefficient for a training time budget T: $\\lambda_{pred} = c / T$ (L2 paper, Sec. 3 "Optimal L2", where t* is the time of peak test accuracy).

    `c` $= \\lambda t^*$ is measured once (from one run, or from `loss_minimum_time` * l2), since the
    time to peak performance scales as $1/\\lambda$. The paper's WRN-28-10 value is c ≈ 0.0066
    (epochs). `time_budget` and `c` must be in the same time units.
    """
    check_range("time_budget", time_budget, low=0.0, low_open=True)
    check_range("c", c, low=0.0, low_open=True)
    return jnp.asarray(c, dtype=float) / jnp.asarray(time_budget, dtype=float)
