"""One case from its pipeline to its checked result, without pytest: the core every case runs.

    from pytest_llmeff.flow import run_case
    result = run_case(session, session.pipeline("kd+nf4"), checks, "my-case")

The pytest side (:mod:`pytest_llmeff.cases`) reads the marker, calls these functions and maps what
comes back to pass / fail / skip / warn. Here:

1. the base model is the reference (measured once per workload and tasks);
2. a candidate is compressed (``Unsupported`` propagates: the case skips);
3. measured next to the base model, scored against it, and its budgets checked;
4. while a verdict stays inconclusive it is timed again, up to ``--llmeff-reruns`` times.

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
        if result.verdict != "inconclusive":
            break
        session.progress(f"{pipeline.id}: verdict inconclusive; timing again ({attempt + 1}/{session.options.reruns})")
        again = references.retime(candidate.model, record, reference, settings)
        if again is None:  # measured without samples: nothing to pool
            break
        record, reference = again
        result = session.check(record, reference, checks)
    return result


def run_cache_case(session: Any, strategy: str, checks: list[Budget], case_id: str, timer: Any = None,
                   replay: Any = None) -> CaseResult:
    """A caching strategy on the replayed prompt list, checked against the no-cache answers."""
    references = session.references
    timed = strategy != "none" or not references.has_cache_reference(replay)
    record, reference = references.cache_case(strategy, case_id, timer if timed else None, replay)
    return session.check(dataclasses.replace(record, case_id=case_id), reference, checks)
