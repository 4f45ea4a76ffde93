"""Function-space gradient flow of eq. 1 (L2 paper) for any loss, integrated with diffrax.

$$ \\frac{df_t(x)}{dt} = -e^{-2(k-1)\\Lambda(t)}\\sum_{x' \\in S}\\Theta_0(x, x')\\,\\frac{\\partial L}{\\partial f_t(x')}
   - k\\lambda(t) f_t(x), \\qquad \\Lambda(t) = \\int_{t_0}^t \\lambda(s)\\,ds, $$

for train and test points alike, where $L$ is any loss of `widenet.losses` (sum over samples,
optional per-sample weights), from $t_0$ = ts[0], where $\\Theta_0$ and $f_0$ are taken (t_0 = 0 in the
paper). With a constant λ, $\\Lambda = \\lambda (t - t_0)$ and this is eq. 1; for MSE
it is the ODE whose closed-form solution is eq. 3 (`l2_homogeneous.mse_solution`); the two agree to
1e-10 (tests/theory/test_ode.py). A time-dependent λ(t) (an L2 schedule) follows from the same
derivation (docs/theory_l2.md, "L2 schedules"): the parameters shrink by $e^{-\\Lambda(t)}$, so the
kernel of a k-homogeneous network by $e^{-2(k-1)\\Lambda(t)}$, and Euler's theorem gives the
$-k\\lambda(t)f$ term.
"""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from .. import losses
from .._checks import check_degree, check_psd_kernel, check_range, check_shape, concrete, warn_if_float32
from .solution import FunctionSpaceSolution

__all__ = ["function_space_ode"]


def function_space_ode(
    ts,
    ntk_train,
    y_train,
    f0_train,
    *,
    l2,
    k,
    loss="mse",
    weights=None,
    ntk_test_train=None,
    f0_test=None,
    rtol=1e-12,
    atol=1e-14,
    solver=None,
    max_steps=1_000_000,
):
    """Integrate eq. 1 in float64 from the network's real initial outputs.

    Args:
        ts: (T,) increasing save times, ts[0] the start.
        ntk_train: (n, n) PSD kernel $\\Theta_0(X, X)$ (outputs traced out, shared by all outputs).
        y_train: (n, C) targets (one-hot for cross-entropy); f0_train: (n, C) initial outputs.
        l2: $\\lambda \\ge 0$, or a function `t -> λ(t) >= 0` of gradient-flow time (an L2 schedule;
            jittable; e.g. `lambda t: sched(jnp.floor(t / eta))` for a schedule in steps at rate η);
            then $\\Lambda(t) = \\int_{t_0}^t\\lambda$ with $t_0$ = ts[0], where Θ0 and f0 are taken.
        k: degree of homogeneity: $\\ge 1$, or 0 (a scale-invariant network; the kernel grows as $e^{2\\Lambda}$).
        loss: "mse" or "cross_entropy". weights: optional (n,) per-sample loss weights.
        ntk_test_train: optional (m, n) kernel; f0_test: (m, C) initial test outputs.
        rtol, atol: diffrax PID controller tolerances.
        solver: a diffrax solver (default `Dopri8`; pass `diffrax.Kvaerno5()` for stiff kernels).

    Returns:
        `FunctionSpaceSolution`; `success` is False if the solver failed (never raises under vmap).
    """
    warn_if_float32("ode.function_space_ode", "the ODE cannot reach tolerances below ~1e-6")
    check_range("rtol", rtol, low=0.0, low_open=True)
    check_range("atol", atol, low=0.0, low_open=True)
    if not jax.config.jax_enable_x64 and rtol < 1e-6:
        raise ValueError(
            f"`rtol`={rtol:g} is below float32's resolution (jax_enable_x64 is off): the solver would fail "
            "with infinities. Enable float64, or pass rtol >= 1e-6."
        )
    if callable(l2):
        l2_fn = l2
        times = concrete(ts)
        if times is not None:  # the schedule's sign at the save times (skipped under tracing)
            values = np.array([float(l2_fn(jnp.asarray(t, dtype=float))) for t in np.atleast_1d(times)])
            check_range("l2", values, low=0.0, meaning="an L2 schedule λ(t) >= 0 at every save time")
    else:
        check_range("l2", l2, low=0.0, meaning="L2 coefficient lambda >= 0")
        l2_fn = None
    check_degree("k", k)
    check_psd_kernel("ntk_train", ntk_train)
    ntk_train = jnp.asarray(ntk_train, dtype=float)
    n = ntk_train.shape[0]
    y = jnp.asarray(y_train, dtype=float)
    f0 = jnp.asarray(f0_train, dtype=float)
    y = y[:, None] if y.ndim == 1 else y
    f0 = f0[:, None] if f0.ndim == 1 else f0
    check_shape("y_train", y, (n, None), other=f"the kernel's n={n}")
    check_shape("f0_train", f0, y.shape, other="y_train")
    if weights is not None:
        check_shape("weights", weights, (n,), other=f"the kernel's n={n}")
    losses.get(loss)
    has_test = ntk_test_train is not None
    if has_test:
        if f0_test is None:
            raise ValueError("`f0_test` is required with `ntk_test_train`")
        ntk_xt = jnp.asarray(ntk_test_train, dtype=float)
        check_shape("ntk_test_train", ntk_xt, (None, n), other=f"the training set's n={n}")
        fx0 = jnp.asarray(f0_test, dtype=float)
        fx0 = fx0[:, None] if fx0.ndim == 1 else fx0
        check_shape("f0_test", fx0, (ntk_xt.shape[0], y.shape[1]), other="ntk_test_train and y_train")
    else:
        ntk_xt = jnp.zeros((0, n))
        fx0 = jnp.zeros((0, y.shape[1]))
    check_range("ts", ts, meaning="finite save times")
    ts = jnp.asarray(ts, dtype=float)
    if ts.ndim != 1 or ts.shape[0] < 1:
        raise ValueError(f"`ts` must be a 1-D array of save times; got shape {ts.shape}")
    times = concrete(ts)
    if times is not None and np.any(np.diff(times) <= 0):
        raise ValueError(
            f"`ts` must be strictly increasing; it decreases or repeats at index {int(np.argmax(np.diff(times) <= 0)) + 1}"
        )
    def vector_field(t, state, args):
        f, fx, shrink = state  # shrink = Λ(t) - Λ(ts[0]): the integrated L2 coefficient
        lam = l2 if l2_fn is None else l2_fn(t)
        g = losses.output_gradient(loss, f, y, weights)
        scale = jnp.exp(-2.0 * (k - 1.0) * (lam * (t - ts[0]) if l2_fn is None else shrink))
        return (-scale * ntk_train @ g - k * lam * f, -scale * ntk_xt @ g - k * lam * fx, jnp.asarray(lam, dtype=float))

    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(vector_field),
        solver or diffrax.Dopri8(),
        t0=ts[0],
        t1=ts[-1],
        dt0=None,
        y0=(f0, fx0, jnp.zeros(())),
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=max_steps,
        throw=False,
    )
    f_train, f_test, _ = sol.ys
    return FunctionSpaceSolution(
        ts=ts, f_train=f_train, f_test=f_test if has_test else None, success=sol.result == diffrax.RESULTS.successful
    )
