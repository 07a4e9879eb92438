"""Case results: what one case measured, what it was compared with, and its verdict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_llmeff.budgets import Budget, BudgetResult
from pytest_llmeff.records import CaseRecord


@dataclass(frozen=True)
class CaseSettings:
    """What one case may set for itself (marker ``workload=`` / ``tasks=``); None: the run's."""

    workload: str | None = None
    tasks: tuple[Any, ...] | None = None


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
                "budgets": [{"budget": b.budget.text, "status": b.status, "message": b.message,
                             "current": b.current, "limit": b.limit} for b in self.budgets],
                "verdict": self.verdict}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CaseResult:
        budgets = [BudgetResult(Budget.parse(b["budget"]), b["status"], b["message"], b["current"], b["limit"])
                   for b in data["budgets"]]
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


