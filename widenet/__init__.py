"""widenet: theory and simulation of wide-network training dynamics.

Modules are namespaces named by concept, all reachable from `import widenet`:
`widenet.networks`, `widenet.data`, `widenet.losses`, `widenet.schedules`, `widenet.spectra`,
`widenet.observables`, `widenet.theory.{l2_homogeneous, ode, symbolic, catapult, oscillatory}`,
`widenet.experiment.train`, `widenet.harness`, `widenet.plots`; `widenet.show_versions()` prints
what widenet runs on (also `python -m widenet info`).
The library never changes jax's configuration; enable float64 in your entry point
(`jax.config.update("jax_enable_x64", True)`), as tests/conftest.py and `python -m validate` do.
"""

__version__ = "0.2.0"

from . import (
    compare,
    data,
    experiment,
    harness,
    losses,
    networks,
    observables,
    plots,
    results,
    schedules,
    spectra,
    theory,
)
from ._checks import PrecisionWarning
from .info import show_versions, versions

__all__ = [
    "compare",
    "data",
    "experiment",
    "harness",
    "losses",
    "networks",
    "observables",
    "plots",
    "results",
    "schedules",
    "spectra",
    "theory",
    "show_versions",
    "PrecisionWarning",
    "versions",
]
