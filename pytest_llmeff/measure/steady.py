"""Steady state before any window; the windows themselves are in :mod:`pytest_llmeff.measure.windows`.

Two things make a cost figure wrong on a shared machine, and both are handled here:

- **Work that is not the workload inside a window**: torch.compile / dynamo graphs (gptqmodel
  compiles its dequantisation kernel on first use), lazy allocations, cold caches. Warm-up
  therefore does not run a fixed number of calls: it runs until no compile happened in the last
  calls and the call time has stopped falling (:func:`warm_up`), and says when it gave up.
- **Drift**: the speed of a shared machine changes by more than many effects measured here. The
  candidate and the base model are therefore timed *interleaved*, in short windows of each in the
  order A B B A (:func:`pytest_llmeff.measure.windows.run_windows`), so both see the same machine,
  and their ratio cancels the drift.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

STEADY_TOLERANCE = 0.10  # the last calls may be at most this much slower than the ones before
MAX_WARMUP_S = 60.0


def compile_events() -> int:
    """How many graphs torch's compiler has captured so far in this process (0 without torch)."""
    try:
        from torch._dynamo.utils import counters
    except Exception:  # no torch or no dynamo: nothing can compile behind our back
        return 0
    return int(sum(counters["stats"].values()))


@dataclass(frozen=True)
class WarmUp:
    """What warming up took: calls per function, seconds, compiles seen, and whether it settled."""

    calls: int
    seconds: float
    compiles: int
    steady: bool
    estimate_s: tuple[float, ...]  # per function: median of its last calls

    def note(self) -> str | None:
        if self.steady:
            return None
        return (f"warm-up did not reach a steady state in {self.seconds:.0f} s ({self.calls} calls, "
                f"{self.compiles} compiles): the timings may include first-use work")


def _settled(times: list[float], compiled_at: list[int], window: int) -> bool:
    if len(times) < 2 * window or any(c for c in compiled_at[-window:]):
        return False
    last, before = statistics.median(times[-window:]), statistics.median(times[-2 * window:-window])
    return last <= before * (1 + STEADY_TOLERANCE) and before <= last * (1 + STEADY_TOLERANCE)


def warm_up(fns: Sequence[Callable[[], Any]], *, window: int = 3, max_s: float = MAX_WARMUP_S,
            min_calls: int = 2) -> WarmUp:
    """Call every function in turn until each is steady: no compile during its last ``window``
    calls, and the median of those calls within ``STEADY_TOLERANCE`` of the ``window`` before.

    A constant count of warm-up calls is a guess: a kernel compiled on first use, or a cache that
    fills over many calls, outlasts it. This loop watches for the end instead, up to ``max_s``.
    """
    times: list[list[float]] = [[] for _ in fns]
    compiled: list[list[int]] = [[] for _ in fns]
    started, total_compiles = time.perf_counter(), 0
    while True:
        for i, fn in enumerate(fns):
            before = compile_events()
            t0 = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - t0)
            compiled[i].append(compile_events() - before)
            total_compiles += compiled[i][-1]
        calls = len(times[0])
        steady = calls >= min_calls and all(_settled(t, c, window) for t, c in zip(times, compiled, strict=True))
        elapsed = time.perf_counter() - started
        if steady or elapsed > max_s:
            estimates = tuple(statistics.median(t[-window:]) for t in times)
            return WarmUp(calls, elapsed, total_compiles, steady, estimates)
