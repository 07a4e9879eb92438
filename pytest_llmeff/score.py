"""The opt score (the optimisation equation) and the quality ratios it is built from.

    opt = Q · (α·T_c + β·E_c)

- ``T_c = T_candidate / T_base`` and ``E_c = E_candidate / E_base``: time and energy ratios.
- ``Q = mean_n(P_cn ** 1.5)`` over the quality metrics, each ``P_c`` oriented so that
  degradation is > 1:

  * lower-is-better (perplexity): ``P_c = P_candidate / P_base``;
  * higher-is-better with chance level ``x`` (accuracy): ``P_c = (P_base − 0.8x) / (P_candidate − 0.8x)``
    (``0.8x`` is a safety margin for models at or below chance).

  Each ratio is raised to 1.5 *before* averaging, so one large drop costs more than several
  small ones; with one metric ``Q`` is exactly ``P_c ** 1.5``.
- Lower is better; the base model scored against itself gives ``α + β`` (1 for the presets).

The published form of this equation reads its multi-metric ratios inverted in places; the
orientation above is the only one consistent with "degradation > 1" and is the one used here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from pytest_llmeff.metrics import METRICS, Metric, get_metric
from pytest_llmeff.registry import UnknownNameError, did_you_mean

PRESETS: dict[str, tuple[float, float]] = {
    "balanced": (0.5, 0.5),
    "energy": (0.1, 0.9),
    "runtime": (0.9, 0.1),
}
QUALITY_EXPONENT = 1.5
CHANCE_MARGIN = 0.8
COST_KEYS = ("time", "energy")


@dataclass(frozen=True)
class OptWeights:
    """The (α, β) pair: weight of the time ratio and of the energy ratio."""

    alpha: float
    beta: float
    name: str = "custom"

    def __post_init__(self) -> None:
        for label, value in (("alpha", self.alpha), ("beta", self.beta)):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"opt weight {label} must be a finite number ≥ 0, got {value}")
        if self.alpha + self.beta == 0:
            raise ValueError("opt weights alpha and beta cannot both be 0")

    @classmethod
    def parse(cls, weights: str | tuple[float, float] | OptWeights) -> OptWeights:
        """A preset name, an ``(α, β)`` pair, or the text ``"α,β"``."""
        if isinstance(weights, OptWeights):
            return weights
        if isinstance(weights, str):
            text = weights.strip()
            if text in PRESETS:
                return cls(*PRESETS[text], name=text)
            if "," in text:
                parts = text.split(",")
                try:
                    alpha, beta = (float(p) for p in parts)
                except ValueError:
                    pass
                else:
                    return cls(alpha, beta)
            raise UnknownNameError(
                f"unknown opt weights {weights!r}{did_you_mean(text, list(PRESETS))}: use a preset "
                f"({', '.join(PRESETS)}) or two numbers 'alpha,beta' such as '0.3,0.7'"
            )
        try:
            alpha, beta = weights
        except (TypeError, ValueError):
            raise ValueError(f"opt weights must be a preset name or an (alpha, beta) pair, got {weights!r}") from None
        return cls(float(alpha), float(beta))


@dataclass(frozen=True)
class OptBreakdown:
    """The opt score with its parts, for reports and readable budget failures."""

    opt: float
    time_ratio: float
    energy_ratio: float
    quality: float
    quality_ratios: Mapping[str, float]
    weights: OptWeights


def quality_ratio(metric: Metric | str, base: float, candidate: float) -> float:
    """``P_c`` for one metric, oriented so that degradation is > 1."""
    m = get_metric(metric) if isinstance(metric, str) else metric
    if m.cost:
        raise ValueError(f"{m.name!r} is a cost, not a quality metric")
    if not m.higher_is_better:
        if base <= 0 or candidate <= 0:
            raise ValueError(f"{m.name}: values must be > 0 (base {base}, candidate {candidate})")
        return candidate / base
    if m.chance is None:
        raise ValueError(
            f"metric {m.name!r} has no chance level, which the opt score's quality ratio needs; "
            f"register one with pytest_llmeff.register_metric(Metric({m.name!r}, higher_is_better=True, "
            "chance=...), replace=True) or leave it out of the opt score"
        )
    floor = CHANCE_MARGIN * m.chance
    if candidate <= floor or base <= floor:
        raise ValueError(
            f"{m.name}: scores must exceed {CHANCE_MARGIN}·chance = {floor:g} "
            f"(base {base}, candidate {candidate})"
        )
    return (base - floor) / (candidate - floor)


def _positive(mapping: Mapping[str, float], key: str, role: str) -> float:
    if key not in mapping:
        raise ValueError(f"{role} has no {key!r} value (the opt score needs 'time' and 'energy')")
    value = float(mapping[key])
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{role} {key} must be a finite number > 0, got {mapping[key]!r}")
    return value


def opt_breakdown(
    base: Mapping[str, float],
    candidate: Mapping[str, float],
    weights: str | tuple[float, float] | OptWeights = "balanced",
) -> OptBreakdown:
    """The opt score and its parts; see :func:`opt_score`."""
    w = OptWeights.parse(weights)
    for key in list(base) + list(candidate):
        get_metric(key)  # unknown metric names fail here, with a did-you-mean
    quality_keys = [k for k in candidate if not get_metric(k).cost]
    if not quality_keys:
        raise ValueError("the candidate has no quality metric (e.g. 'perplexity' or a task score)")
    missing = [k for k in quality_keys if k not in base]
    if missing:
        raise ValueError(f"the base has no value for {', '.join(missing)}")
    extra = [k for k in base if not get_metric(k).cost and k not in candidate]
    if extra:
        raise ValueError(f"the candidate has no value for {', '.join(extra)}")
    t_c = _positive(candidate, "time", "candidate") / _positive(base, "time", "base")
    e_c = _positive(candidate, "energy", "candidate") / _positive(base, "energy", "base")
    ratios = {k: quality_ratio(k, float(base[k]), float(candidate[k])) for k in quality_keys}
    q = sum(r ** QUALITY_EXPONENT for r in ratios.values()) / len(ratios)
    return OptBreakdown(q * (w.alpha * t_c + w.beta * e_c), t_c, e_c, q, ratios, w)


def opt_score(
    base: Mapping[str, float],
    candidate: Mapping[str, float],
    weights: str | tuple[float, float] | OptWeights = "balanced",
) -> float:
    """The opt score of ``candidate`` against ``base`` (lower is better; base vs base = α + β).

    Args:
        base: metric name → value for the unoptimised model: ``time`` and ``energy`` (any one unit
            each, the same as the candidate's) and one or more quality metrics (``perplexity``,
            ``arc_challenge``, ``mmlu`` …, see :mod:`pytest_llmeff.metrics`).
        candidate: the same keys for the optimised model.
        weights: ``"balanced"`` (0.5, 0.5), ``"energy"`` (0.1, 0.9), ``"runtime"`` (0.9, 0.1), or an
            ``(α, β)`` pair.

    Example (SPEC §2: GPT-2 125M, bnb 4-bit):
        >>> round(opt_score({"perplexity": 34.29, "time": 212.33, "energy": 0.02335},
        ...                 {"perplexity": 35.56, "time": 222.67, "energy": 0.01162}), 3)
        0.817
    """
    return opt_breakdown(base, candidate, weights).opt


def opt_quality(values: Mapping[str, float], selection: tuple[str, ...] | None) -> dict[str, float]:
    """The quality figures that enter the opt score: the selection, or (auto) perplexity and every
    task score with a chance level; figures that restate another (byte perplexity) stay out."""
    if selection is not None:
        return {k: values[k] for k in selection if k in values}
    chosen = {}
    for name, value in values.items():
        metric = get_metric(name) if name in METRICS else None
        if metric is None or metric.cost or not metric.in_opt:
            continue
        if metric.higher_is_better and metric.chance is None:
            continue  # no chance level: reported, but not in the opt score
        chosen[name] = value
    return chosen


@dataclass(frozen=True)
class RecordScorer:
    """Opt scores for a run's records: every preset plus the run's own weights (as ``run``), over
    the run's choice of quality metrics (``None``: :func:`opt_quality`'s automatic choice)."""

    weights: str | tuple[float, float] | OptWeights = "balanced"
    metrics: tuple[str, ...] | None = None

    def scores(self, values: Mapping[str, float],
               reference: Mapping[str, float]) -> tuple[dict[str, float] | None, list[str]]:
        """Opt scores of ``values`` against ``reference``, and the quality metrics left out (with
        why); ``None`` when either side lacks time, energy or any quality figure."""
        cand, base = self._inputs(values), self._inputs(reference)
        if cand is None or base is None:
            return None, []
        left_out = []
        if self.metrics is None:  # auto: a score at or below 0.8 × chance has no ratio
            for name in [k for k in cand if k not in COST_KEYS]:
                metric = get_metric(name)
                floor = CHANCE_MARGIN * (metric.chance or 0)
                if metric.higher_is_better and min(cand[name], base.get(name, 0)) <= floor:
                    left_out.append(f"{name} left out of the opt score: a score at or below 0.8 × chance "
                                    f"({floor:g}) gives no quality ratio")
                    cand.pop(name)
                    base.pop(name, None)
        if not any(k not in COST_KEYS for k in cand):
            return None, left_out
        opts = {name: opt_breakdown(base, cand, name).opt for name in PRESETS}
        opts["run"] = opt_breakdown(base, cand, self.weights).opt
        return opts, left_out

    def _inputs(self, values: Mapping[str, float]) -> dict[str, float] | None:
        if any(key not in values for key in COST_KEYS):
            return None
        return {"time": values["time"], "energy": values["energy"], **opt_quality(values, self.metrics)}
