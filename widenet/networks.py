"""Networks defined once with `neural_tangents.stax`: finite net and infinite-width kernel.

A `Network` bundles `init_fn`, `apply_fn` and `kernel_fn` from one stax definition (NTK
parameterization, $\\theta \\sim \\mathcal N(0, 1)$, as the L2 paper's theorem assumes) with its degree
of homogeneity $k$ ($f_{a\\theta}(x) = a^k f_\\theta(x)$ for all $a > 0$), or None when the network is
not homogeneous (biases, tanh, erf...).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from . import _nt
from ._checks import check_int, check_range

__all__ = [
    "stax",
    "Network",
    "mlp",
    "cnn",
    "from_stax",
    "measure_degree",
    "scale_invariant",
    "empirical_ntk",
    "empirical_ntk_full",
    "lazy",
    "linearized",
    "linearized_gd_params",
    "quadratic",
    "lazy_params",
]

stax = _nt.stax
"""neural-tangents' `stax` (layers with their infinite-width kernels), imported through widenet._nt."""

# Activations that are positively homogeneous of degree 1: a bias-free Dense/activation stack of
# L Dense layers is L-homogeneous (L2 paper, Sec. 4). Others break homogeneity.
_ACTIVATIONS = {
    "relu": (lambda: _nt.stax.Relu(), True),
    "identity": (lambda: _nt.stax.Identity(), True),
    "leaky_relu": (lambda: _nt.stax.LeakyRelu(0.1), True),
    "abs": (lambda: _nt.stax.Abs(), True),
    "erf": (lambda: _nt.stax.Erf(), False),
    "gelu": (lambda: _nt.stax.Gelu(), False),
}


@dataclass(frozen=True)
class Network:
    """One stax definition: finite network, infinite-width kernel, degree of homogeneity.

    Attributes:
        init_fn: `(key, input_shape) -> (output_shape, params)`.
        apply_fn: `(params, x) -> f(x)` of shape (n, out_dim).
        kernel_fn: analytic NNGP/NTK kernel, `kernel_fn(x1, x2, "ntk")`.
        degree: k if the network is k-homogeneous, else None.
        out_dim: number of outputs C.
        name: a short description for reports.
        ntk_implementation: the neural-tangents empirical-NTK route that suits it (`empirical_ntk`).
    """

    init_fn: Callable
    apply_fn: Callable
    kernel_fn: Callable
    degree: float | None
    out_dim: int
    name: str = "network"
    ntk_implementation: int = 3

    def init(self, key, input_dim):
        """Initial parameters for inputs of dimension `input_dim` from the PRNG `key`."""
        _, params = self.init_fn(key, (-1, input_dim))
        return params

    def ntk(self, x1, x2=None):
        """Infinite-width NTK $\\Theta(x_1, x_2)$, outputs traced out: shape (n1, n2)."""
        return self.kernel_fn(x1, x2, "ntk")


def _activation(activation):
    """The stax layer maker and homogeneity of an activation name (shared by `mlp` and `cnn`)."""
    if activation == "tanh":
        raise ValueError(
            "`activation`='tanh' has no infinite-width kernel in neural-tangents' stax; use 'erf', its smooth "
            f"sigmoid with a closed-form kernel. Allowed: {sorted(_ACTIVATIONS)}"
        )
    if activation not in _ACTIVATIONS:
        raise ValueError(f"`activation` must be one of {sorted(_ACTIVATIONS)}; got {activation!r}")
    return _ACTIVATIONS[activation]


