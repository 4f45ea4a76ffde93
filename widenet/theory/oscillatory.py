"""Linearised (NTK-regime) dynamics under time-dependent (dynamical) losses.

Spec: Ruiz-García, Zhang, Schoenholz, Liu, "Tilting the playing field: Dynamical loss functions
for machine learning" (shared/papers/dynamical-loss-functions-supplement.txt). The paper measures
its instability threshold; here it is predicted for a network in its linearised regime, where GD
in function space reads $f_{t+1} = f_t - \\eta\\,\\Theta\\,\\nabla_f F_t(f_t)$ with $F_t$ the loss at step t.

Kernels: an (n, n) kernel means $\\Theta\\otimes I_C$ (outputs traced out, the infinite-width form);
an (n, n, C, C) kernel is the full output kernel $\\Theta_{ij}^{cd} = \\nabla f_c(x_i)\\cdot\\nabla f_d(x_j)$,
with which the linearised network's function-space dynamics are exact.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .. import losses
from .._checks import check_int, check_labels, check_psd_kernel, check_range, check_shape, warn_if_float32

__all__ = [
    "cycle_weights",
    "floquet_multipliers",
    "floquet_radius",
    "floquet_stable",
    "floquet_radius_grid",
    "stability_boundary",
    "transient_amplification",
    "function_space_gd",
    "gauss_newton_sharpness",
    "instability_intervals",
]


def _as_full(kernel, n_outputs):
    """(n, n) -> (n, n, C, C) with Θ ⊗ I_C; (n, n, C, C) unchanged."""
    kernel = jnp.asarray(kernel, dtype=float)
    if kernel.ndim == 2:
        return kernel[:, :, None, None] * jnp.eye(n_outputs)[None, None]
    return kernel


def _apply(kernel_full, g):
    """$(\\Theta g)_{ic} = \\sum_{jd}\\Theta_{ij}^{cd} g_{jd}$."""
    return jnp.einsum("ijcd,jd->ic", kernel_full, g)


_UNSTABLE_SLACK = 1e-9  # radius > 1 + this counts as unstable (slow modes sit within rounding of 1)
_SCAN_BLOCK = 16  # learning rates per compiled call in `stability_boundary`'s scan


def _residual_operator(kernel, weights):
    """The residual map's pieces: an (n, n) kernel acts on each output alone (dimension n); an
    (n, n, C, C) kernel on the flattened (n·C) residual, each sample's weight repeated over its outputs."""
    kernel = jnp.asarray(kernel, dtype=float)
    weights = jnp.asarray(weights, dtype=float)
    if kernel.ndim == 4:
        n, _, c, _ = kernel.shape
        return kernel.transpose(0, 2, 1, 3).reshape(n * c, n * c), jnp.repeat(weights, c, axis=-1)
    return kernel, weights


def _check_periodic(kernel, weights, learning_rate=None):
    """ValueErrors for the Floquet functions' inputs (skipped under tracing)."""
    kernel = jnp.asarray(kernel, dtype=float)
    if kernel.ndim == 4:
        n, c = kernel.shape[0], kernel.shape[2]
        check_shape("kernel", kernel, (n, n, c, c), other="(n, n, C, C)")
        check_psd_kernel("kernel", kernel.transpose(0, 2, 1, 3).reshape(n * c, n * c))
    else:
        check_psd_kernel("kernel", kernel)
    n = kernel.shape[0]
    check_shape("weights", weights, (None, n), other=f"(period, n) with the kernel's n={n}")
    check_range("weights", weights, low=0.0, meaning="loss weights are >= 0")
    if learning_rate is not None:
        check_range("learning_rate", learning_rate, low=0.0, low_open=True)


