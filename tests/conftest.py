"""Test configuration: float64 and strict rank promotion (the library itself never flips jax config)."""

import os
import sys

# The suite compiles far more than it computes (tiny sizes, hundreds of distinct programs): XLA's CPU
# backend at LLVM optimisation level 0 compiles them faster, the suite on 2 cores runs ~15% faster
# (666 -> 572 s, measured 2026-12-07) and every test gives the same verdict. XLA's CPU fast-math is off
# at every level; the level can change fusion (the last bits), and no tolerance had to change.
# Set before jax starts its backend; subprocesses started by tests inherit it.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")


def pytest_terminal_summary(terminalreporter):
    """The bad-input suite's counts: inputs tried and clear errors (tests/test_bad_inputs.py)."""
    module = sys.modules.get("tests.test_bad_inputs")
    if module is not None and module.COUNTS["tried"]:
        counts = module.COUNTS
        terminalreporter.write_line(
            f"bad-input suite: {counts['tried']} bad inputs tried, {counts['clear']} clear errors, "
            f"{counts['tried'] - counts['clear']} silent, cryptic or hanging"
        )