def mlp(hidden: Sequence[int], out_dim: int = 1, *, activation="relu", W_std=1.0, b_std=None, parameterization="ntk"):
    """A fully connected stax network in NTK parameterization.

    Bias-free (`b_std=None`) stacks with a positively homogeneous activation (relu, identity,
    leaky_relu, abs) are k-homogeneous with k = number of Dense layers = len(hidden) + 1; the
    degree is read from this structure (and agrees with `measure_degree`, tests/test_networks.py).
    With biases on every layer (as here) the readout bias scales as $a$ while the rest scales as
    $a^k$, so the network is not homogeneous (degree None); use `from_stax` for other layouts.

    Args:
        hidden: widths of the hidden layers, e.g. (4096,) for a 2-layer network.
        out_dim: number of outputs.
        activation: one of relu, identity, leaky_relu, abs, erf, gelu.
        W_std: weight scale $\\sigma_w$ ($W \\sim \\mathcal N(0,1)$, layer output $\\sigma_w W x/\\sqrt{n_{in}}$).
        b_std: bias scale, or None for no biases.
        parameterization: "ntk" (default; the theorems' setting) or "standard" (W ~ N(0, σ_w²/n_in),
            as most training code, e.g. the dynamical-loss paper's Flax network).
    """
    make_act, homogeneous = _activation(activation)
    for width in hidden:
        check_range("hidden", width, low=1, meaning="layer widths are >= 1")
    check_range("out_dim", out_dim, low=1)
    if parameterization not in ("ntk", "standard"):
        raise ValueError(f"`parameterization` must be 'ntk' or 'standard'; got {parameterization!r}")
    layers = []
    for width in hidden:
        layers += [_nt.stax.Dense(width, W_std=W_std, b_std=b_std, parameterization=parameterization), make_act()]
    layers.append(_nt.stax.Dense(out_dim, W_std=W_std, b_std=b_std, parameterization=parameterization))
    init_fn, apply_fn, kernel_fn = _nt.stax.serial(*layers)
    degree = float(len(hidden) + 1) if homogeneous and b_std is None else None
    widths = "-".join(str(w) for w in hidden)
    bias = "" if b_std is None else f", b_std={b_std}"
    name = f"mlp[{widths}->{out_dim}, {activation}{bias}]"
    return Network(init_fn, apply_fn, kernel_fn, degree, out_dim, name)


def cnn(
    channels: Sequence[int],
    out_dim: int = 1,
    *,
    image_shape=(8, 8, 1),
    filter_shape=(3, 3),
    readout="flatten",
    activation="relu",
    W_std=1.0,
    b_std=None,
    parameterization="ntk",
):
    """A convolutional stax network on images given as flat vectors (e.g. the 8×8 digits).

    `len(channels)` layers ``Conv(c, filter_shape, padding="SAME")`` each followed by the activation,
    then the readout: "flatten" (``Flatten`` then ``Dense``: the readout sees every position) or
    "global_avg" (``GlobalAvgPool`` then ``Dense``: the Myrtle-type head, translation invariant).
    Inputs are vectors of length $H W C_{in}$ (`image_shape` = (H, W, C_in), row-major), reshaped to
    images inside `apply_fn` and `kernel_fn`, so a `cnn` drops into every widenet routine that takes
    an `mlp` (data sets store flat vectors). With `b_std=None` and a positively homogeneous
    activation the network is k-homogeneous with k = len(channels) + 1 (average pooling is linear),
    as for `mlp`; the infinite-width `kernel_fn` is neural-tangents' CNN-GP/NTK (channels → ∞).

    Args:
        channels: channels of the conv layers, e.g. (16, 16).
        out_dim: number of outputs.
        image_shape: (H, W, C_in) of one input.
        filter_shape: spatial size of every filter.
        readout: "flatten" or "global_avg".
        activation, W_std, b_std, parameterization: as `mlp`.
    """
    make_act, homogeneous = _activation(activation)
    if len(channels) == 0:
        raise ValueError("`channels` must name at least one conv layer; got ()")
    for c in channels:
        check_int("channels", c, low=1, meaning="channels per conv layer")
    check_int("out_dim", out_dim, low=1)
    image_shape = tuple(image_shape)
    if len(image_shape) != 3:
        raise ValueError(f"`image_shape` must be (H, W, C_in); got {image_shape}")
    for size in image_shape:
        check_int("image_shape", size, low=1)
    if readout not in ("flatten", "global_avg"):
        raise ValueError(f"`readout` must be 'flatten' or 'global_avg'; got {readout!r}")
    if parameterization not in ("ntk", "standard"):
        raise ValueError(f"`parameterization` must be 'ntk' or 'standard'; got {parameterization!r}")
    layers = []
    for c in channels:
        layers += [_nt.stax.Conv(c, tuple(filter_shape), padding="SAME", W_std=W_std, b_std=b_std,
                                 parameterization=parameterization), make_act()]  # fmt: skip
    layers += [_nt.stax.Flatten() if readout == "flatten" else _nt.stax.GlobalAvgPool()]
    layers.append(_nt.stax.Dense(out_dim, W_std=W_std, b_std=b_std, parameterization=parameterization))
    init_img, apply_img, kernel_img = _nt.stax.serial(*layers)
    size = int(np.prod(image_shape))

    def to_images(x):
        x = jnp.asarray(x)
        if x.ndim != 2 or x.shape[1] != size:
            raise ValueError(f"`x` must have shape (n, {size}) (flat {image_shape} images); got {x.shape}")
        return x.reshape((x.shape[0],) + image_shape)

    def init_fn(key, input_shape):
        if input_shape[-1] != size:
            raise ValueError(f"`input_dim` must be {size} (flat {image_shape} images); got {input_shape[-1]}")
        out_shape, params = init_img(key, (-1,) + image_shape)
        return out_shape, params

    def apply_fn(params, x, **kwargs):
        return apply_img(params, to_images(x), **kwargs)

    def kernel_fn(x1, x2=None, get=None, **kwargs):
        return kernel_img(to_images(x1), None if x2 is None else to_images(x2), get, **kwargs)

    degree = float(len(channels) + 1) if homogeneous and b_std is None else None
    bias = "" if b_std is None else f", b_std={b_std}"
    name = f"cnn[{'-'.join(map(str, channels))}, {readout}->{out_dim}, {activation}{bias}]"
    return Network(init_fn, apply_fn, kernel_fn, degree, out_dim, name)


