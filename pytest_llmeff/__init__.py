"""pytest-llmeff: LLM compression cases as pytest tests, with quality, latency, energy and budgets.

Public API: :func:`opt_score` (the optimisation equation), :class:`Metric` / :func:`register_metric`
(quality metrics with direction and chance level), :class:`Budget` (parsed budgets).
"""

from __future__ import annotations

from pytest_llmeff.budgets import Budget, BudgetError, parse_budgets
from pytest_llmeff.metrics import Metric, get_metric, register_metric
from pytest_llmeff.score import OptWeights, opt_breakdown, opt_score

__version__ = "0.1.0"
__all__ = [
    "Budget", "BudgetError", "Metric", "OptWeights", "__version__", "get_metric", "opt_breakdown",
    "opt_score", "parse_budgets", "register_metric",
]
