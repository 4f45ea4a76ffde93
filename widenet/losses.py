"""One definition of each loss, used by theory and experiment alike.

Normalisation (docs/notation.md): a **sum over samples**, as in the L2 paper's theorem,
$L = \\sum_i w_i\\, \\ell(f(x_i), y_i)$, with per-sample weights $w_i$ (default 1). The L2 term
$\\frac{\\lambda}{2}\\|\\theta\\|^2$ is added by the trainer, never here. Outputs `f` have shape (n, C)
and targets `y` the same shape (one-hot for cross-entropy).
"""

import jax
import jax.numpy as jnp

__all__ = ["mse", "cross_entropy", "accuracy", "get", "output_gradient"]


def _check(f, y, weights=None):
    """Shapes must agree exactly (they are static, so this holds under jit too): no broadcasting."""
    if jnp.shape(f) != jnp.shape(y):
        raise ValueError(f"`f` and `y` must have the same shape (n, C); got {jnp.shape(f)} and {jnp.shape(y)}")
    if weights is not None and jnp.shape(weights) != jnp.shape(f)[:-1]:
        raise ValueError(
            f"`weights` must have one value per sample, shape {jnp.shape(f)[:-1]}; got {jnp.shape(weights)}"
        )


def _weighted_sum(per_sample, weights):
    if weights is None:
        return jnp.sum(per_sample)
    return jnp.sum(jnp.asarray(weights) * per_sample)


def mse(f, y, weights=None):
    """$\\sum_i w_i \\frac12 \\|f(x_i) - y_i\\|^2$ (L2 paper, Thm 2 sample loss $\\frac12(f-y)^2$)."""
    _check(f, y, weights)
    return _weighted_sum(0.5 * jnp.sum((f - y) ** 2, axis=-1), weights)


def cross_entropy(f, y, weights=None):
    """$-\\sum_i w_i \\sum_c y_{ic} \\log \\mathrm{softmax}(f(x_i))_c$ (softmax cross-entropy on logits `f`).

    With class weights $w_i = \\Gamma_{y_i}(t)$ this is the dynamical loss $N F$ of the
    dynamical-loss paper (its $F$ is a mean; the trainer's time units absorb the $1/N$).
    """
    _check(f, y, weights)
    return _weighted_sum(-jnp.sum(y * jax.nn.log_softmax(f, axis=-1), axis=-1), weights)


def accuracy(f, y):
    """Fraction of correct predictions: argmax for C > 1, sign agreement for one output."""
    _check(f, y)
    if f.shape[-1] == 1:
        hits = jnp.sign(f[..., 0]) == jnp.sign(y[..., 0])
    else:
        hits = jnp.argmax(f, axis=-1) == jnp.argmax(y, axis=-1)
    return jnp.mean(hits.astype(f.dtype))


_LOSSES = {"mse": mse, "cross_entropy": cross_entropy}


def get(name):
    """The loss function called `name` ("mse" or "cross_entropy")."""
    try:
        return _LOSSES[name]
    except KeyError:
        raise ValueError(f"`loss` must be one of {sorted(_LOSSES)}; got {name!r}") from None


def output_gradient(name, f, y, weights=None):
    """$\\partial L/\\partial f$, shape of `f`: the driving term of the function-space ODE (eq. 1)."""
    return jax.grad(get(name))(f, y, weights)
