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
    """Constant L2 predicted for a training-time budget $T$: $\\lambda = c/T$ (L2 paper, Sec. 3.1).

    `time_budget` in the same units as the measured constant $c = \\lambda t^*$
    (see `theory.l2_homogeneous.optimal_l2`)."""
    check_range("time_budget", time_budget, low=0.0, low_open=True)
    check_range("c", c, low=0.0, low_open=True)
    return constant(c / time_budget)
