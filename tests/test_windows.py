"""Time and energy from the same calls: windows A B B A, every call timed, every joule divided by
exactly the calls inside its window (pytest_llmeff.measure.windows)."""

from __future__ import annotations

import pytest

from pytest_llmeff.measure.energy import EnergyMeter
from pytest_llmeff.measure.windows import WindowPlan, plan_windows, run_windows


class CallCounter:
    """A stepping counter: 1 J per call made while its window is open (and the events in order)."""

    components = ("cpu",)
    method = "call-counter"
    estimated = False
    min_window_s = 0.0

    def __init__(self, events: list[str]) -> None:
        self.events = events
        self._start = 0

    def calls(self) -> int:
        return sum(e in ("A", "B") for e in self.events)

    def start(self) -> None:
        self.events.append("[")
        self._start = self.calls()

    def stop(self) -> dict[str, float]:
        self.events.append("]")
        return {"cpu": float(self.calls() - self._start)}


def _run(benchmark, plan: WindowPlan):
    events: list[str] = []
    meter = EnergyMeter([CallCounter(events)])
    measured = run_windows(benchmark, [lambda: events.append("A"), lambda: events.append("B")], plan, meter)
    return "".join(events), measured


def test_plan_gives_both_models_the_same_calls_unless_far_apart_in_speed():
    assert plan_windows([0.04, 0.05], 0.625, 1.0) == WindowPlan((16, 16), 2)
    # a candidate 20× slower than the base: equal counts would make its windows 12 s long
    far = plan_windows([0.8, 0.04], 0.625, 1.0)
    assert far.calls == (1, 16) and far.cycles == 16  # 15 candidate calls at least, whole A B B A cycles
    assert plan_windows([0.5], 0.625, 1.0, min_samples=5).cycles == 3  # a slow replay alone: 5 samples
    assert plan_windows([0.8, 0.8], 0.625, 1.0, min_samples=5).cycles == 6  # paired: whole cycles A B B A
    assert plan_windows([0.04, 0.04], 0.625, 1.0, min_cycles=4).cycles == 4  # --llmeff-energy-repeats
    assert WindowPlan((2, 2), 3).order == [0, 1, 1, 0, 0, 1]


def test_windows_run_a_b_b_a_and_count_exactly_the_calls_inside():
    events, measured = _run(None, WindowPlan((3, 3), 2))
    assert events == "[AAA][BBB][BBB][AAA]"
    for timing, windows in zip(measured.timings, measured.readings, strict=True):
        assert len(timing.samples) == timing.calls_made == 6
        assert [(r.joules, calls) for r, calls in windows] == [(3.0, 3), (3.0, 3)]
    assert "windows A B B A" in measured.timings[0].method


def test_the_candidates_calls_go_through_pytest_benchmark(benchmark):
    if benchmark.disabled:
        pytest.skip("pytest-benchmark is disabled in this run")
    events, measured = _run(benchmark, WindowPlan((2, 2), 3))
    # setup/teardown open and close the candidate's windows; the base model's run between them
    assert events == "[AA][BB][BB][AA][AA][BB]"
    assert len(benchmark.stats.stats.data) == 6 == len(measured.timings[0].samples)
    assert measured.timings[0].method.startswith("pytest-benchmark wall clock")
    assert [calls for _, calls in measured.readings[0]] == [2, 2, 2]


def test_a_window_too_short_for_the_meter_is_measured_again_with_twice_the_calls():
    events: list[str] = []
    counter = CallCounter(events)
    counter.min_window_s = 1e9  # every window is too short: each model gets one retry, then none
    meter = EnergyMeter([counter])
    measured = run_windows(None, [lambda: events.append("A")], WindowPlan((2,), 2), meter)
    assert "".join(events) == "[AA][AA][AAAA]"
    assert measured.readings == [[]] and "too short" in measured.errors[-1]
    assert len(measured.timings[0].samples) == 4  # the retry's calls are not timing samples


def test_no_garbage_collection_inside_a_window():
    import gc

    seen: list[bool] = []
    meter = EnergyMeter([CallCounter([])])
    run_windows(None, [lambda: seen.append(gc.isenabled())], WindowPlan((2,), 2), meter)
    assert seen == [False] * 4 and gc.isenabled()  # held off during the windows, on again after
