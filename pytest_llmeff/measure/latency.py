"""Latency: plan rounds long enough for the energy meter, then time them.

Timing goes through pytest-benchmark's ``benchmark.pedantic`` when the fixture is active, so the
figures land in its JSON (``--benchmark-autosave``, ``pytest-benchmark compare``); where it is
disabled (``--benchmark-disable``, xdist) the same plan runs on ``time.perf_counter``.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PYTEST_BENCHMARK = "pytest-benchmark wall clock"
PERF_COUNTER = "perf_counter wall clock"
WINDOW_MARGIN = 1.25  # plan windows this much longer than the meter's minimum


@dataclass(frozen=True)
class TimingPlan:
    """How often to call the workload: ``rounds`` rounds of ``iterations`` calls after ``warmup`` calls."""

    rounds: int
    iterations: int
    warmup: int
    estimate_s: float  # one call, as measured while planning

    @property
    def calls(self) -> int:
        return self.rounds * self.iterations


@dataclass(frozen=True)
class Timing:
    """Seconds per call (one call = one workload execution), one sample per round."""

    samples: tuple[float, ...]  # per-call seconds of each round (round time / iterations)
    iterations: int
    method: str
    calls_made: int  # calls inside the measured window (energy per call divides by this)

    @property
    def rounds(self) -> int:
        return len(self.samples)

    @property
    def median_s(self) -> float:
        return statistics.median(self.samples)

    @property
    def mean_s(self) -> float:
        return statistics.fmean(self.samples)

    @property
    def stddev_s(self) -> float:
        return statistics.stdev(self.samples) if len(self.samples) > 1 else 0.0

    @property
    def min_s(self) -> float:
        return min(self.samples)


def plan(fn: Callable[[], Any], *, min_window_s: float, min_rounds: int = 5, max_rounds: int = 200,
         round_s: float = 0.2, warmup: int = 2) -> TimingPlan:
    """Warm up, time a few calls, and choose rounds × iterations so that the measured window lasts
    at least ``min_window_s`` (the energy meter's resolution) with rounds of about ``round_s``.

    The fastest of three calls is the estimate: a call slowed by a passing hiccup would otherwise
    make the plan too short, and a window shorter than the meter needs gives no energy figure.
    """
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(3):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    one = max(min(samples), 1e-6)
    iterations = max(1, int(round_s / one))
    rounds = max(min_rounds, math.ceil(WINDOW_MARGIN * min_window_s / (one * iterations)))
    return TimingPlan(min(rounds, max_rounds), iterations, warmup, one)


def run_with_benchmark(benchmark: Any, fn: Callable[[], Any], p: TimingPlan) -> Timing:
    """Time through pytest-benchmark; falls back to :func:`run_plain` where it is disabled."""
    benchmark.pedantic(fn, rounds=p.rounds, iterations=p.iterations, warmup_rounds=0)
    meta = getattr(benchmark, "stats", None)
    stats = getattr(meta, "stats", None)
    if stats is None:  # disabled: pedantic ran the function once and recorded nothing
        plain = run_plain(fn, p)
        return Timing(plain.samples, p.iterations, plain.method, plain.calls_made + 1)  # + pedantic's one call
    # pytest-benchmark stores each round's time already divided by the iterations.
    return Timing(tuple(stats.data), p.iterations, PYTEST_BENCHMARK, calls_inside_pedantic(p))


def calls_inside_pedantic(p: TimingPlan) -> int:
    """Calls ``benchmark.pedantic`` makes for ``p``: with iterations > 1 it calls the function
    once more after the rounds (to return its result), inside any window around it."""
    return p.calls + (1 if p.iterations > 1 else 0)


def run_plain(fn: Callable[[], Any], p: TimingPlan) -> Timing:
    """The same plan on ``time.perf_counter``: per-round time divided by iterations."""
    per_call = []
    for _ in range(p.rounds):
        started = time.perf_counter()
        for _ in range(p.iterations):
            fn()
        per_call.append((time.perf_counter() - started) / p.iterations)
    return Timing(tuple(per_call), p.iterations, PERF_COUNTER, p.calls)
