"""Seed statistics shared by the comparisons."""

from .. import harness
from .._checks import check_range


def mean_interval(values, confidence=0.95):
    """Mean of `values` (over seeds, axis 0) and its two-sided Student-t interval.

    Returns:
        (mean, low, high); with one value the interval is (-inf, inf): one seed cannot bound a mean.
    """
    check_range("confidence", confidence, low=0.0, high=1.0, low_open=True, high_open=True)
    return harness.seed_interval(values, confidence)