def cycle_weights(labels, *, n_classes, period, amplitude, shape="triangle"):
    """Per-sample weights of `schedules.class_weights` over one full cycle: (C·T, n).

    Classes take turns, one period T each, so the weights repeat after C·T steps, not T: the
    Floquet functions need this whole cycle. One period alone describes a different schedule (the
    first class emphasised forever) and gives a different η*, silently; build the weights here.

    Args:
        labels: (n,) integer classes of the training points. n_classes: C >= 2. period: T >= 2
            steps. amplitude: A >= 1. shape: as `schedules.class_weights`.

    Returns:
        (C·T, n) weights $\\Gamma_{y_i}(s)$ for steps s = 0, ..., C·T - 1.
    """
    from ..schedules import class_weights

    n_classes = check_int("n_classes", n_classes, low=2)
    period = check_int("period", period, low=2, meaning="steps per period")
    labels = jnp.asarray(check_labels("labels", labels, n_classes))
    steps = jnp.arange(n_classes * period)
    return class_weights(steps, n_classes=n_classes, period=period, amplitude=amplitude, shape=shape)[:, labels]


def floquet_multipliers(kernel, weights, *, learning_rate):
    """Eigenvalues of the one-period map of the weighted-MSE residual (linearised GD).

    For $F_t = \\sum_i w_{t,i}\\frac12\\|f_i - y_i\\|^2$ the residual obeys $r_{t+1} = (I - \\eta\\Theta W_t) r_t$,
    $W_t = \\mathrm{diag}(w_t)$, exactly linear with period-T coefficients; by Floquet theory its
    stability is decided by the multipliers, the eigenvalues of
    $M = \\prod_{t=T-1}^{0}(I - \\eta\\Theta W_t)$ (later steps on the left): stable iff all $|\\mu| < 1$.

    Args:
        kernel: (n, n) PSD kernel Θ (the same for every output, the infinite-width form), or the full
            (n, n, C, C) output kernel of a finite network (`networks.empirical_ntk_full`), with which
            the multipliers are exact for its linearisation.
        weights: (S, n) per-sample weights over the whole cycle after which they repeat, S steps: for
            class weights that is C·T steps, every class emphasised once (`cycle_weights`), not
            one period T.
        learning_rate: η > 0.

    Returns:
        (n,) or (n·C,) complex multipliers, sorted by decreasing modulus.
    """
    warn_if_float32(
        "oscillatory.floquet_multipliers",
        "Floquet multipliers carry ~1e-6 relative error, so radii within ~1e-5 of 1 are undecided",
    )
    _check_periodic(kernel, weights, learning_rate)
    mu = jnp.linalg.eigvals(_period_map(*_residual_operator(kernel, weights), learning_rate))
    return mu[jnp.argsort(-jnp.abs(mu))]


def _period_map(matrix, weights, learning_rate):
    def step(m, w):
        return m - learning_rate * (matrix * w[None, :]) @ m, None

    m, _ = jax.lax.scan(step, jnp.eye(matrix.shape[0]), weights)
    return m


def floquet_radius(kernel, weights, *, learning_rate):
    """Largest Floquet multiplier modulus: < 1 stable, > 1 unstable (see `floquet_multipliers`).

    Kernel modes with eigenvalue ~0 (or samples with weight 0) are neutral: their multiplier is 1 to
    rounding, so a stable map can report 1 + 2e-15. Use `floquet_stable` (radius <= 1 + tol) for a
    verdict. Jittable and vmappable over `weights` and `learning_rate` (no input checks under tracing)."""
    warn_if_float32(
        "oscillatory.floquet_radius",
        "Floquet multipliers carry ~1e-6 relative error, so radii within ~1e-5 of 1 are undecided",
    )
    _check_periodic(kernel, weights, learning_rate)
    m = _period_map(*_residual_operator(kernel, weights), learning_rate)
    return jnp.max(jnp.abs(jnp.linalg.eigvals(m)))


