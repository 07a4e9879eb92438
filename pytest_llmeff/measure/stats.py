"""Small statistics for repeated measurements: median, coefficient of variation, confidence intervals."""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

# Two-sided 95 % Student t quantiles for n − 1 degrees of freedom (n = 2 … 30); normal beyond.
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045]


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
    sd = statistics.stdev(values)
    half = (_T95[n - 2] if n - 2 < len(_T95) else 1.96) * sd / n ** 0.5
    return Summary(n, statistics.median(values), mean, sd / mean if mean else 0.0, mean - half, mean + half)


def bootstrap_ratio_ci(candidate: Sequence[float], baseline: Sequence[float], *, resamples: int = 2000,
                       confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Percentile bootstrap interval of median(candidate) / median(baseline).

    Returns (point estimate, low, high). Both samples are resampled independently.
    """
    if not candidate or not baseline:
        raise ValueError("both samples need at least one value")
    rng = random.Random(seed)
    point = statistics.median(candidate) / statistics.median(baseline)
    ratios = sorted(
        statistics.median(rng.choices(candidate, k=len(candidate)))
        / statistics.median(rng.choices(baseline, k=len(baseline)))
        for _ in range(resamples)
    )
    tail = (1 - confidence) / 2
    return point, ratios[int(tail * (resamples - 1))], ratios[int((1 - tail) * (resamples - 1))]