def measure_degree(apply_fn, params, x, *, scales=(0.5, 2.0, 3.0), rtol=1e-6):
    """Degree of homogeneity measured numerically: k with $f(a\\theta) = a^k f(\\theta)$, or None.

    For each scale a, $k_a = \\log(f(a\\theta)/f(\\theta))/\\log a$ on every output; the network is
    k-homogeneous when all $k_a$ agree to `rtol` and $f(a\\theta) = a^k f(\\theta)$ holds to `rtol`.

    Returns:
        k as a float, or None if the network is not homogeneous.
    """
    if not callable(apply_fn):
        raise TypeError(f"`apply_fn` must be callable (params, x) -> f; got {type(apply_fn).__name__}")
    if len(scales) == 0 or any(a <= 0 or a == 1 or not np.isfinite(a) for a in scales):
        raise ValueError(f"`scales` must be a non-empty list of finite positive factors other than 1; got {scales!r}")
    check_range("rtol", rtol, low=0.0, low_open=True)
    f = apply_fn(params, x)
    scale = jnp.max(jnp.abs(f))
    usable = jnp.abs(f) > 1e-3 * scale
    estimates = []
    for a in scales:
        fa = apply_fn(jax.tree.map(lambda p, a=a: a * p, params), x)
        ratio = jnp.where(usable, fa / jnp.where(usable, f, 1.0), 1.0)
        if np.any(np.asarray(ratio[usable]) <= 0):
            return None
        k_a = jnp.log(ratio) / jnp.log(a)
        estimates.append(np.asarray(k_a[usable]))
    estimates = np.concatenate(estimates)
    k = float(np.median(estimates))
    k_round = round(k * 2) / 2  # report halves exactly when within tolerance
    k = k_round if abs(k - k_round) < rtol * max(1.0, abs(k)) else k
    for a in scales:
        fa = apply_fn(jax.tree.map(lambda p, a=a: a * p, params), x)
        if not np.allclose(np.asarray(fa), np.asarray(a**k * f), rtol=rtol, atol=rtol * float(scale) * a**k):
            return None
    return k


def from_stax(layer, out_dim, *, key, input_dim, name="network", probe_points=8):
    """Wrap any stax `(init_fn, apply_fn, kernel_fn)`; its degree is measured by `measure_degree`.

    Args:
        layer: a stax triple, e.g. `stax.serial(...)`.
        out_dim: number of outputs.
        key: PRNG key for the probe parameters and inputs (keyword-only).
        input_dim: input dimension for the probe.
    """
    if not (isinstance(layer, tuple) and len(layer) == 3 and all(callable(f) for f in layer)):
        raise TypeError(f"`layer` must be a stax triple (init_fn, apply_fn, kernel_fn); got {type(layer).__name__}")
    check_int("out_dim", out_dim, low=1)
    check_int("input_dim", input_dim, low=1)
    check_int("probe_points", probe_points, low=1)
    init_fn, apply_fn, kernel_fn = layer
    key_params, key_x = jax.random.split(key)
    _, params = init_fn(key_params, (-1, input_dim))
    x = jax.random.normal(key_x, (probe_points, input_dim))
    degree = measure_degree(apply_fn, params, x)
    return Network(init_fn, apply_fn, kernel_fn, degree, out_dim, name)


