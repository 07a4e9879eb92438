"""Score and judge a case: its opt scores against the base model, and each budget's verdict
against the base model of the run and the stored baseline (noise-aware, see verdicts.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

from pytest_llmeff.budgets import Budget, BudgetResult
from pytest_llmeff.records import CaseRecord
from pytest_llmeff.results import CaseResult
from pytest_llmeff.score import RecordScorer
from pytest_llmeff.store import BaselineStore
from pytest_llmeff.verdicts import NoiseSettings, judge, quality_figures

# Record fields that must agree before two records' numbers may be compared.
COMPARABLE_FIELDS = ("workload", "device", "model")


class Judge:
    """Scores records and checks budgets; knows the run's weights, noise settings and baselines."""

    def __init__(self, options: Any, store: BaselineStore) -> None:
        self.options = options
        self.store = store
        self.scorer = RecordScorer(options.weights, options.opt_metrics)

    def score(self, record: CaseRecord, reference: CaseRecord) -> CaseRecord:
        """``record`` with its opt scores (every preset, plus the run's weights as ``run``)."""
        opts, left_out = self.scorer.scores(record.numbers(), reference.numbers())
        if opts is None:
            return record
        notes = tuple(n for n in record.notes if "left out of the opt score" not in n) + tuple(left_out)
        return dataclasses.replace(record, opt=opts, notes=notes)

    def numbers_with(self, record: CaseRecord, overrides: dict[str, float],
                     reference: dict[str, float] | None) -> dict[str, float]:
        """``record``'s numbers with ``overrides`` in and, given reference numbers, opt recomputed
        (the noise-aware verdicts evaluate budgets on resampled timings this way)."""
        values = record.numbers() | dict(overrides)
        opts = self.scorer.scores(values, reference)[0] if reference is not None else None
        if opts:
            values.update({f"opt.{k}": v for k, v in opts.items()})
            values["opt"] = opts["run"]
        return values

    # ------------------------------------------------------------------ budgets and baselines
    def baseline_for(self, record: CaseRecord) -> tuple[CaseRecord | None, str]:
        """The stored baseline this record may be compared with, or None and why not."""
        stored = self.store.get(record.case_id)
        if stored is None:
            others = self.store.other_machines()
            elsewhere = f"; baselines exist for other machines: {', '.join(others)}" if others else ""
            return None, f"no baseline for this case in {self.store.path}{elsewhere}"
        diffs = [f"{f} {getattr(stored, f)!r} vs {getattr(record, f)!r}" for f in COMPARABLE_FIELDS
                 if getattr(stored, f) != getattr(record, f)]
        for name in ("perplexity", "energy"):
            a, b = stored.values.get(name), record.values.get(name)
            if a and b and a.method != b.method:
                diffs.append(f"{name} method {a.method!r} vs {b.method!r}")
        # The opt score holds every quality figure: another task, or a task measured another way
        # (shots, items, version), makes the stored opt another measure.
        then, now = ({k: m for k, (_, m) in quality_figures(r).items() if k != "perplexity"} for r in (stored, record))
        diffs += [f"{k} {then.get(k) or 'not measured'!r} vs {now.get(k) or 'not measured'!r}"
                  for k in sorted(then.keys() | now.keys()) if then.get(k) != now.get(k)]
        threads = [r.timing.threads for r in (stored, record) if r.timing]
        if len(threads) == 2 and threads[0] != threads[1]:
            diffs.append(f"torch threads {threads[0]!r} vs {threads[1]!r} (--llmeff-threads)")
        if diffs:
            return None, "stored baseline not comparable: " + "; ".join(diffs)
        return stored, ""

    def check(self, record: CaseRecord, reference: CaseRecord, budgets: list[Budget]) -> CaseResult:
        baseline, note = self.baseline_for(record)
        results = []
        for budget in budgets:
            if budget.reference == "baseline" and self.options.update_baselines:
                continue  # the baseline is being replaced: comparing with the old one would block that
            result = budget.check(record.numbers(), reference.numbers(), baseline.numbers() if baseline else None)
            if result.status == "missing" and budget.reference == "baseline" and note:
                result = BudgetResult(budget, "missing", f"{budget.text}: {note}", result.current)
            elif self.options.noise_aware:
                result = judge(budget, result, record, reference, baseline, self.numbers_with,
                               NoiseSettings(seed=self.options.seed), paired=_paired(record, reference))
            results.append(result)
        return CaseResult(record.case_id, record, reference, baseline, note, results)


def _paired(record: CaseRecord, reference: CaseRecord) -> bool:
    """Whether ``record``'s samples were taken in turn with ``reference``'s (or are the same)."""
    return record.interleaved or record.values == reference.values
