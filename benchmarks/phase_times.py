"""Where the time of a ``pytest --llmeff`` run goes: wall seconds per measurement phase.

    python -m pytest --llmeff -p benchmarks.phase_times

Loaded as a pytest plugin, it wraps the functions of each phase (compression, quality, warm-up,
the windows of time and energy, caching replays) and prints their totals at the end of the
run. Phases nest: the caching replays hold their own warm-up, timing and energy windows, and the
quality figures hold the perplexity and the lm-eval tasks (docs/BENCHMARKS.md, "Where a warm run's
time goes").
"""

from __future__ import annotations

import collections
import functools
import importlib
import sys
import time
from collections.abc import Callable
from typing import Any

PHASES = [
    ("pytest_llmeff.session", "Session.compress"),
    ("pytest_llmeff.measure.case", "quality_values"),
    ("pytest_llmeff.measure.perplexity", "perplexity"),
    ("pytest_llmeff.measure.tasks", "run_tasks"),
    ("pytest_llmeff.measure.steady", "warm_up"),
    ("pytest_llmeff.measure.windows", "run_windows"),
    ("pytest_llmeff.measure.costs", "generation_values"),
    ("pytest_llmeff.measure.case", "measure_cache"),
]
TOTALS: dict[str, float] = collections.defaultdict(float)
CALLS: collections.Counter[str] = collections.Counter()


def _timed(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    @functools.wraps(fn)
    def inner(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            TOTALS[name] += time.perf_counter() - started
            CALLS[name] += 1
    return inner


def pytest_configure(config: Any) -> None:
    for module_name, attr in PHASES:
        module = importlib.import_module(module_name)
        if "." in attr:  # a method: wrap it on its class
            cls_name, method = attr.split(".")
            cls = getattr(module, cls_name)
            setattr(cls, method, _timed(getattr(cls, method), attr))
            continue
        original = getattr(module, attr)
        wrapped = _timed(original, f"{module_name.rsplit('.', 1)[-1]}.{attr}")
        # Modules that imported the function by name hold their own reference: replace it there too.
        for other in list(sys.modules.values()):
            if getattr(other, "__name__", "").startswith("pytest_llmeff") and getattr(other, attr, None) is original:
                setattr(other, attr, wrapped)


def pytest_unconfigure(config: Any) -> None:
    for name, seconds in sorted(TOTALS.items(), key=lambda kv: -kv[1]):
        print(f"phase {name:32s} {seconds:8.1f} s  {CALLS[name]:4d} calls", file=sys.stderr)