def scale_invariant(network, *, radius=None):
    r"""A scale-invariant (k = 0) version of `network`: its parameters normalised as a whole,
    $f(\theta, x) = h(r\,\theta/\|\theta\|, x)$, so $f(a\theta) = f(\theta)$ for every $a > 0$.

    The L2 paper's k = 0 case (Sec. 2; Li & Arora 2019): the gradient is orthogonal to θ, so under
    gradient flow with L2 $\|\theta_t\|^2 = \|\theta_0\|^2 e^{-2\lambda t}$, the kernel grows as
    $\Theta_t = \Theta_0 e^{2\lambda t}$ (eq. 2 at k = 0) and L2 acts only as an exponentially growing
    learning rate. Normalising the whole parameter vector (rather than one layer, whose following
    layers would scale the output) is what makes the function, and not only a layer, scale-invariant;
    at large width the kernel's direction is that of `network` (the projection that removes θ's own
    direction changes it by O(1/P)).

    Args:
        network: a `Network` (e.g. `mlp`); its parameters are normalised to norm `radius`.
        radius: r > 0; default $\sqrt P$ for P parameters, the expected norm of a standard-normal
            initialisation (neural-tangents' NTK parameterisation without biases), so that
            $f(\theta_0) = h(\theta_0)$ to O(P^{-1/2}). With another initialisation (e.g. the standard
            parameterisation, whose weights have variance 1/fan-in) pass its expected norm, or
            $f(\theta_0)$ is h at rescaled parameters.

    Returns:
        a `Network` with degree 0 and `network`'s infinite-width `kernel_fn` (at init); its empirical
        NTK takes neural-tangents' implementation 1 (`ntk_implementation=1`; train it with
        `TrainConfig(ntk_implementation=1)` when recording NTK eigenvalues).
    """
    if not isinstance(network, Network):
        raise TypeError(f"`network` must be a widenet `Network`; got {type(network).__name__}")
    if radius is not None:
        check_range("radius", radius, low=0.0, low_open=True, meaning="the norm the parameters are scaled to")
    inner = network.apply_fn

    def apply(params, x, **kwargs):
        leaves = jax.tree.leaves(params)
        r = np.sqrt(sum(leaf.size for leaf in leaves)) if radius is None else radius
        norm = jnp.sqrt(sum(jnp.sum(leaf**2) for leaf in leaves))
        return inner(jax.tree.map(lambda p: p * (r / norm), params), x, **kwargs)

    return Network(network.init_fn, apply, network.kernel_fn, 0.0, network.out_dim, f"scale-invariant {network.name}",
                   ntk_implementation=1)  # fmt: skip


def empirical_ntk(apply_fn, *, implementation=3):
    """Empirical NTK $\\Theta(x_1, x_2) = \\frac1C \\sum_c J_c(x_1) J_c(x_2)^T$, outputs traced out: (n1, n2).

    The mean over the C outputs (neural-tangents' `trace_axes=(-1,)` convention), which is the
    per-output kernel that multiplies $I_C$ at infinite width.

    Args:
        apply_fn: `(params, x) -> (n, C)`.
        implementation: neural-tangents' route: 3 (default) structured derivatives (backported to
            jax 0.5.3 in `widenet._nt`), fastest for stax networks; 1 Jacobian contraction, needed when
            the parameters are coupled, as in `scale_invariant` (structured derivatives would
            materialise the dense P x P Jacobian of the normalisation); 2 NTK-vector products.
            (0 is broken in neural-tangents 0.6.5 and refused.) A `Network` carries its own choice
            (`Network.ntk_implementation`).

    Returns:
        `ntk(x1, x2, params)`, jitted; `x2=None` means `x1`. (neural-tangents' function is not: called
        eagerly it runs op by op, compiling each operation: at n = 800, width 256, five kernels and
        their top eigenvalues took 4.8 s that way and 1.7 s jitted, on 2 cores.) Build it once and
        call it many times: each function built here compiles on its first call per shape (a small
        kernel built anew at every call took 0.38 s a call, against 0.08 s op by op).
    """
    _check_apply_fn(apply_fn)
    check_int("implementation", implementation, low=1, high=3, meaning="neural-tangents' empirical-NTK route")
    return jax.jit(_nt.empirical_ntk_fn(apply_fn, trace_axes=(-1,), vmap_axes=0, implementation=implementation))


