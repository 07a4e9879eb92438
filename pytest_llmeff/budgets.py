"""Budgets: small parsed objects that say how far a case may move, and check it.

Two forms, both direction-aware (the metric registry knows whether higher or lower is better):

``METRIC:±N[%|pt]`` — drift against the base model measured in the same run. The bound is the
    base value moved by N (relative with ``%``, accuracy points with ``pt`` = 0.01, absolute
    otherwise); lower-is-better metrics must stay at or below it, higher-is-better ones at or above.
    ``perplexity:+5%`` allows a 5 % rise; ``mmlu:-2pt`` a 2-point drop; ``time:-20%`` demands a
    20 % speed-up.
``METRIC OP REF`` — a bound, with ``OP`` in ``<= < >= >`` and ``REF`` a number or the stored
    ``baseline`` of this case, optionally moved: ``opt<=baseline``, ``opt<=baseline+5%``,
    ``perplexity<=40``, ``energy<=baseline``.

``opt`` is the opt score under the run's weights; ``opt.balanced`` / ``opt.energy`` /
``opt.runtime`` name a preset.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from pytest_llmeff.metrics import get_metric
from pytest_llmeff.registry import UnknownNameError
from pytest_llmeff.score import PRESETS

_NAME = r"[A-Za-z_][\w.]*"
_AMOUNT = r"([+-])\s*(\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)\s*(%|pt)?"
_DRIFT = re.compile(rf"^\s*({_NAME})\s*:\s*{_AMOUNT}\s*$")
_BOUND = re.compile(
    rf"^\s*({_NAME})\s*(<=|>=|<|>)\s*(?:(baseline)(?:\s*{_AMOUNT})?|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?))\s*$"
)
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt,
}
Status = Literal["pass", "fail", "missing", "inconclusive"]


class BudgetError(ValueError):
    """A budget string that cannot be parsed or names an unknown metric."""


def _lower_is_better(metric: str) -> bool:
    if metric == "opt" or metric.startswith("opt."):
        return True
    return not get_metric(metric).higher_is_better


def _check_metric_name(metric: str, text: str) -> None:
    if metric == "opt":
        return
    if metric.startswith("opt."):
        preset = metric[4:]
        if preset not in PRESETS:
            raise BudgetError(f"budget {text!r}: unknown opt preset {preset!r} (known: {', '.join(PRESETS)})")
        return
    try:
        get_metric(metric)
    except UnknownNameError as exc:
        raise BudgetError(f"budget {text!r}: {exc}") from None


def _move(value: float, sign: str, amount: float, unit: str | None) -> float:
    delta = amount if sign == "+" else -amount
    if unit == "%":
        return value * (1 + delta / 100)
    if unit == "pt":
        return value + delta / 100
    return value + delta


def _fmt_amount(sign: str, amount: float, unit: str | None) -> str:
    return f"{sign}{amount:g}{unit or ''}"


@dataclass(frozen=True)
class BudgetResult:
    """The outcome of one budget on one case."""

    budget: Budget
    status: Status
    message: str
    current: float | None = None
    limit: float | None = None

    @property
    def failed(self) -> bool:
        return self.status == "fail"


@dataclass(frozen=True)
class Budget:
    """One parsed budget; see the module docstring for the grammar."""

    text: str
    metric: str
    reference: Literal["base", "baseline", "absolute"]
    op: str
    sign: str = "+"
    amount: float = 0.0
    unit: str | None = None
    value: float | None = None  # for absolute bounds

    @classmethod
    def parse(cls, text: str) -> Budget:
        """Parse ``text``; raises :class:`BudgetError` with the grammar on malformed input."""
        if not isinstance(text, str):
            raise BudgetError(f"a budget must be a string, got {text!r}")
        if m := _DRIFT.match(text):
            metric, sign, amount, unit = m.groups()
            _check_metric_name(metric, text)
            op = "<=" if _lower_is_better(metric) else ">="
            return cls(text.strip(), metric, "base", op, sign, float(amount), unit)
        if m := _BOUND.match(text):
            metric, op, baseline, sign, amount, unit, number = m.groups()
            _check_metric_name(metric, text)
            if baseline:
                return cls(text.strip(), metric, "baseline", op, sign or "+", float(amount or 0), unit)
            return cls(text.strip(), metric, "absolute", op, value=float(number))
        hint = ""
        if re.match(rf"^\s*{_NAME}\s*:\s*\d", text):
            hint = " (a drift needs a sign: '+5%' allows a rise of 5 %, '-5%' demands a drop of 5 %)"
        raise BudgetError(
            f"malformed budget {text!r}{hint}; expected 'METRIC:+N%' / 'METRIC:-Npt' (drift against the "
            "base model) or 'METRIC<=baseline[+N%]' / 'METRIC<=NUMBER' (bound), e.g. 'perplexity:+5%', "
            "'opt<=baseline'"
        )

    def check(
        self,
        current: Mapping[str, float],
        base: Mapping[str, float] | None = None,
        baseline: Mapping[str, float] | None = None,
    ) -> BudgetResult:
        """Check this budget for one case.

        Args:
            current: the case's values (metric name → value; ``opt`` / ``opt.<preset>`` included).
            base: the base model's values from the same run (for drift budgets).
            baseline: the stored baseline of this case, or ``None`` when there is none.
        """
        if self.metric not in current:
            return BudgetResult(self, "missing", f"{self.text}: this case has no {self.metric!r} value")
        value = float(current[self.metric])
        if self.reference == "absolute":
            assert self.value is not None
            limit, origin = self.value, f"{self.value:g}"
        else:
            source = base if self.reference == "base" else baseline
            label = "base model" if self.reference == "base" else "stored baseline"
            if source is None:
                return BudgetResult(self, "missing", f"{self.text}: no {label} to compare with", value)
            if self.metric not in source:
                return BudgetResult(self, "missing", f"{self.text}: the {label} has no {self.metric!r}", value)
            ref = float(source[self.metric])
            limit = _move(ref, self.sign, self.amount, self.unit)
            origin = f"{label} {ref:.6g} {_fmt_amount(self.sign, self.amount, self.unit)}"
        ok = _OPS[self.op](value, limit) if math.isfinite(value) else False
        if ok:
            return BudgetResult(self, "pass", f"{self.text}: {self.metric} {value:.6g} {self.op} {limit:.6g}",
                                value, limit)
        over = (value / limit - 1) * 100 if limit else math.inf
        return BudgetResult(
            self, "fail",
            f"{self.text}: {self.metric} {value:.6g} is not {self.op} {limit:.6g} ({origin}); "
            f"off by {over:+.2f} %",
            value, limit,
        )


def parse_budgets(texts: Sequence[str] | str) -> list[Budget]:
    """Parse one budget or a list; a single string may hold several separated by ``;``."""
    if isinstance(texts, str):
        texts = [t for t in texts.split(";") if t.strip()]
    return [Budget.parse(t) for t in texts]
