"""llmeff's figures in pytest-benchmark's saved runs, also under pytest-xdist.

Each case hands pytest-benchmark's fixture its record as ``extra_info["llmeff"]`` (:func:`extra_info`),
so ``--benchmark-autosave`` keeps them beside pytest-benchmark's own timing statistics.

Under xdist pytest-benchmark turns itself off (its rule: no timing in a parallel run) and saves
nothing, so ``pytest-benchmark compare`` had nothing to read. llmeff still times every case with
its own timer, per call; the controller then writes those timings as a pytest-benchmark run
(:func:`save_under_xdist`): the same file layout, statistics computed by pytest-benchmark's own
``Stats`` from llmeff's per-round samples, in pytest-benchmark's storage.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from pytest_llmeff.results import CaseResult


def extra_info(result: CaseResult) -> dict[str, Any]:
    """The record as baselines and run files hold it (one serialisation), with the verdict."""
    return result.record.to_json() | {
        "verdict": result.verdict,
        "budgets": [{"budget": b.budget.text, "status": b.status, "message": b.message} for b in result.budgets],
    }


def benchmark_entry(result: CaseResult, include_data: bool) -> dict[str, Any] | None:
    """One case as an entry of a pytest-benchmark saved run; None without per-round samples."""
    from pytest_benchmark.stats import Stats

    timing = result.record.timing
    if timing is None or not timing.samples:
        return None
    stats = Stats()
    for seconds in timing.samples:
        stats.update(seconds)
    name = result.case_id.split("::")[-1]
    param = name[name.index("[") + 1:-1] if name.endswith("]") and "[" in name else None
    entry = {"group": None, "name": name, "fullname": result.case_id, "params": None, "param": param,
             "extra_info": {"llmeff": extra_info(result)},
             "options": {"timer": result.record.values["time"].method, "source": "llmeff (pytest-xdist)"},
             "stats": {**stats.as_dict(), "iterations": timing.iterations or 1}}
    if include_data:
        entry["stats"]["data"] = list(timing.samples)
    return entry


def save_under_xdist(config: Any, results: Sequence[CaseResult]) -> str | None:
    """Save ``results`` as a pytest-benchmark run when the user asked for a saved run
    (``--benchmark-save`` / ``--benchmark-autosave``) and xdist turned pytest-benchmark off.

    Returns a line for the terminal saying what happened, or None when nothing was asked.
    """
    bench = getattr(config, "_benchmarksession", None)
    if bench is None or not getattr(bench, "xdist_warning", False):
        return None
    save = bench.save or bench.autosave
    if not save:
        return ("pytest-benchmark times nothing under pytest-xdist; llmeff timed every case itself "
                "(--benchmark-autosave saves those timings for pytest-benchmark compare)")
    entries = [e for r in results if (e := benchmark_entry(r, bool(bench.save_data))) is not None]
    if not entries:
        return "pytest-benchmark run not saved under pytest-xdist: no case has per-round timings"
    output = {"machine_info": bench.get_machine_info(),
              "commit_info": config.hook.pytest_benchmark_generate_commit_info(config=config),
              "benchmarks": entries, "datetime": datetime.now(timezone.utc).isoformat(),
              "version": _version()}
    bench.storage.save(output, save)
    skipped = len(results) - len(entries)
    return (f"pytest-benchmark is off under pytest-xdist: llmeff saved its own per-call timings of "
            f"{len(entries)} case(s) as a pytest-benchmark run in {bench.storage}"
            + (f" ({skipped} without per-round timings left out)" if skipped else ""))


def _version() -> str:
    from importlib.metadata import version

    return version("pytest-benchmark")