def empirical_ntk_full(apply_fn):
    """Full empirical output kernel $\\Theta^{cd}(x_1, x_2) = \\nabla f_c(x_1)\\cdot\\nabla f_d(x_2)$: (n1, n2, C, C).

    The linearised network's function-space GD is exact with this kernel (cross-output terms kept).
    Returns `ntk(x1, x2, params)`, jitted, as `empirical_ntk`.
    """
    _check_apply_fn(apply_fn)
    return jax.jit(_nt.empirical_ntk_fn(apply_fn, trace_axes=(), vmap_axes=0, implementation=3))


def _check_apply_fn(apply_fn):
    if not callable(apply_fn):
        raise TypeError(f"`apply_fn` must be callable (params, x) -> f; got {type(apply_fn).__name__}")


def lazy(apply_fn, alpha):
    """The lazy-training model of Chizat, Oyallon & Bach (2019): $g(x) = \\alpha\\,(f_\\theta(x) - f_{\\theta_0}(x))$.

    Its parameters are the pair `(θ, θ0)` (start from `lazy_params(params0)`); θ0 sits behind
    `stop_gradient`, so GD without L2 leaves it in place. Trained on targets y with the loss $L(g, y)$ and
    learning rate $\\eta/\\alpha^2$, θ moves exactly as GD with rate η on $f_\\theta$ with targets
    $f_{\\theta_0} + y/\\alpha$: the real network with its residual scaled down by α. As α → ∞ the
    trajectory is that of the linearised network (the NTK regime at any width), which is how a
    linear-stability prediction is measured on a trained finite network without the non-linear
    (catapult) range cutting it short. Residuals and losses are in g's units ($g - y = \\alpha\\,r_f$).

    Args:
        apply_fn: `(params, x) -> f(x)`. alpha: the scale α > 0 (1: the centred network).

    Returns:
        `apply((θ, θ0), x) -> g(x)`.
    """
    check_range("alpha", alpha, low=0.0, low_open=True)

    def apply(params, x):
        theta, theta0 = params
        return alpha * (apply_fn(theta, x) - apply_fn(jax.lax.stop_gradient(theta0), x))

    return apply


def _anchor_and_step(params):
    """θ0 behind `stop_gradient` and Δ = θ - θ0 of a `(θ, θ0)` pair (`linearized`, `quadratic`)."""
    theta, theta0 = params
    theta0 = jax.lax.stop_gradient(theta0)
    return theta0, jax.tree.map(lambda a, b: a - b, theta, theta0)


def linearized(apply_fn):
    r"""The linearised network $f^{lin}_\theta(x) = f_{\theta_0}(x) + J_{\theta_0}(x)(\theta - \theta_0)$ with θ0 a parameter.

    `neural_tangents.linearize(apply_fn, params0)` closes over one θ0, so runs with different
    initialisations need one model (and one compile) each; here θ0 is the second half of the
    parameters `(θ, θ0)` (start from `lazy_params(params0)`) behind `stop_gradient`, so GD and SGD
    without L2 leave it in place and a seed sweep of linearised models is one vmapped `train_sweep`.
    `lazy`'s model tends to $f^{lin} - f_{\theta_0}$ (started at 0) as α → ∞; this is the linearised
    network itself, started at $f_{\theta_0}$. One `jax.jvp` per call.

    Returns:
        `apply((θ, θ0), x) -> f^{lin}(x)`.
    """
    _check_apply_fn(apply_fn)

    def apply(params, x):
        theta0, delta = _anchor_and_step(params)
        f0, df = jax.jvp(lambda p: apply_fn(p, x), (theta0,), (delta,))
        return f0 + df

    return apply


def quadratic(apply_fn):
    r"""The neural quadratic model $f_{\theta_0} + J\Delta + \frac12\Delta^T H_f\Delta$, $\Delta = \theta - \theta_0$, with θ0 a parameter.

    The second-order Taylor expansion of the catapult slides ("Neural quadratic models"), as
    `theory.catapult.quadratic_model` (neural-tangents' `taylor_expand`, closed over one θ0), but
    with parameters `(θ, θ0)` (start from `lazy_params(params0)`) and θ0 behind `stop_gradient`, so a
    sweep over initialisations is one vmapped `train_sweep`. Nested jvp, never a dense Hessian.

    Returns:
        `apply((θ, θ0), x) -> f^{quad}(x)`.
    """
    _check_apply_fn(apply_fn)

    def apply(params, x):
        theta0, delta = _anchor_and_step(params)

        def directional(p):  # J(p) Δ
            return jax.jvp(lambda q: apply_fn(q, x), (p,), (delta,))[1]

        first, second = jax.jvp(directional, (theta0,), (delta,))  # J Δ and Δᵀ H_f Δ
        return apply_fn(theta0, x) + first + 0.5 * second

    return apply


