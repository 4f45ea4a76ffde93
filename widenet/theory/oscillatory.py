"""Linearised (NTK-regime) dynamics under time-dependent (dynamical) losses.

Spec: Ruiz-García, Zhang, Schoenholz, Liu, "Tilting the playing field: Dynamical loss functions
for machine learning" (shared/papers/dynamical-loss-functions-supplement.txt). The paper measures
its instability threshold; here it is predicted for a network in its linearised regime, where GD
in function space reads $f_{t+1} = f_t - \\eta\\,\\Theta\\,\\nabla_f F_t(f_t)$ with $F_t$ the loss at step t.

Kernels: an (n, n) kernel means $\\Theta\\otimes I_C$ (outputs traced out, the infinite-width form);
an (n, n, C, C) kernel is the full output kernel $\\Theta_{ij}^{cd} = \\nabla f_c(x_i)\\cdot\\nabla f_d(x_j)$,
with which the linearised network's function-space dynamics are exact.
"""

import jax
import jax.numpy as jnp
import numpy as np

from .. import losses
from .._checks import check_psd_kernel, check_range, check_shape

__all__ = [
    "floquet_multipliers",
    "floquet_radius",
    "floquet_radius_grid",
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


def floquet_multipliers(kernel, weights, *, learning_rate):
    """Eigenvalues of the one-period map of the weighted-MSE residual (linearised GD).

    For $F_t = \\sum_i w_{t,i}\\frac12(f_i - y_i)^2$ the residual obeys $r_{t+1} = (I - \\eta\\Theta W_t) r_t$,
    $W_t = \\mathrm{diag}(w_t)$, exactly linear with period-T coefficients; by Floquet theory its
    stability is decided by the multipliers, the eigenvalues of
    $M = \\prod_{t=T-1}^{0}(I - \\eta\\Theta W_t)$ (later steps on the left): stable iff all $|\\mu| < 1$.

    Args:
        kernel: (n, n) PSD kernel Θ (the same for every output).
        weights: (T, n) per-sample weights over one period, e.g. `class_weights(...)[..., labels]`.
        learning_rate: η > 0.

    Returns:
        (n,) complex multipliers, sorted by decreasing modulus.
    """
    check_psd_kernel("kernel", kernel)
    kernel = jnp.asarray(kernel, dtype=float)
    n = kernel.shape[0]
    weights = jnp.asarray(weights, dtype=float)
    check_shape("weights", weights, (None, n), other=f"(period, n) with the kernel's n={n}")
    check_range("weights", weights, low=0.0, meaning="loss weights are >= 0")
    check_range("learning_rate", learning_rate, low=0.0, low_open=True)
    mu = jnp.linalg.eigvals(_period_map(kernel, weights, learning_rate))
    return mu[jnp.argsort(-jnp.abs(mu))]


def _period_map(kernel, weights, learning_rate):
    n = kernel.shape[0]

    def step(m, w):
        return m - learning_rate * (kernel * w[None, :]) @ m, None

    m, _ = jax.lax.scan(step, jnp.eye(n), weights)
    return m


def floquet_radius(kernel, weights, *, learning_rate):
    """Largest Floquet multiplier modulus: < 1 stable, > 1 unstable (see `floquet_multipliers`).

    Jittable and vmappable over `weights` and `learning_rate` (no input checks under tracing)."""
    kernel = jnp.asarray(kernel, dtype=float)
    return jnp.max(jnp.abs(jnp.linalg.eigvals(_period_map(kernel, jnp.asarray(weights, dtype=float), learning_rate))))


def floquet_radius_grid(kernel, labels, *, n_classes, periods, amplitudes, learning_rates, shape="triangle"):
    """Floquet radius of weighted-MSE linearised GD over a (period, amplitude, η) grid.

    For each period T the weights are the class-weight schedule over one full cycle (C·T steps,
    classes taking turns) indexed by `labels`; amplitudes and learning rates are vmapped (one
    compile per period). The stability boundary is the level set radius = 1.

    Returns:
        (len(periods), len(amplitudes), len(learning_rates)) array of radii.
    """
    from ..schedules import class_weights

    check_psd_kernel("kernel", kernel)
    kernel = jnp.asarray(kernel, dtype=float)
    labels = jnp.asarray(labels)
    check_shape("labels", labels, (kernel.shape[0],), other=f"the kernel's n={kernel.shape[0]}")
    for a in amplitudes:
        check_range("amplitudes", a, low=1.0)
    for lr in learning_rates:
        check_range("learning_rates", lr, low=0.0, low_open=True)
    out = []
    for period in periods:
        check_range("periods", period, low=2)
        steps = jnp.arange(n_classes * int(period))

        def radius(amplitude, lr, period=period, steps=steps):
            w = class_weights(steps, n_classes=n_classes, period=period, amplitude=amplitude, shape=shape)[:, labels]
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
    y = jnp.asarray(y, dtype=float)

    def step(f, w):
        f = f - learning_rate * _apply(full, losses.output_gradient(loss, f, y, w))
        return f, f

    _, fs = jax.lax.scan(step, f0, jnp.asarray(weights, dtype=float))
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
    n, c = f.shape
    full = _as_full(kernel, c).transpose(0, 2, 1, 3).reshape(n * c, n * c)
    vals, vecs = jnp.linalg.eigh(full)
    root = (vecs * jnp.sqrt(jnp.clip(vals, 0.0))[None, :]) @ vecs.T
    blocks = _logit_hessian(f, jnp.asarray(weights, dtype=float))  # (n, C, C)
    hessian = jnp.zeros((n, c, n, c)).at[jnp.arange(n), :, jnp.arange(n), :].set(blocks).reshape(n * c, n * c)
    return jnp.linalg.eigvalsh(root @ hessian @ root)[-1]


def instability_intervals(sharpness, *, learning_rate):
    """Steps where linearised GD is predicted unstable ($\\eta\\lambda_{max} > 2$), as (start, end) pairs."""
    u = (learning_rate * np.asarray(sharpness) > 2.0).astype(int)
    edges = np.diff(np.concatenate([[0], u, [0]]))
    return list(zip(np.where(edges == 1)[0].tolist(), (np.where(edges == -1)[0]).tolist()))
