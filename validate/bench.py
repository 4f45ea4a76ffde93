"""Benchmark: closed-form eq. 3 against ODE integration of the same modes, 1000 modes x 1000 times.

    python -m validate.bench

Both routes run in this one process (timed after compilation, best of a few) and are scored
against the same reference, an mpmath quadrature of eq. 3 on a sample of modes and times, so each
ratio compares the methods at the accuracy each actually reached. Two regimes:

* the issue's range γ/λ in [1e-3, 1e6]: stiff (γ t up to 3e7), so the ODE needs an implicit solver
  (diffrax Kvaerno5, vmapped over modes so that each mode has its own step size);
* a non-stiff range γ/λ in [1e-3, 1e2], where an explicit solver (Dopri8) on the whole vector of
  modes takes few, cheap steps. There the ODE is faster, and the closed form is still ~1e4 times
  more accurate. Use the closed form for accuracy, stiffness and gradients; either for speed when
  the spectrum is narrow.
"""

import time

import jax
import numpy as np


def _timed(fn, repeats=2):
    jax.block_until_ready(fn())  # compile
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - start)
    return best


def _regime(name, gammas, ts, ode_fn, closed_fn, reference, y, f0):
    t_closed, t_ode = _timed(closed_fn), _timed(ode_fn, repeats=1)
    rows, cols = np.linspace(0, len(ts) - 1, 6).astype(int), np.linspace(0, len(gammas) - 1, 6).astype(int)
    ref = np.array([[reference(float(ts[i]), float(gammas[j])) for j in cols] for i in rows])
    err_closed = np.abs(np.asarray(closed_fn())[np.ix_(rows, cols)] - ref).max()
    err_ode = np.abs(np.asarray(ode_fn())[np.ix_(rows, cols)] - ref).max()
    print(name)
    print(f"  closed form (eq. 3, jit)  {t_closed * 1e3:10.1f} ms   max abs error vs mpmath {err_closed:.1e}")
    print(f"  ODE                       {t_ode * 1e3:10.1f} ms   max abs error vs mpmath {err_ode:.1e}")
    print(f"  time ODE / closed form:   {t_ode / t_closed:10.2f}")
    return t_ode / t_closed


def main(n_modes=1000, n_times=1000, l2=0.01, k=2.0):
    jax.config.update("jax_enable_x64", True)
    import diffrax
    import jax.numpy as jnp

    from tests.theory.test_l2_homogeneous import _eq3_quadrature
    from widenet.theory import l2_homogeneous as l2h

    y, f0 = 1.0, 0.3
    ts = jnp.linspace(0.0, 30.0 / l2, n_times)
    reference = lambda t, g: _eq3_quadrature(t, g, y, f0, l2, k)  # noqa: E731

    def field(gamma):
        return diffrax.ODETerm(lambda t, f, _: -gamma * jnp.exp(-2 * (k - 1) * l2 * t) * (f - y) - k * l2 * f)

    def solve(gamma, solver, y0, rtol, atol):
        return diffrax.diffeqsolve(
            field(gamma), solver, t0=0.0, t1=ts[-1], dt0=None, y0=y0, saveat=diffrax.SaveAt(ts=ts),
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol), max_steps=1_000_000,
        ).ys  # fmt: skip

    print(f"{n_modes} modes x {n_times} times, k = {k}, λ = {l2}, t in [0, 30/λ]")
    stiff = jnp.geomspace(1e-3, 1e6, n_modes) * l2
    ratio_stiff = _regime(
        "γ/λ in [1e-3, 1e6] (stiff; ODE: Kvaerno5 per mode, vmapped, rtol 1e-10)",
        stiff, ts,
        jax.jit(lambda: jax.vmap(lambda g: solve(g, diffrax.Kvaerno5(), jnp.asarray(f0), 1e-10, 1e-12), out_axes=1)(stiff)),
        jax.jit(lambda: l2h.mode_solution(ts, stiff, y, f0, l2=l2, k=k)), reference, y, f0,
    )  # fmt: skip
    narrow = jnp.geomspace(1e-3, 1e2, n_modes) * l2
    ratio_narrow = _regime(
        "γ/λ in [1e-3, 1e2] (non-stiff; ODE: Dopri8 on the vector of modes, rtol 1e-12)",
        narrow, ts,
        jax.jit(lambda: solve(narrow, diffrax.Dopri8(), jnp.full(n_modes, f0), 1e-12, 1e-14)),
        jax.jit(lambda: l2h.mode_solution(ts, narrow, y, f0, l2=l2, k=k)), reference, y, f0,
    )  # fmt: skip
    return ratio_stiff, ratio_narrow


if __name__ == "__main__":
    main()
