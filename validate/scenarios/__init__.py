"""Validation scenarios, one claim per module, run in this order by `python -m validate`."""

from . import l2_digits, l2_kernel_decay, l2_loss_minimum, l2_modes

ALL = [l2_modes, l2_digits, l2_kernel_decay, l2_loss_minimum]
