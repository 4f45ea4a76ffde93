"""The one result type of function-space theories: outputs on a time grid."""

from dataclasses import dataclass

import jax

__all__ = ["FunctionSpaceSolution"]


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class FunctionSpaceSolution:
    """Network outputs predicted on the time grid `ts` (gradient-flow time, $t = \\eta\\cdot$step).

    Attributes:
        ts: (T,) times.
        f_train: (T, n, C) outputs on the training set.
        f_test: (T, m, C) outputs on test points, or None.
        success: True unless a numerical solver failed (failure is data, not an exception).
    """

    ts: jax.Array
    f_train: jax.Array
    f_test: jax.Array | None = None
    success: jax.Array | bool = True
