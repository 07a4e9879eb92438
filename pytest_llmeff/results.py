"""Case results: what one case measured, what it was compared with, and its verdict."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pytest_llmeff.budgets import Budget, BudgetResult
from pytest_llmeff.records import CaseRecord


@dataclass(frozen=True)
class CaseSettings:
    """What one case may set for itself (marker ``workload=`` / ``tasks=``); None: the run's."""

    workload: str | None = None
    tasks: tuple[Any, ...] | None = None


def budgets_to_json(budgets: list[BudgetResult]) -> list[dict[str, Any]]:
    """Budget results as run files and pytest-xdist workers carry them."""
    return [{"budget": b.budget.text, "status": b.status, "message": b.message, "current": b.current,
             "limit": b.limit} for b in budgets]


STATUSES = ("pass", "fail", "missing", "inconclusive")


def budgets_from_json(data: Any) -> list[BudgetResult]:
    """Raises ``KeyError`` / ``ValueError`` (``BudgetError`` included) on entries that are not budget
    results: a run file's may have been edited by hand."""
    if not isinstance(data, list):
        raise ValueError(f"budgets are {data!r}, not a list")
    out = []
    for b in data:
        if b["status"] not in STATUSES:
            raise ValueError(f"budget {b['budget']!r}: status {b['status']!r} is none of {', '.join(STATUSES)}")
        if not isinstance(b["message"], str):
            raise ValueError(f"budget {b['budget']!r}: message {b['message']!r} is not a string")
        for key in ("current", "limit"):
            if b[key] is not None and (isinstance(b[key], bool) or not isinstance(b[key], (int, float))
                                       or not math.isfinite(b[key])):
                raise ValueError(f"budget {b['budget']!r}: {key} is {b[key]!r}, not a finite number")
        out.append(BudgetResult(Budget.parse(b["budget"]), b["status"], b["message"], b["current"], b["limit"]))
    return out


@dataclass
class CaseResult:
    """One finished case: its record, what it was compared with, and the verdict."""

    case_id: str
    record: CaseRecord
    reference: CaseRecord
    baseline: CaseRecord | None
    baseline_note: str
    budgets: list[BudgetResult]

    def to_json(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "record": self.record.to_json(), "reference": self.reference.to_json(),
                "baseline": self.baseline.to_json() if self.baseline else None, "baseline_note": self.baseline_note,
                "budgets": budgets_to_json(self.budgets),
                "verdict": self.verdict}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CaseResult:
        budgets = budgets_from_json(data["budgets"])
        baseline = CaseRecord.from_json(data["baseline"]) if data["baseline"] else None
        return cls(data["case_id"], CaseRecord.from_json(data["record"]), CaseRecord.from_json(data["reference"]),
                   baseline, data["baseline_note"], budgets)

    @property
    def verdict(self) -> str:
        if any(b.failed for b in self.budgets):
            return "fail"
        if any(b.status == "inconclusive" for b in self.budgets):
            return "inconclusive"
        if any(b.status == "missing" and b.budget.reference == "baseline" for b in self.budgets):
            return "no baseline"
        if any(b.status == "missing" for b in self.budgets):
            return "incomplete"
        return "pass"


