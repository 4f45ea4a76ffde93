"""Exact and numerical theory of wide-network training dynamics."""

from . import catapult, l2_homogeneous, ode, oscillatory, solution, special, symbolic

__all__ = ["catapult", "l2_homogeneous", "ode", "oscillatory", "solution", "special", "symbolic"]
