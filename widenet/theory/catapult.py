"""Catapult dynamics: the exact uv-model map, neural quadratic models, critical learning rates,
and the split of the loss onto the top eigenvectors of the tangent kernel.

Spec: Zhu, Liu, Radhakrishnan, Belkin, "Spikes in the training loss, catapults and feature
learning" (shared/papers/catapults-spikes-feature-learning-slides.txt), and the catapult mechanism
of Lewkowycz et al. 2020, "The large learning rate phase of deep learning". Conventions
(docs/notation.md): the loss of the uv model is $\\frac12(f - y)^2$; kernels are tangent kernels
$K = J J^T$ of the loss's normalisation (see `critical_learning_rate`).
"""

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .. import _nt
from .._checks import check_int, check_psd_kernel, check_range, check_shape, concrete

__all__ = [
    "uv_map",
    "UVTrajectory",
    "uv_trajectory",
    "uv_phase",
    "uv_catapult_peak",
    "quadratic_model",
    "critical_learning_rate",
    "loss_decomposition",
    "measured_phase",
    "phase_edges",
    "PHASES",
]


def _check_uv(learning_rate, width):
    check_range("learning_rate", learning_rate, low=0.0, low_open=True)
    check_range("width", width, low=1.0, meaning="the uv model's width n >= 1")


def uv_map(f, lam, *, learning_rate, width, y=0.0, l2=0.0):
    """One exact GD step of the uv model $f = v^T u/\\sqrt n$ on $L = \\frac12(f - y)^2 + \\frac{\\lambda_2}{2}(|u|^2 + |v|^2)$ (input x = 1).

    With $r = f - y$, the tangent kernel $\\lambda = (|u|^2 + |v|^2)/n$ (Lewkowycz et al. 2020, Sec. 2;
    derivation in docs/theory_catapult.md and shared/papers/NOTES.md) and $a = 1 - \\eta\\lambda_2$ (the
    L2 shrinkage of one GD step, L2 paper eq. 1 discretised):
    $$ f' = a^2 f - a\\eta\\lambda r + \\frac{\\eta^2}{n} r^2 f, \\qquad
       \\lambda' = a^2\\lambda - \\frac{4a\\eta r f}{n} + \\frac{\\eta^2}{n} r^2\\lambda . $$
    Without L2 (a = 1) this is $\\lambda' = \\lambda + \\frac{\\eta r}{n}(\\eta\\lambda r - 4 f)$: the catapult; at
    infinite width it is the decay of eq. 2 with k = 2 ($\\lambda' = a^2\\lambda$). Exact: it equals plain GD
    on (u, v) to float precision (tests/theory/test_catapult.py), and its fixed point for y > 0 is SM
    B.1's $f = y - \\lambda_2\\sqrt n$ (`finite_width.linear_fixed_point`).

    Args:
        f: output(s). lam: tangent kernel(s) $\\lambda > 0$. learning_rate: $\\eta > 0$.
        width: $n \\ge 1$. y: target. l2: the L2 coefficient $\\lambda_2 \\ge 0$.

    Returns:
        (f_next, lam_next), broadcast shapes.
    """
    _check_uv(learning_rate, width)
    check_range("l2", l2, low=0.0, meaning="L2 coefficient >= 0")
    r = f - y
    eta, n = learning_rate, width
    a = 1.0 - eta * l2
    return (
        a**2 * f - a * eta * lam * r + (eta**2 / n) * r**2 * f,
        a**2 * lam - 4.0 * a * eta * r * f / n + (eta**2 / n) * r**2 * lam,
    )


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class UVTrajectory:
    """`f` and `lam` of length steps + 1 (frozen after divergence); `diverged_at` = step or -1."""

    f: jax.Array
    lam: jax.Array
    diverged_at: jax.Array


def uv_trajectory(f0, lam0, *, learning_rate, width, steps, y=0.0, l2=0.0, divergence=1e100):
    """Iterate `uv_map` (with L2 coefficient `l2`) for `steps` steps under `lax.scan` (jittable, vmappable over scalars).

    A run whose |f| or λ becomes non-finite or exceeds `divergence` is frozen and reported by
    `diverged_at` (the step at which it blew up), never raised.
    """
    _check_uv(learning_rate, width)
    check_int("steps", steps, low=1)

    def step(carry, s):
        f, lam, diverged_at = carry
        f_new, lam_new = uv_map(f, lam, learning_rate=learning_rate, width=width, y=y, l2=l2)
        bad = ~(jnp.isfinite(f_new) & jnp.isfinite(lam_new)) | (jnp.abs(f_new) > divergence) | (lam_new > divergence)
        diverged_at = jnp.where(bad & (diverged_at < 0), s + 1, diverged_at)
        stop = diverged_at >= 0
        f, lam = jnp.where(stop, f, f_new), jnp.where(stop, lam, lam_new)
        return (f, lam, diverged_at), (f, lam)

    f0, lam0 = jnp.asarray(f0, dtype=float), jnp.asarray(lam0, dtype=float)
    init = (f0, lam0, jnp.full(jnp.shape(f0), -1))
    (_, _, diverged_at), (fs, lams) = jax.lax.scan(step, init, jnp.arange(steps))
    return UVTrajectory(jnp.concatenate([f0[None], fs]), jnp.concatenate([lam0[None], lams]), diverged_at)


