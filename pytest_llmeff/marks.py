"""A case's budgets as the report plots draw them: limit lines and marks on the figures' axes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def change(value: float | None, reference: float | None) -> float | None:
    """The relative change ``value / reference − 1``: the one Δ of every table and plot (rows.py
    takes it from here); None where either figure is missing or the reference is 0 (no ratio)."""
    if value is None or not reference:
        return None
    return value / reference - 1


@dataclass(frozen=True)
class Mark:
    """One budget of a case as the plots draw it: its limit, that limit as a change against the
    case's reference (the Δ axes; None for figures without a Δ: opt, task scores), and the value
    it was moved from: the stored baseline, or the reference for a drift budget."""

    text: str  # "perplexity:+5%"
    metric: str
    kind: str  # "base" (drift against the reference), "baseline" (the stored one), "absolute"
    status: str  # pass / fail / inconclusive / missing
    limit: float
    delta: float | None = None
    origin: float | None = None


def _origin(budget: Any, limit: float) -> float | None:
    """The value ``limit`` was moved from (``budgets._move`` undone); None for absolute bounds."""
    if budget.reference == "absolute":
        return None
    step = budget.amount if budget.sign == "+" else -budget.amount
    if budget.unit == "%":
        return limit / (1 + step / 100) if step != -100 else None
    return limit - step / 100 if budget.unit == "pt" else limit - step


def marks_of(budgets: Sequence[Any], reference: Mapping[str, float],
             with_delta: Sequence[str] = ("perplexity", "time", "energy", "parameters")) -> tuple[Mark, ...]:
    """The budgets (``BudgetResult``) that have a limit, each with that limit as a Δ against
    ``reference`` for the figures in ``with_delta`` (those the tables show a Δ of)."""
    return tuple(Mark(b.budget.text, b.budget.metric, b.budget.reference, b.status, b.limit,
                      change(b.limit, reference.get(b.budget.metric)) if b.budget.metric in with_delta else None,
                      _origin(b.budget, b.limit))
                 for b in budgets if b.limit is not None)
