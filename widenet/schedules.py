"""Schedules: functions of the integer training step returning a value (learning rate, L2, ...).

Each builder returns a pure, jittable `schedule(step) -> value`. The trainer accepts either a number
(constant) or such a callable wherever it takes a learning rate or an L2 coefficient. AutoL2 depends
on what training measures, so it is a stateful rule instead (`init`/`update`, as optax), which the
trainer also takes as its L2.
"""

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ._checks import check_range

__all__ = [
    "constant",
    "piecewise_constant",
    "exponential_decay",
    "l2_budget",
    "AutoL2",
    "AutoL2State",
    "auto_l2",
    "class_weights",
]


def constant(value):
    """$v(s) = v$."""
    check_range("value", value, meaning="a schedule's value")
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
    A period here is T steps; the authors' loop spends T + 1 steps per period, the extra step with all
    weights 1 (NOTES.md), so their "T" is our T with one unweighted step added per period.
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


class AutoL2State(NamedTuple):
    """State of `AutoL2`: the current λ, the best earlier measurements, the previous measurement,
    and the step before which λ may not decay again."""

    l2: jax.Array
    min_loss: jax.Array
    min_error: jax.Array
    prev_loss: jax.Array
    prev_error: jax.Array
    min_step: jax.Array


@dataclass(frozen=True)
class AutoL2:
    """AutoL2, the automatic L2 schedule (L2 paper, Sec. 3 "AutoL2" and SM E, Algorithm 1).

    Start with a large λ, which trains fast, and divide it by `factor` when the empirical loss (the
    training loss without the L2 term) or the training error has stopped improving: at a
    measurement (every `measure_every` steps) λ decays if
    $$(L_t > L_{min} \\wedge L_{t-k} > L_{min}) \\vee (E_t > E_{min} \\wedge E_{t-k} > E_{min})$$
    (an increase two measurements in a row, not a fluctuation) and the step is past the refractory
    period, which after a decay at step t lasts until $t + \\text{refractory}/\\lambda$ steps (the
    physical time scale is $1/\\lambda$). Otherwise the minima absorb the previous measurement,
    $L_{min} \\leftarrow \\min(L_{t-k}, L_{min})$, and likewise for E.

    The printed algorithm compares the error with the error instead of its minimum; this follows
    the text and NOTES.md (error against min_error, minima updated with the previous measurement
    and only when no decay happened). The paper measures every 10 steps in SM A and every 5 in SM E.

    Pure and jittable, as an optax-style pair: `init()` and `update(state, step, loss, error)`,
    called at the measurement steps. The trainer runs it when given as `l2=auto_l2(...)`.
    """

    initial: float = 0.1
    factor: float = 10.0
    refractory: float = 0.1
    measure_every: int = 5

    def __post_init__(self):
        check_range("initial", self.initial, low=0.0, low_open=True, meaning="the starting L2 coefficient")
        check_range("factor", self.factor, low=1.0, low_open=True, meaning="λ is divided by it at each decay")
        check_range("refractory", self.refractory, low=0.0)
        check_range("measure_every", self.measure_every, low=1)

    def init(self):
        inf = jnp.asarray(jnp.inf)
        return AutoL2State(jnp.asarray(self.initial, dtype=float), inf, inf, inf, inf, jnp.asarray(0.0))

    def update(self, state, step, loss, error):
        """The state after the measurement (`loss`, `error`) at `step`."""
        increases = ((loss > state.min_loss) & (state.prev_loss > state.min_loss)) | (
            (error > state.min_error) & (state.prev_error > state.min_error)
        )
        decay = increases & (step > state.min_step)
        l2 = jnp.where(decay, state.l2 / self.factor, state.l2)
        return AutoL2State(
            l2=l2,
            min_loss=jnp.where(decay, state.min_loss, jnp.minimum(state.prev_loss, state.min_loss)),
            min_error=jnp.where(decay, state.min_error, jnp.minimum(state.prev_error, state.min_error)),
            prev_loss=jnp.asarray(loss, dtype=float),
            prev_error=jnp.asarray(error, dtype=float),
            min_step=jnp.where(decay, step + self.refractory / l2, state.min_step),
        )


def auto_l2(initial=0.1, *, factor=10.0, refractory=0.1, measure_every=5):
    """The AutoL2 schedule (see `AutoL2`); pass it to the trainer as `l2=auto_l2()`."""
    return AutoL2(initial, factor, refractory, measure_every)
