"""Your own network against the theories: train it at several widths and seeds, put the matching
theory beside every run (from that run's own initial kernel and outputs), and get agreement
statistics over seeds with their intervals, labelled arrays to save, and a figure.

- `l2` (and `l2_mse`): L2 with MSE or cross-entropy, a constant λ or a schedule, against eq. 3 of
  the L2 paper or its ODE, the k = 1 model as the rival (`L2Comparison`);
- `catapult_gd`: GD phases at η = x/λ0 against the uv / quadratic-model window, the linear model as
  the rival (`CatapultComparison`);
- `floquet`: oscillating class weights against the Floquet boundary, the static 2/λ_max edge as the
  rival (`FloquetComparison`).

Each result has `agreement()`, `to_xarray()` (save with `widenet.results.save`) and `plot(path)`.
"""

from ._catapult import CatapultComparison, catapult_gd
from ._floquet import CLEAR_GROWTH, FloquetComparison, boundary_crossing, floquet, growth_per_cycle
from ._l2 import L2Comparison, l2, l2_mse
from ._stats import mean_interval

__all__ = [
    "l2",
    "l2_mse",
    "L2Comparison",
    "catapult_gd",
    "CatapultComparison",
    "floquet",
    "FloquetComparison",
    "growth_per_cycle",
    "boundary_crossing",
    "CLEAR_GROWTH",
    "mean_interval",
]
