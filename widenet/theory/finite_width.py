r"""The finite-width late-time fixed point of L2 training (L2 paper, SM B.1, eqs. S16-S26).

At infinite width eq. 3 sends every output of a k > 1 network to 0 and its kernel decays as
$e^{-2(k-1)\lambda t}$ for ever. At finite width n the decay stops: SM B.1 shows for deep linear
networks that gradient flow on $L + \frac{\lambda}{2}\|\theta\|^2$ has a non-trivial fixed point
(eq. S25) as long as $\lambda$ is small against a width scale, and for one sample (x = y = 1) of a
2-layer linear net, $\lambda\sqrt n = 1 - f$ (eq. S26, whose printed sign is flipped): a fixed point
$f = 1 - \lambda\sqrt n \neq 0$ exists iff $\lambda\sqrt n < 1$.

For a bias-free 2-layer linear network in NTK parameterisation with scalar output,
$f(x) = c\,W_1W_0x$ with $c = \sigma_1\sigma_0/\sqrt{n d}$ (stax `Dense(n) -> Dense(1)`, `W_std` σ),
the fixed point is explicit for any data. With $w = cW_1W_0$, the cheapest factorisation
(balanced, rank one) costs $\frac12(\|W_1\|^2 + \|W_0\|_F^2) = \|w\|/c$, so the fixed points are
those of the convex problem
$$ \min_w \tfrac12\|Xw - y\|^2 + \frac{\lambda}{c}\|w\|, $$
whose solution is $w = (X^TX + \mu I)^{-1}X^Ty$ with $\mu\|w\| = \lambda/c$. It is non-zero iff
$\lambda < \lambda_c = c\,\|X^Ty\|$: the threshold $\lambda_c\sqrt n = \sigma_1\sigma_0\|X^Ty\|/\sqrt d$
is O(1), the paper's "λ√n" scale (eq. S26 is $X = y = 1$, $d = 1$, σ = 1). At the fixed point
the network is $W_1 = \alpha u^T$, $W_0 = \alpha u\hat w^T$ with $\alpha^2 = \|w\|/c$, and its
tangent kernel
$$ \Theta_*(x, x') = c\,\|w\|\,\big[(\hat w\cdot x)(\hat w\cdot x') + x\cdot x'\big] $$
is $O(n^{-1/2})$ at fixed $\lambda\sqrt n$: the kernel decays only down to this floor. The random
components of the initial weights, orthogonal to everything the gradient reaches, decay as
$e^{-\lambda t}$ and are gone at the fixed point. docs/theory_l2.md ("Finite width: the fixed point
of SM B.1") derives this; tests/theory/test_finite_width.py checks it against eq. S26, against a
generic convex solver and against GD on the stax network.
"""

from dataclasses import dataclass

import numpy as np

from .._checks import check_int, check_range, check_shape

__all__ = ["LinearFixedPoint", "linear_fixed_point", "linear_fixed_point_ntk", "linear_l2_threshold"]


@dataclass(frozen=True)
class LinearFixedPoint:
    """The late-time state of a 2-layer linear network trained with L2 (SM B.1).

    Attributes:
        w: (d,) the network's effective linear map $f(x) = w\\cdot x$ at the fixed point (0 above the threshold).
        f_train: (n,) its outputs on the training inputs.
        scale: $c = \\sigma_1\\sigma_0/\\sqrt{\\text{width}\\cdot d}$.
        threshold: $\\lambda_c = c\\|X^Ty\\|$; the fixed point is non-trivial iff λ < λ_c.
        nontrivial: whether λ < λ_c.
    """

    w: np.ndarray
    f_train: np.ndarray
    scale: float
    threshold: float
    nontrivial: bool


def _scale(x, width, w_std):
    width = check_int("width", width, low=1)
    check_range("w_std", w_std, low=0.0, low_open=True, meaning="weight scale σ > 0 of both layers")
    return w_std**2 / np.sqrt(width * x.shape[1])


def _inputs(x, y):
    x = np.asarray(x, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"`x` must be (n, d) training inputs; got shape {x.shape}")
    y = np.asarray(y, dtype=float)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(
            f"`y` must be (n,) or (n, 1) scalar targets (with C > 1 outputs the fixed point is a nuclear-norm "
            f"problem, not implemented); got shape {y.shape}"
        )
    check_shape("y", y, (x.shape[0],), other=f"x's n={x.shape[0]}")
    check_range("x", x, meaning="finite inputs")
    check_range("y", y, meaning="finite targets")
    return x, y


