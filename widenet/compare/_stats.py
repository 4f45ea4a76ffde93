"""Seed statistics shared by the comparisons."""

import numpy as np

from .. import harness
from .._checks import check_range


def mean_interval(values, confidence=0.95):
    """Mean of `values` (over seeds, axis 0) and its two-sided Student-t interval.

    Returns:
        (mean, low, high); with one value the interval is (-inf, inf): one seed cannot bound a mean.
    """
    check_range("confidence", confidence, low=0.0, high=1.0, low_open=True, high_open=True)
    return harness.seed_interval(values, confidence)


def defined_interval(values):
    """(mean, low, high) over the seeds whose statistic is finite (1-D `values`): a diverged run or an
    unbracketed boundary leaves its seed out; with no finite seed, (nan, -inf, inf)."""
    values = np.asarray(values, dtype=float).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (float("nan"), -float("inf"), float("inf"))
    return tuple(float(v) for v in harness.seed_interval(values))
