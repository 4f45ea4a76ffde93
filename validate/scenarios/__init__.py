"""Validation scenarios, one claim per module, run in this order by `python -m validate`."""

from . import (
    catapult_agop,
    catapult_gd,
    catapult_learning_rate,
    catapult_multiple,
    catapult_sgd,
    catapult_uv,
    l2_cross_entropy,
    l2_digits,
    l2_kernel_decay,
    l2_loss_minimum,
    l2_modes,
    l2_scale_invariant,
    oscillatory_floquet,
    oscillatory_linearized,
    oscillatory_spiral,
)

ALL = [
    l2_modes,
    l2_digits,
    l2_kernel_decay,
    l2_scale_invariant,
    l2_loss_minimum,
    l2_cross_entropy,
    catapult_uv,
    catapult_gd,
    catapult_multiple,
    catapult_sgd,
    catapult_agop,
    catapult_learning_rate,
    oscillatory_linearized,
    oscillatory_spiral,
    oscillatory_floquet,
]
