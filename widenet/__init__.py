"""widenet: theory and simulation of wide-network training dynamics.

Modules are namespaces named by concept: `widenet.networks`, `widenet.data`, `widenet.losses`,
`widenet.schedules`, `widenet.theory.l2_homogeneous`, `widenet.theory.ode`,
`widenet.theory.symbolic`, `widenet.experiment.train`, `widenet.harness`, `widenet.plots`.
The library never changes jax's configuration; enable float64 in your entry point
(`jax.config.update("jax_enable_x64", True)`), as tests/conftest.py and `python -m validate` do.
"""

__version__ = "0.1.0"
