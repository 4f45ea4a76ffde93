"""Schedules: functions of the integer training step returning a value (learning rate, L2, ...).

Each builder returns a pure, jittable `schedule(step) -> value`. The trainer accepts either a number
(constant) or such a callable wherever it takes a learning rate or an L2 coefficient.
"""

import jax.numpy as jnp

from ._checks import check_range

__all__ = ["constant", "piecewise_constant", "exponential_decay", "l2_budget"]


def constant(value):
    """$v(s) = v$."""
    return lambda step: jnp.asarray(value, dtype=float)


def piecewise_constant(boundaries, values):
    """$v(s) = $ values[i] for boundaries[i-1] <= s < boundaries[i] (len(values) = len(boundaries) + 1)."""
    if len(values) != len(boundaries) + 1:
        raise ValueError(f"`values` must have len(boundaries) + 1 = {len(boundaries) + 1} entries; got {len(values)}")
    if any(b2 <= b1 for b1, b2 in zip(boundaries, boundaries[1:])):
        raise ValueError(f"`boundaries` must be strictly increasing; got {list(boundaries)}")
    bounds = jnp.asarray(boundaries)
    vals = jnp.asarray(values, dtype=float)
    return lambda step: vals[jnp.searchsorted(bounds, step, side="right")]


def exponential_decay(initial, *, rate, every=1):
    """$v(s) = v_0\\, \\text{rate}^{\\lfloor s/\\text{every} \\rfloor}$."""
    check_range("rate", rate, low=0.0, low_open=True)
    check_range("every", every, low=1)
    return lambda step: initial * jnp.asarray(rate, dtype=float) ** (step // every)


def l2_budget(time_budget, *, c):
    """Constant L2 predicted for a training-time budget $T$: $\\lambda = c/T$ (L2 paper, Sec. 3 "Optimal L2", where t* is the time of peak test accuracy).

    `time_budget` in the same units as the measured constant $c = \\lambda t^*$
    (see `theory.l2_homogeneous.optimal_l2`)."""
    check_range("time_budget", time_budget, low=0.0, low_open=True)
    check_range("c", c, low=0.0, low_open=True)
    return constant(c / time_budget)


_SHAPES = ("triangle", "sine", "square")


def class_weights(step, *, n_classes, period, amplitude, shape="triangle", off_after=None):
    """Class weights $\\Gamma(t)$ of the dynamical loss (dynamical-loss paper, SM; authors' code).

    Classes are emphasised in turn, one per period: class $c = \\lfloor s/T\\rfloor \\bmod C$. At
    phase $\\tau = s \\bmod T$ its raw weight is $1 + (A - 1)\\,\\phi(\\tau/T)$ with the triangle wave
    $\\phi(x) = 1 - |2x - 1|$ (1 at $\\tau = T/2$; "sine": $\\sin^2(\\pi x)$; "square": 1 on the middle
    half of the period), the other classes' raw weights are 1, and all are rescaled so that
    $\\sum_j\\Gamma_j = C$. With A = 70, C = 3 at $\\tau = T/2$: (2.9167, 0.0417, 0.0417). From step
    `off_after` on, $\\Gamma = 1$ (plain cross-entropy), as the paper does at the end of training.
    Jittable; `period` and `amplitude` may be traced (sweepable).

    Args:
        step: integer step (scalar or array). n_classes: C >= 2. period: T >= 2 steps.
        amplitude: A >= 1. shape: "triangle", "sine" or "square". off_after: optional step.

    Returns:
        $\\Gamma$ of shape `step.shape + (n_classes,)`.
    """
    check_range("n_classes", n_classes, low=2)
    check_range("period", period, low=2, meaning="steps per period")
    check_range("amplitude", amplitude, low=1.0, meaning="A = 1 is plain cross-entropy")
    if shape not in _SHAPES:
        raise ValueError(f"`shape` must be one of {_SHAPES}; got {shape!r}")
    step = jnp.asarray(step)
    period = jnp.asarray(period)
    phase = (step % period) / period
    if shape == "triangle":
        bump = 1.0 - jnp.abs(2.0 * phase - 1.0)
    elif shape == "sine":
        bump = jnp.sin(jnp.pi * phase) ** 2
    else:
        bump = ((phase >= 0.25) & (phase < 0.75)).astype(float)
    emphasised = (step // period) % n_classes
    classes = jnp.arange(n_classes).reshape((1,) * step.ndim + (n_classes,))
    raw = 1.0 + (amplitude - 1.0) * bump[..., None] * (classes == emphasised[..., None])
    gamma = n_classes * raw / jnp.sum(raw, axis=-1, keepdims=True)
    if off_after is not None:
        gamma = jnp.where((step >= off_after)[..., None], 1.0, gamma)
    return gamma
