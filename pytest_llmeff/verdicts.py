"""Noise-aware budget verdicts: pass, fail, or inconclusive, from bootstrap replicates.

A timing is a sample of rounds, not one number. Each replicate redraws, with replacement, the
rounds of every sampled figure (time; energy when several windows were measured) of the case, of
the base model of the run and of the stored baseline, takes their medians, recomputes the opt
scores from them, and checks the budget on that replicate. The budget

- passes when at least ``1 − α/2`` of the replicates pass (the whole interval is inside),
- fails when at most ``α/2`` pass (the whole interval lies past the budget),
- is inconclusive otherwise: the measurement cannot tell, and more rounds may.

Figures without samples (perplexity, task scores, single energy windows) are the same in every
replicate, so a budget on them alone gets the plain verdict.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_llmeff.budgets import Budget, BudgetResult
from pytest_llmeff.records import CaseRecord

SAMPLED = ("time", "energy")
# numbers(record, sampled overrides, reference numbers or None) -> the record's numbers with the
# overrides in, and its opt scores recomputed against the reference numbers when those are given.
Numbers = Callable[[CaseRecord, Mapping[str, float], Mapping[str, float] | None], dict[str, float]]


@dataclass(frozen=True)
class NoiseSettings:
    replicates: int = 500
    confidence: float = 0.95
    seed: int = 0


def samples_of(record: CaseRecord) -> dict[str, list[float]]:
    """The per-round samples a record carries (``detail["samples"]``), by metric."""
    out = {}
    for name in SAMPLED:
        m = record.values.get(name)
        samples = m.detail.get("samples") if m is not None else None
        if samples and len(samples) > 1:
            out[name] = [float(x) for x in samples]
    return out


def _resample(samples: dict[str, list[float]], rng: random.Random) -> dict[str, float]:
    return {k: statistics.median(rng.choices(v, k=len(v))) for k, v in samples.items()}


def judge(budget: Budget, point: BudgetResult, record: CaseRecord, reference: CaseRecord,
          baseline: CaseRecord | None, numbers: Numbers, settings: NoiseSettings = NoiseSettings()) -> BudgetResult:
    """The noise-aware verdict of ``budget`` (``point`` is its check on the medians).

    ``numbers`` (see :data:`Numbers`) comes from the session, which knows how opt is scored. A
    stored baseline's opt stays as stored: its own run's reference samples are not kept.
    """
    if point.status == "missing":
        return point
    sources = {"cur": samples_of(record), "ref": samples_of(reference),
               "base": samples_of(baseline) if baseline is not None else {}}
    if not any(sources.values()):
        return point
    rng = random.Random(settings.seed)
    passed = 0
    for _ in range(settings.replicates):
        draws = {k: _resample(v, rng) for k, v in sources.items()}
        ref = numbers(reference, draws["ref"], None)
        cur = numbers(record, draws["cur"], ref)
        base = numbers(baseline, draws["base"], None) if baseline is not None else None
        passed += budget.check(cur, ref, base).status == "pass"
    share = passed / settings.replicates
    tail = (1 - settings.confidence) / 2
    if share >= 1 - tail:
        return BudgetResult(budget, "pass", f"{point.message} (pass in {share:.0%} of resamples)",
                            point.current, point.limit)
    if share <= tail:
        return BudgetResult(budget, "fail", f"{point.message}; fails in {1 - share:.0%} of resamples",
                            point.current, point.limit)
    return BudgetResult(budget, "inconclusive",
                        f"{point.message.split(';')[0]} — inconclusive: passes in {share:.0%} of resamples "
                        f"(needs ≥ {1 - tail:.1%} to pass, ≤ {tail:.1%} to fail)", point.current, point.limit)


def sample_summary(record: CaseRecord) -> dict[str, Any]:
    """Rounds and spread of the sampled figures, for reports."""
    out = {}
    for name, values in samples_of(record).items():
        out[name] = {"n": len(values), "median": statistics.median(values),
                     "cv": statistics.stdev(values) / statistics.fmean(values) if statistics.fmean(values) else 0.0}
    return out