def uv_phase(lam0, *, learning_rate):
    """Phase of uv-model GD at large width with y = 0 (Lewkowycz et al. 2020, Sec. 2):
    "lazy" for $\\eta\\lambda_0 < 2$, "catapult" for $2 < \\eta\\lambda_0 < 4$ (λ ends below $2/\\eta$),
    "divergent" for $\\eta\\lambda_0 > 4$. Returns a string (or an array of strings)."""
    check_range("lam0", lam0, low=0.0, low_open=True)
    check_range("learning_rate", learning_rate, low=0.0, low_open=True)
    x = np.asarray(learning_rate) * np.asarray(lam0)
    phase = np.where(x < 2.0, "lazy", np.where(x < 4.0, "catapult", "divergent"))
    return phase.item() if phase.ndim == 0 else phase


def uv_catapult_peak(f0, lam0, *, learning_rate, width, y=0.0):
    """Leading-order prediction of the catapult's peak for $2 < \\eta\\lambda_0 < 4$ (y = 0).

    While $f^2 \\ll n$, λ stays at $\\lambda_0$ and $|f|$ grows by $|1 - \\eta\\lambda_0|$ per step; growth
    stops when $1 - \\eta\\lambda + \\eta^2 f^2/n = -1$, i.e. at $f_{peak}^2 = n(\\eta\\lambda_0 - 2)/\\eta^2$,
    reached after $t_{peak} = \\log(|f_{peak}|/|f_0|)/\\log|1 - \\eta\\lambda_0|$ steps ($\\propto \\log n$).

    Returns:
        (t_peak, loss_peak) with loss_peak $= f_{peak}^2/2$.
    """
    _check_uv(learning_rate, width)
    x = learning_rate * lam0
    check_range(
        "learning_rate * lam0", x, low=2.0, high=4.0, low_open=True, high_open=True, meaning="the catapult window"
    )
    f_peak2 = width * (x - 2.0) / learning_rate**2
    t_peak = 0.5 * jnp.log(f_peak2 / (f0 - y) ** 2) / jnp.log(jnp.abs(1.0 - x))
    return t_peak, 0.5 * f_peak2


def quadratic_model(apply_fn, params0):
    """Neural quadratic model $f_0 + J\\Delta + \\frac12\\Delta^T H_f\\Delta$ of a network around `params0`.

    $H_f$ is the Hessian of the network *output* (not of the loss); the model is the second-order
    Taylor expansion in the parameters, built with nested jvp (`neural_tangents.taylor_expand`,
    never a dense Hessian). It has the network's signature `(params, x) -> f`, so the trainer
    trains it like a network; for a network that is itself quadratic in its parameters (the uv
    model, any 2-layer linear net) it equals the network exactly.
    """
    if not callable(apply_fn):
        raise TypeError(f"`apply_fn` must be callable (params, x) -> f; got {type(apply_fn).__name__}")
    return _nt.taylor_expand(apply_fn, params0, 2)


def _lambda_max(kernel):
    return jnp.linalg.eigvalsh(jnp.asarray(kernel, dtype=float))[..., -1]


