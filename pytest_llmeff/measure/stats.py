"""Small statistics for repeated measurements: median, coefficient of variation, confidence intervals."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    """Repeated values of one quantity."""

    n: int
    median: float
    mean: float
    cv: float  # standard deviation / mean (0 for a single value)
    ci_low: float  # 95 % interval of the mean (t-distribution); equal to the value for n = 1
    ci_high: float


def summarize(values: Sequence[float]) -> Summary:
    if not values:
        raise ValueError("no values to summarise")
    n, mean = len(values), statistics.fmean(values)
    if n == 1:
        return Summary(1, values[0], mean, 0.0, mean, mean)
    from scipy.stats import t  # lazy: scipy's import costs ~0.5 s

    sd = statistics.stdev(values)
    half = float(t.ppf(0.975, n - 1)) * sd / n ** 0.5  # two-sided 95 % Student t
    return Summary(n, statistics.median(values), mean, sd / mean if mean else 0.0, mean - half, mean + half)
