"""Time and energy from the same calls: windows of each model in the order A B B A, every call timed.

Energy needs windows of one model at a time, long enough for the meter (CodeCarbon: ≥ 0.5 s);
time needs many calls of each model close together, so that the machine's drift weighs on both.
One schedule serves both: the candidate (A) and the base model (B) run in windows
``A B B A A B B A …``, each window a block of calls inside one energy window, and each call in it
timed on its own. A linear drift over a cycle weighs on both models alike, the samples of the
matched windows are taken within a second of each other (the verdicts resample them paired), and
every joule of a window is divided by exactly the calls made inside it.

The candidate's calls go through pytest-benchmark's ``benchmark.pedantic`` (one call per round,
no extra call), so saved runs hold them; its ``setup`` / ``teardown`` hooks open and close the
candidate's windows and run the base model's windows between them. Where the fixture is absent
or disabled (``--benchmark-disable``, xdist) every call is timed with ``perf_counter``.

Python's garbage collector is run before the windows and held off during them (as ``timeit``
does): a full collection over a heap that holds a run's models and lm-eval data took 0.1–0.3 s on
the 2-core CPU kind, and one inside a 0.6 s window added half again to that window's energy per
call (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import contextlib
import gc
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_llmeff.measure.latency import PERF_COUNTER, PYTEST_BENCHMARK, Timing

# Models whose calls differ in speed by more than this get windows of their own length (equal call
# counts would stretch the slower model's windows past this many times the meter's minimum).
MAX_STRETCH = 4.0
MAX_CALLS = 2000  # per model: a bound for very fast workloads


@dataclass(frozen=True)
class WindowPlan:
    """Calls per window for each model, and cycles (one window of each model per cycle)."""

    calls: tuple[int, ...]
    cycles: int

    @property
    def order(self) -> list[int]:
        """Window owners in the order A B B A A B …: model 0 first, the order reversed every cycle."""
        models = range(len(self.calls))
        return [i for k in range(self.cycles) for i in (models if k % 2 == 0 else reversed(models))]


def plan_windows(estimates_s: Sequence[float], window_s: float, min_seconds: float, min_cycles: int = 2,
                 min_samples: int = 15) -> WindowPlan:
    """Windows of at least ``window_s`` for every model, and enough cycles that the candidate
    (``estimates_s[0]``) is called for ``min_seconds`` and ``min_samples`` times at least, with
    ``min_cycles`` windows per model at least, in an even number for two models (A B B A cancels a
    linear drift; A B B A A B would not).

    Both models make the same number of calls per window where their speeds allow (the verdicts
    then pair call ``j`` of one with call ``j`` of the other); models far apart in speed
    (:data:`MAX_STRETCH`) each fill their windows with their own count.
    """
    est = [max(e, 1e-6) for e in estimates_s]
    same = max(1, math.ceil(window_s / min(est)))
    if same * max(est) <= MAX_STRETCH * max(window_s, 1e-6):
        calls = tuple(same for _ in est)
    else:
        calls = tuple(max(1, math.ceil(window_s / e)) for e in est)
    needed = max(2, min_cycles, math.ceil(min_seconds / (calls[0] * est[0])), math.ceil(min_samples / calls[0]))
    needed = min(needed, max(2, MAX_CALLS // calls[0]))
    if len(est) > 1 and needed % 2:  # whole A B B A cycles: a linear drift then weighs on both alike
        needed += 1
    return WindowPlan(calls, needed)


@dataclass
class Windowed:
    """What the windows gave, per model: its timing, and (energy reading, calls) per read window."""

    timings: list[Timing]
    readings: list[list[tuple[Any, int]]]
    errors: list[str] = field(default_factory=list)


def run_windows(benchmark: Any, fns: Sequence[Callable[[], Any]], plan: WindowPlan, meter: Any,
                cooldown_s: float = 0.0) -> Windowed:
    """Run ``plan``: every model's windows in turn, each inside ``meter.measure()``, every call timed.
    ``cooldown_s``: a pause before every window but the first (lets clocks and temperatures settle).

    A window the meter reads as too short is measured once more after the schedule with twice its
    calls, for energy only (its calls are not timing samples: the schedule's are).
    """
    samples: list[list[float]] = [[] for _ in fns]
    readings: list[list[tuple[Any, int]]] = [[] for _ in fns]
    errors: list[str] = []
    short: list[int] = []
    opened = [0]

    def measure() -> Any:
        if opened[0] and cooldown_s:
            time.sleep(cooldown_s)
        opened[0] += 1
        return meter.measure()

    def keep(i: int, window: Any, calls: int) -> None:
        if window.reading is not None:
            readings[i].append((window.reading, calls))
        elif window.error:
            errors.append(window.error)
            if "too short" in window.error:
                short.append(i)

    def plain_window(i: int, calls: int, timed: bool = True) -> None:
        with measure() as window:
            for _ in range(calls):
                t0 = time.perf_counter()
                fns[i]()
                if timed:
                    samples[i].append(time.perf_counter() - t0)
        keep(i, window, calls)

    method = PERF_COUNTER
    with _no_collection():
        if benchmark is not None and not getattr(benchmark, "disabled", True):
            method = PYTEST_BENCHMARK
            samples[0] = _candidate_through_pedantic(benchmark, fns[0], plan, measure, keep, plain_window)
        else:
            for i in plan.order:
                plain_window(i, plan.calls[i])
        for i in dict.fromkeys(short):  # once per model, with twice the calls
            plain_window(i, 2 * plan.calls[i], timed=False)
    label = ", in windows A B B A with the base model, every call timed" if len(fns) > 1 else ""
    timings = [Timing(tuple(samples[0]), 1, method + label, len(samples[0]))]
    timings += [Timing(tuple(s), 1, PERF_COUNTER + ", in windows A B B A with the candidate, every call timed",
                       len(s)) for s in samples[1:]]
    return Windowed(timings, readings, errors)


@contextlib.contextmanager
def _no_collection() -> Any:
    """A full garbage collection now, none inside the block (unless the collector was off already)."""
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _candidate_through_pedantic(benchmark: Any, fn: Callable[[], Any], plan: WindowPlan,
                                measure: Callable[[], Any],
                                keep: Callable[[int, Any, int], None],
                                plain_window: Callable[[int, int], None]) -> list[float]:
    """The schedule with the candidate's calls as pedantic rounds: ``setup`` before a window's first
    round opens its energy window; ``teardown`` after its last closes it and runs the other
    models' windows up to the candidate's next one."""
    order, calls = plan.order, plan.calls[0]
    stack = contextlib.ExitStack()
    state = {"round": 0, "pos": 0, "window": None}

    def others() -> None:  # the windows scheduled before the candidate's next one
        while state["pos"] < len(order) and order[state["pos"]] != 0:
            plain_window(order[state["pos"]], plan.calls[order[state["pos"]]])
            state["pos"] += 1

    def setup() -> None:
        if state["round"] % calls == 0:
            others()
            state["pos"] += 1  # the candidate's window
            state["window"] = stack.enter_context(measure())

    def teardown() -> None:
        state["round"] += 1
        if state["round"] % calls == 0:
            stack.close()
            keep(0, state["window"], calls)
            others()

    try:
        benchmark.pedantic(fn, setup=setup, teardown=teardown, rounds=calls * order.count(0), iterations=1,
                           warmup_rounds=0)
    finally:
        stack.close()  # an exception inside a window: the meter is stopped all the same
    return [float(x) for x in benchmark.stats.stats.data]