def linear_l2_threshold(x, y, *, width, w_std=1.0):
    """$\\lambda_c = c\\|X^Ty\\|$ (SM B.1): below it the late-time fixed point is non-trivial."""
    x, y = _inputs(x, y)
    return float(_scale(x, width, w_std) * np.linalg.norm(x.T @ y))


def linear_fixed_point(x, y, *, l2, width, w_std=1.0):
    """The fixed point of GD with L2 on a bias-free 2-layer linear net with scalar output (SM B.1, eqs. S25-S26).

    Solves $\\min_w \\frac12\\|Xw - y\\|^2 + (\\lambda/c)\\|w\\|$ (module docstring): $w = (X^TX + \\mu I)^{-1}X^Ty$
    with $\\mu\\|w(\\mu)\\| = \\lambda/c$; $\\mu\\|w(\\mu)\\|$ rises monotonically from 0 to $\\|X^Ty\\|$, so the
    root is found by bisection on $\\log\\mu$ to double precision. For one sample $x = y = 1$ this is
    eq. S26: $f = 1 - \\lambda\\sqrt{n}$ when $\\lambda\\sqrt n < 1$, else 0.

    Args:
        x: (n, d) training inputs; y: (n,) targets; l2: λ > 0; width: hidden width;
        w_std: the `W_std` of both stax Dense layers (NTK parameterisation).

    Returns:
        `LinearFixedPoint`.
    """
    x, y = _inputs(x, y)
    check_range(
        "l2", l2, low=0.0, low_open=True,
        meaning="L2 coefficient lambda > 0 (without L2 the end state keeps the initialisation's components)",
    )  # fmt: skip
    c = _scale(x, width, w_std)
    xty = x.T @ y
    threshold = float(c * np.linalg.norm(xty))
    if l2 >= threshold:
        return LinearFixedPoint(np.zeros(x.shape[1]), np.zeros(x.shape[0]), float(c), threshold, False)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    keep = s > s[0] * x.shape[0] * np.finfo(float).eps  # numerically zero directions carry no Xᵀy
    u, s, vt = u[:, keep], s[keep], vt[keep]
    b = s * (u.T @ y)  # Xᵀy in the right singular basis
    kappa = l2 / c

    def w_of(log_mu):  # (XᵀX + μI)⁻¹Xᵀy = V b/(s² + μ), written with e^{-log μ} (no overflow)
        inv = np.exp(-log_mu)
        return vt.T @ (b * inv / (1.0 + s**2 * inv))

    def excess(log_mu):  # μ‖w(μ)‖ - λ/c, increasing in μ from -λ/c to ‖Xᵀy‖ - λ/c > 0
        inv = np.exp(-log_mu)
        return np.linalg.norm(b / (1.0 + s**2 * inv)) - kappa

    centre = np.log(s[0] ** 2)
    lo, hi = centre - 40.0, centre + 40.0
    while excess(lo) >= 0:  # λ tiny: μ very small
        lo -= 40.0
    while excess(hi) <= 0:  # λ just under the threshold: μ very large
        hi += 40.0
    for _ in range(400):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if excess(mid) < 0 else (lo, mid)
        if hi - lo < 4 * np.finfo(float).eps * max(1.0, abs(mid)):
            break
    w = w_of(0.5 * (lo + hi))
    return LinearFixedPoint(w, x @ w, float(c), threshold, True)


def linear_fixed_point_ntk(point: LinearFixedPoint, x1, x2=None):
    """The tangent kernel at the fixed point, $\\Theta_*(x, x') = c\\|w\\|[(\\hat w\\cdot x)(\\hat w\\cdot x') + x\\cdot x']$
    (module docstring; 0 above the threshold): an (n1, n2) matrix."""
    x1 = np.asarray(x1, dtype=float)
    x2 = x1 if x2 is None else np.asarray(x2, dtype=float)
    norm = float(np.linalg.norm(point.w))
    if norm == 0.0:
        return np.zeros((x1.shape[0], x2.shape[0]))
    w_hat = point.w / norm
    return point.scale * norm * (np.outer(x1 @ w_hat, x2 @ w_hat) + x1 @ x2.T)