def floquet_stable(kernel, weights, *, learning_rate, tol=_UNSTABLE_SLACK):
    """True when linearised weighted-MSE GD is stable: Floquet radius <= 1 + `tol` (neutral modes,
    whose multiplier is 1 to rounding, count as stable; see `floquet_radius`). The same criterion
    `stability_boundary` uses."""
    check_range("tol", tol, low=0.0, high=1e-3, meaning="a rounding allowance above radius 1")
    return bool(floquet_radius(kernel, weights, learning_rate=learning_rate) <= 1.0 + tol)


@jax.jit
def _radii(kernel, weights, etas):
    """Floquet radii at several learning rates; compiled once per shape, not once per call."""
    return jax.vmap(lambda eta: floquet_radius(kernel, weights, learning_rate=eta))(etas)


def stability_boundary(kernel, weights, *, eta_max, grid=64, rtol=1e-10):
    """The critical learning rate $\\eta^*$: the smallest η at which the Floquet radius exceeds 1.

    Weighted MSE under periodic weights is stable for $\\eta < \\eta^*$ (all $|\\mu| < 1$, see
    `floquet_multipliers`); with constant weights 1, $\\eta^* = 2/\\lambda_{max}(\\Theta)$. Class
    emphasis moves it both ways: a slow period lets the emphasised majority class grow the residual
    for many steps ($\\eta^* < 2/\\lambda_{max}$), a fast one averages the weights and can stabilise
    GD beyond $2/\\lambda_{max}$. Found by scanning `grid` equally spaced η in (0, eta_max] from
    below (in blocks of 16, stopping at the first block with an unstable point) and bisecting the
    first unstable interval to `rtol`; an unstable window narrower than the scan's spacing can be
    missed. Unstable means radius > 1 + 1e-9 (slow kernel modes give radii within rounding of 1).

    Args:
        kernel, weights: as `floquet_multipliers` (weights over the whole cycle: `cycle_weights`).
        eta_max: upper end of the search. grid: scan points. rtol: tolerance relative to η*.

    Returns:
        η* as a float, or inf if the dynamics are stable up to `eta_max`.
    """
    warn_if_float32("oscillatory.stability_boundary", "the boundary is located to ~1e-5 relative at best")
    _check_periodic(kernel, weights)
    check_range("eta_max", eta_max, low=0.0, low_open=True, meaning="a finite upper end of the search")
    check_int("grid", grid, low=2)
    # the bisection stops at rtol·η*; below a few ulps it could not shrink the bracket any more
    check_range("rtol", rtol, low=4 * np.finfo(float).eps, high=1.0, high_open=True)
    kernel, weights = jnp.asarray(kernel, dtype=float), jnp.asarray(weights, dtype=float)
    etas = eta_max * np.arange(1, grid + 1) / grid
    for start in range(0, grid, _SCAN_BLOCK):  # one compiled block shape; stop at the first unstable point
        block = etas[start : start + _SCAN_BLOCK]
        padded = np.pad(block, (0, _SCAN_BLOCK - block.size), mode="edge")
        unstable = np.asarray(_radii(kernel, weights, jnp.asarray(padded)))[: block.size] > 1.0 + _UNSTABLE_SLACK
        if unstable.any():
            break
    else:
        return float("inf")
    k = start + int(np.argmax(unstable))
    low, high = (0.0 if k == 0 else float(etas[k - 1])), float(etas[k])
    # bisection, not a secant method: below η* the neutral modes hold the radius at 1 (a flat floor), so
    # the radius has a kink at η* that slows Brent's method to more steps than bisection (measured)
    for _ in range(200):  # 2^-200 is far below any admissible rtol: the loop always ends
        if high - low <= rtol * high:
            break
        mid = 0.5 * (low + high)
        if float(_radii(kernel, weights, jnp.asarray([mid]))[0]) > 1.0 + _UNSTABLE_SLACK:
            high = mid
        else:
            low = mid
    return 0.5 * (low + high)