def critical_learning_rate(kernel, *, reduction="sum"):
    """Critical GD learning rate of the linearised dynamics $R' = (I - \\eta K)R$ (slides, "Linear dynamics").

    $\\eta_{crit} = 2/\\lambda_{max}(K)$ for the loss $\\frac12\\sum_i (f_i - y_i)^2$ (`reduction="sum"`,
    widenet's convention) and $2n/\\lambda_{max}(K)$ for $\\frac12\\cdot$ mean (`reduction="mean"`),
    $K = J J^T$ the (n, n) tangent kernel. Applied to one minibatch's kernel $K_{BB}$ with the loss
    actually used on that batch it is the per-batch critical rate that decides SGD spikes (for
    widenet's SGD estimate $\\frac{n}{b}\\sum_{i\\in B}$ that is `reduction="sum"` times b/n).
    Batched kernels (..., n, n) give (...,) rates.
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"`reduction` must be 'sum' or 'mean'; got {reduction!r}")
    value = concrete(kernel)
    if value is not None:
        for i, k in enumerate(value.reshape((-1,) + value.shape[-2:])):
            check_psd_kernel("kernel" if value.ndim == 2 else f"kernel[{i}]", k)
    n = jnp.shape(kernel)[-1]
    scale = 2.0 if reduction == "sum" else 2.0 * n
    return scale / _lambda_max(kernel)


def loss_decomposition(kernel, residual, *, top, eigh=None):
    """Split the loss $\\frac1n\\|R\\|^2$ onto the top-`top` eigenvectors of the tangent kernel (slides,
    "Loss decomposition"): $PL_s = \\frac1n\\|P_s R\\|^2$, $PL_s^\\perp = \\frac1n\\|(I - P_s)R\\|^2$,
    $P_s$ the projector on the top-s eigenvectors of K; the two sum to the loss.

    Args:
        kernel: (n, n) PSD tangent kernel. residual: (n,) or (n, C) residual $F - Y$.
        top: s, 0 <= s <= n.
        eigh: optional `jnp.linalg.eigh(kernel)` (ascending values, vectors) the caller has already
            computed, e.g. because it also needs the eigenvalues; the decomposition then does no
            O(n³) work of its own.

    Returns:
        (top_part, rest).
    """
    check_psd_kernel("kernel", kernel)
    kernel = jnp.asarray(kernel, dtype=float)
    n = kernel.shape[0]
    check_range("top", top, low=0, high=n, meaning=f"the number of eigenvectors, at most n={n}")
    residual = jnp.asarray(residual, dtype=float)
    residual = residual[:, None] if residual.ndim == 1 else residual
    check_shape("residual", residual, (n, None), other=f"the kernel's n={n}")
    if eigh is None:
        eigh = jnp.linalg.eigh(kernel)
    vecs = jnp.asarray(eigh[1], dtype=float)
    check_shape("eigh", vecs, (n, n), other=f"eigenvectors of the (n, n) kernel, n={n}")
    coeffs = vecs.T @ residual  # ascending eigenvalues: the top-s are the last s rows
    top_part = jnp.sum(coeffs[n - top :] ** 2) / n
    rest = jnp.sum(coeffs[: n - top] ** 2) / n
    return top_part, rest


PHASES = ("lazy", "catapult", "spike", "divergent")


def measured_phase(train_loss, diverged_at, *, lambda_start=None, lambda_end=None):
    """Phase of a GD run read off its dynamics (catapult paper's definition, slides "Catapult dynamics").

    - "divergent": the run diverged, or ended at or above its initial loss;
    - "catapult": the loss rose above its initial value, came back below it, and (when the kernel's
      top eigenvalue is given) $\\lambda_{max}$ ended below where it started: the kernel dropped;
    - "spike": the loss rose and came back, but $\\lambda_{max}$ did not drop (only with the kernel);
    - "lazy": the loss never rose above its initial value.

    Args:
        train_loss: (..., K) losses recorded every step (a spike lasts a few steps).
        diverged_at: (...,) the trainer's divergence step, -1 if none.
        lambda_start, lambda_end: optional (...,) top tangent-kernel eigenvalue at the start and at
            the end of each run; without them a rise and return counts as a catapult.

    Returns:
        a string array of shape (...) with entries in `PHASES`.
    """
    loss = np.asarray(train_loss, dtype=float)
    diverged_at = np.asarray(diverged_at)
    if loss.ndim < 1 or diverged_at.shape != loss.shape[:-1]:
        raise ValueError(
            f"`diverged_at` must have one entry per run, shape {loss.shape[:-1]} for `train_loss` of shape {loss.shape}; "
            f"got {diverged_at.shape}"
        )
    if (lambda_start is None) != (lambda_end is None):
        raise ValueError("`lambda_start` and `lambda_end` come together (the kernel's drop needs both)")
    start, end = loss[..., 0], loss[..., -1]
    rose = np.nanmax(loss, axis=-1) > start
    divergent = (diverged_at >= 0) | ~(end < start)
    dropped = np.ones(loss.shape[:-1], dtype=bool)
    if lambda_start is not None:
        lambda_start = np.broadcast_to(np.asarray(lambda_start, dtype=float), loss.shape[:-1])
        lambda_end = np.asarray(lambda_end, dtype=float)
        check_shape("lambda_end", lambda_end, loss.shape[:-1], other="one value per run, as `diverged_at`")
        dropped = lambda_end < lambda_start
    return np.where(divergent, "divergent", np.where(rose, np.where(dropped, "catapult", "spike"), "lazy"))


def phase_edges(products, phases):
    """Measured (lower, upper) edges of the catapult window on a sorted grid of $\\eta\\lambda_0$:
    midpoints between the last lazy and first non-lazy run (catapult or spike), and between the last converging and
    first divergent run (inf if no run diverged, 0 if none was lazy)."""
    products, phases = np.asarray(products, float), np.asarray(phases)
    if products.ndim != 1 or phases.shape != products.shape:
        raise ValueError(f"`phases` must give one phase per product; got shapes {phases.shape} and {products.shape}")
    unknown = set(phases.tolist()) - set(PHASES)
    if unknown:
        raise ValueError(f"`phases` must be among {PHASES}; got {sorted(unknown)}")
    order = np.argsort(products)
    products, phases = products[order], phases[order]
    lazy = np.where(phases == "lazy")[0]
    caught = np.where(phases != "lazy")[0]
    lower = (
        0.0
        if lazy.size == 0
        else (
            np.inf
            if caught.size == 0
            else 0.5 * (products[lazy.max()] + products[caught[caught > lazy.max()]].min())
            if np.any(caught > lazy.max())
            else np.inf
        )
    )
    divergent = np.where(phases == "divergent")[0]
    upper = np.inf if divergent.size == 0 else 0.5 * (products[max(divergent.min() - 1, 0)] + products[divergent.min()])
    return lower, upper
