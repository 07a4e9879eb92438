"""One case from its pipeline to its checked result, without pytest: the core every case runs.

    from pytest_llmeff.flow import run_case
    result = run_case(session, session.pipeline("kd+nf4"), checks, "my-case")

The pytest side (:mod:`pytest_llmeff.cases`) reads the marker, calls these functions and maps what
comes back to pass / fail / skip / warn. Here:

1. the base model is the reference (measured once per workload and tasks);
2. a candidate is compressed (``Unsupported`` propagates: the case skips);
3. measured next to the base model, scored against it, and its budgets checked;
4. while a verdict stays inconclusive, or fails on timing-based figures alone (time, energy, opt),
   the case is timed again, up to ``--llmeff-reruns`` times, and judged on the pooled samples: a
   burst of load on a shared machine lands in one measurement, a real regression in every one.

``timer`` is pytest-benchmark's fixture (or a stand-in for it); ``None`` times with perf_counter.
Configuration errors (a dataset too short, a model that cannot load) propagate as their own types.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pytest_llmeff.budgets import Budget
from pytest_llmeff.compress import Pipeline
from pytest_llmeff.results import CaseResult, CaseSettings


def run_case(session: Any, pipeline: Pipeline, checks: list[Budget], case_id: str, timer: Any = None,
             settings: CaseSettings | None = None) -> CaseResult:
    """Compress, measure, score and check ``pipeline`` on ``session``'s base model."""
    references = session.references
    if pipeline.is_reference:
        timed = not references.has_reference(settings)
        reference = references.reference(settings, timer if timed else None, case_id)
        return session.check(dataclasses.replace(reference, case_id=case_id), reference, checks)
    candidate = session.compress(pipeline)
    record, reference = references.measure_case(candidate, pipeline.id, case_id, timer, settings)
    result = session.check(record, reference, checks)
    for attempt in range(session.options.reruns):
        if not _decided_by_timing(result):
            break
        what = "inconclusive" if result.verdict == "inconclusive" else "failed on timing-based figures"
        session.progress(f"{pipeline.id}: verdict {what}; timing again to confirm "
                         f"({attempt + 1}/{session.options.reruns})")
        again = references.retime(candidate.model, record, reference, settings)
        if again is None:  # measured without samples: nothing to pool
            break
        record, reference = again
        result = session.check(record, reference, checks)
    return result


def _decided_by_timing(result: CaseResult) -> bool:
    """Whether more timing could change ``result``: it is inconclusive, or every budget it fails is
    on a timing-based figure (a deterministic one, perplexity, fails whatever the timing says)."""
    from pytest_llmeff.verdicts import timing_based

    if result.verdict == "inconclusive":
        return True
    failed = [b for b in result.budgets if b.failed]
    return bool(failed) and all(timing_based(b.budget.metric) for b in failed)


def run_cache_case(session: Any, strategy: str, checks: list[Budget], case_id: str, timer: Any = None,
                   replay: Any = None) -> CaseResult:
    """A caching strategy on the replayed prompt list, checked against the no-cache answers."""
    references = session.references
    timed = strategy != "none" or not references.has_cache_reference(replay)
    record, reference = references.cache_case(strategy, case_id, timer if timed else None, replay)
    return session.check(dataclasses.replace(record, case_id=case_id), reference, checks)