def transient_amplification(kernel, weights, *, learning_rate):
    """$\\max_t\\|\\Phi_t\\|_2$, $\\Phi_t = \\prod_{s<t}(I - \\eta\\Theta W_s)$: the most the weighted-MSE residual
    can grow within the given steps, from any starting residual.

    The Floquet radius decides growth over many periods; this is the growth inside them. A slow
    period with a strongly emphasised majority class can amplify the residual by orders of magnitude
    mid-period and shrink it again later, so a finite network can be pushed into its non-linear
    (catapult) range although the period map contracts.

    Args:
        kernel: as `floquet_multipliers`. weights: (steps, n), e.g. one cycle (`cycle_weights`). learning_rate: η.

    Returns:
        the largest spectral norm of the partial products over the steps (>= 1, since $\\Phi_0 = I$).
    """
    warn_if_float32("oscillatory.transient_amplification", "amplifications carry ~1e-6 relative error")
    _check_periodic(kernel, weights, learning_rate)
    return _amplification(*_residual_operator(kernel, weights), learning_rate)


@jax.jit
def _amplification(matrix, weights, learning_rate):
    """`transient_amplification`'s scan, compiled once per shape rather than traced at every call."""

    def step(m, w):
        m = m - learning_rate * (matrix * w[None, :]) @ m
        return m, jnp.linalg.norm(m, ord=2)

    _, norms = jax.lax.scan(step, jnp.eye(matrix.shape[0]), weights)
    return jnp.maximum(1.0, jnp.max(norms))


def floquet_radius_grid(kernel, labels, *, n_classes, periods, amplitudes, learning_rates, shape="triangle"):
    """Floquet radius of weighted-MSE linearised GD over a (period, amplitude, η) grid.

    For each period T the weights are the class-weight schedule over one full cycle (C·T steps,
    classes taking turns) indexed by `labels`; amplitudes and learning rates are vmapped (one
    compile per period). The stability boundary is the level set radius = 1.

    Returns:
        (len(periods), len(amplitudes), len(learning_rates)) array of radii.
    """
    warn_if_float32(
        "oscillatory.floquet_radius_grid",
        "Floquet multipliers carry ~1e-6 relative error, so radii within ~1e-5 of 1 are undecided",
    )
    check_psd_kernel("kernel", kernel)
    kernel = jnp.asarray(kernel, dtype=float)
    n_classes = check_int("n_classes", n_classes, low=1)
    labels = jnp.asarray(check_labels("labels", labels, n_classes))
    check_shape("labels", labels, (kernel.shape[0],), other=f"the kernel's n={kernel.shape[0]}")
    for a in amplitudes:
        check_range("amplitudes", a, low=1.0)
    for lr in learning_rates:
        check_range("learning_rates", lr, low=0.0, low_open=True)
    out = []
    for period in periods:
        check_range("periods", period, low=2)

        def radius(amplitude, lr, period=int(period)):
            w = cycle_weights(labels, n_classes=n_classes, period=period, amplitude=amplitude, shape=shape)
            return floquet_radius(kernel, w, learning_rate=lr)

        grid = jax.vmap(lambda a: jax.vmap(lambda lr: radius(a, lr))(jnp.asarray(learning_rates, dtype=float)))
        out.append(jax.jit(grid)(jnp.asarray(amplitudes, dtype=float)))
    return jnp.stack(out)


def function_space_gd(kernel, f0, y, weights, *, learning_rate, loss="cross_entropy"):
    """Trajectory of linearised GD in function space under per-step weights (exact for the
    linearised network with its full output kernel):
    $f_{t+1} = f_t - \\eta\\,\\Theta\\,\\nabla_f F_t(f_t)$, $F_t = \\sum_i w_{t,i}\\,\\ell(f_i, y_i)$.

    Args:
        kernel: (n, n) or (n, n, C, C) kernel. f0, y: (n, C). weights: (steps, n).
        learning_rate: η. loss: "mse" or "cross_entropy".

    Returns:
        (steps + 1, n, C) outputs.
    """
    f0 = jnp.asarray(f0, dtype=float)
    n, c = f0.shape
    check_shape("y", y, (n, c), other="f0")
    check_shape("weights", weights, (None, n), other=f"(steps, n) with n={n}")
    full = _as_full(kernel, c)
    check_shape("kernel", full, (n, n, c, c), other="f0 (as (n, n) or (n, n, C, C))")
    return _gd_outputs(full, f0, jnp.asarray(y, dtype=float), jnp.asarray(weights, dtype=float), learning_rate, loss)