def linearized_gd_params(apply_fn, params0, x, y, *, learning_rate, steps):
    r"""Parameters `(θ_S, θ0)` of the linearised network (`linearized`) after S full-batch GD steps on ½Σ(f - y)².

    Exact, without iterating: the linearised outputs follow $r_{s+1} = (I - \eta K) r_s$ with
    $r = f - y$ and $K = J J^T$ the empirical NTK at θ0 (C outputs: the full (nC, nC) kernel), and
    $\theta_S - \theta_0 = -\eta J^T \sum_{s<S} r_s = -J^T V \operatorname{diag}\big((1-(1-\eta\gamma)^S)/\gamma\big) V^T r_0$
    in K's eigenbasis $K = V\operatorname{diag}(\gamma)V^T$ (the γ → 0 entries are ηS). The same
    recursion as `theory.l2_homogeneous.gd_solution` at λ = 0 (L2 paper, eq. 1 discretised), here mapped
    back to parameters so that anything of the trained linear model (its AGOP, its outputs anywhere) is
    available; tested against `train_sweep` on `linearized` to 1e-10. Any η, also η·γ > 2 (where the
    linear model diverges).

    Args:
        apply_fn: `(params, x) -> (n, C)`. params0: θ0. x: (n, d) training inputs; y: (n,) or (n, C).
        learning_rate: η > 0. steps: S >= 0.

    Returns:
        `(θ_S, θ0)`, parameters for `linearized(apply_fn)`.
    """
    _check_apply_fn(apply_fn)
    check_range("learning_rate", learning_rate, low=0.0, low_open=True, meaning="step size eta > 0")
    check_int("steps", steps, low=0)
    x = jnp.asarray(x)
    f0 = jax.eval_shape(apply_fn, params0, x)
    y = jnp.asarray(y)
    y = y[:, None] if y.ndim == 1 else y
    if y.shape != f0.shape:
        raise ValueError(
            f"`y` must have the network's output shape {f0.shape} (or ({f0.shape[0]},) for one output); got {y.shape}"
        )
    return _linearized_gd_params(apply_fn, params0, x, y, float(learning_rate), steps), params0


def _compiled_per_function(impl):
    """`impl(fn, *args)` compiled once per function `fn` (a static argument of `jax.jit`) and argument
    shapes; run op by op for an `fn` that cannot be hashed (a callable object holding arrays), as
    `jax.jit` cannot take it as static. For library functions whose first argument is a network."""
    compiled = jax.jit(impl, static_argnums=0)

    def call(fn, *args):
        try:
            hash(fn)
        except TypeError:
            return impl(fn, *args)
        return compiled(fn, *args)

    return call


@_compiled_per_function
def _linearized_gd_params(apply_fn, params0, x, y, eta, steps):
    """θ_S of `linearized_gd_params` (op by op, the first call at n = 800, width 256 took 7.5 s; compiled,
    4.2 s)."""
    f0, pullback = jax.vjp(lambda p: apply_fn(p, x), params0)
    n, c = f0.shape
    kernel = empirical_ntk_full(apply_fn)(x, None, params0).transpose(0, 2, 1, 3).reshape(n * c, n * c)
    gamma, vecs = jnp.linalg.eigh(kernel)
    gamma = jnp.maximum(gamma, 0.0)
    tiny = gamma < 1e-12 * jnp.maximum(gamma[-1], 1e-300)
    safe = jnp.where(tiny, 1.0, gamma)
    weight = jnp.where(tiny, eta * steps, (1.0 - (1.0 - eta * safe) ** steps) / safe)
    coeff = -(vecs @ (weight * (vecs.T @ (f0 - y).reshape(-1)))).reshape(n, c)
    (delta,) = pullback(coeff)
    return jax.tree.map(jnp.add, params0, delta)


def lazy_params(params0):
    """Initial parameters `(θ0, θ0)` of `lazy`: g starts at 0."""
    if not jax.tree.leaves(params0):
        raise ValueError(f"`params0` must be a pytree of parameter arrays; got {params0!r}")
    return (params0, params0)
