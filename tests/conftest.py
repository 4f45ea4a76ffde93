"""Test configuration: float64 and strict rank promotion (the library itself never flips jax config)."""

import sys

import jax

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