@functools.partial(jax.jit, static_argnums=5)
def _gd_outputs(full, f0, y, weights, learning_rate, loss):
    """`function_space_gd`'s scan, compiled once per shape and loss rather than traced at every call."""

    def step(f, w):
        f = f - learning_rate * _apply(full, losses.output_gradient(loss, f, y, w))
        return f, f

    _, fs = jax.lax.scan(step, f0, weights)
    return jnp.concatenate([f0[None], fs])


def _logit_hessian(f, w):
    """Per-sample Hessian of $w\\,(-\\log\\mathrm{softmax}(f)_y)$ in the logits: $w(\\mathrm{diag}(p) - pp^T)$."""
    p = jax.nn.softmax(f, axis=-1)
    return w[:, None, None] * (jax.vmap(jnp.diag)(p) - p[:, :, None] * p[:, None, :])


def gauss_newton_sharpness(kernel, f, weights):
    """$\\lambda_{max}(\\Theta^{1/2} H_\\ell\\,\\Theta^{1/2})$ for the weighted cross-entropy at logits f.

    $H_\\ell$ is the Hessian of $F = \\sum_i w_i\\,\\ell_{CE}(f_i)$ in the logits (block diagonal,
    $w_i(\\mathrm{diag}\\,p_i - p_ip_i^T)$); the product's top eigenvalue is the curvature that
    linearised GD sees, and $\\eta\\lambda_{max} > 2$ means the dynamics are locally unstable.

    Args:
        kernel: (n, n) or (n, n, C, C) PSD kernel. f: (n, C) logits. weights: (n,).

    Returns:
        scalar $\\lambda_{max}$.
    """
    f = jnp.asarray(f, dtype=float)
    check_shape("f", f, (None, None), other="(n, C) logits")
    n, c = f.shape
    check_shape("weights", weights, (n,), other=f"one weight per sample, n={n}")
    check_range("weights", weights, low=0.0)
    full = _as_full(kernel, c)
    check_shape("kernel", full, (n, n, c, c), other="f (as (n, n) or (n, n, C, C))")
    full = full.transpose(0, 2, 1, 3).reshape(n * c, n * c)
    vals, vecs = jnp.linalg.eigh(full)
    root = (vecs * jnp.sqrt(jnp.clip(vals, 0.0))[None, :]) @ vecs.T
    blocks = _logit_hessian(f, jnp.asarray(weights, dtype=float))  # (n, C, C)
    hessian = jnp.zeros((n, c, n, c)).at[jnp.arange(n), :, jnp.arange(n), :].set(blocks).reshape(n * c, n * c)
    return jnp.linalg.eigvalsh(root @ hessian @ root)[-1]


def instability_intervals(sharpness, *, learning_rate):
    """Steps where linearised GD is predicted unstable ($\\eta\\lambda_{max} > 2$), as (start, end) pairs."""
    check_range("learning_rate", learning_rate, low=0.0, low_open=True)
    check_range("sharpness", sharpness, low=0.0, finite=False, meaning="NaN marks no measurement and is refused")
    u = (learning_rate * np.asarray(sharpness) > 2.0).astype(int)
    edges = np.diff(np.concatenate([[0], u, [0]]))
    return list(zip(np.where(edges == 1)[0].tolist(), (np.where(edges == -1)[0]).tolist()))
