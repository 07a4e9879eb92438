"""The metric registry: each metric's direction, chance level and unit (used by score and budgets)."""

from __future__ import annotations

from dataclasses import dataclass

from pytest_llmeff.registry import Registry


@dataclass(frozen=True)
class Metric:
    """What a metric means for comparisons.

    Attributes:
        name: registry name (``perplexity``, ``mmlu``, ``time`` …).
        higher_is_better: direction; degradation is a rise for lower-is-better metrics.
        chance: the score of random guessing (accuracy metrics), needed by the opt score's
            quality ratio ``(P_base − 0.8x) / (P_candidate − 0.8x)``; ``None`` where undefined.
        unit: display unit (``""`` for ratios, ``"s"``, ``"J"``, ``"B"``).
        cost: ``True`` for the opt score's cost terms (time, energy) and other resources. A metric
            that is not a cost is taken to be deterministic (the same model gives the same value):
            a baseline's history restarts when one changes, so register timed figures with ``True``.
        in_opt: ``False`` for quality figures that restate another one (byte perplexity beside word
            perplexity): the run's default opt score leaves them out.
    """

    name: str
    higher_is_better: bool
    chance: float | None = None
    unit: str = ""
    cost: bool = False
    in_opt: bool = True  # False: reported beside a figure that already enters the opt score

    def __post_init__(self) -> None:
        if self.chance is not None and not 0.0 <= self.chance < 1.0:
            raise ValueError(f"metric {self.name!r}: chance level must lie in [0, 1), got {self.chance}")


METRICS: Registry[Metric] = Registry("metric", entry_point_group="pytest_llmeff.metrics")


def register_metric(metric: Metric, *, replace: bool = False) -> Metric:
    """Register a metric (users add their own task metrics this way)."""
    METRICS.register(metric.name, metric, replace=replace)
    return metric


def get_metric(name: str) -> Metric:
    """The metric called ``name``; unknown names raise with a did-you-mean."""
    return METRICS.get(name)


def is_quality(name: str) -> bool:
    """A registered metric that is not a cost: perplexity, task scores, generation metrics."""
    return name in METRICS and not METRICS.get(name).cost


for _metric in (
    # Costs: the opt score's T and E, and resources budgets may name.
    Metric("time", higher_is_better=False, unit="s", cost=True),
    Metric("energy", higher_is_better=False, unit="J", cost=True),
    Metric("energy.cpu", higher_is_better=False, unit="J", cost=True),
    Metric("energy.gpu", higher_is_better=False, unit="J", cost=True),
    Metric("energy.ram", higher_is_better=False, unit="J", cost=True),
    Metric("energy.idle", higher_is_better=False, unit="J", cost=True),
    Metric("energy.active", higher_is_better=False, unit="J", cost=True),
    Metric("energy_per_token", higher_is_better=False, unit="J", cost=True),
    Metric("energy_per_sample", higher_is_better=False, unit="J", cost=True),
    Metric("parameters", higher_is_better=False, cost=True),
    # Structure (not quality): what a structural compressor changed.
    Metric("layers", higher_is_better=False, cost=True),
    Metric("heads", higher_is_better=False, cost=True),
    Metric("sparsity", higher_is_better=True, cost=True),
    Metric("weight_bytes", higher_is_better=False, unit="B", cost=True),
    Metric("peak_memory_bytes", higher_is_better=False, unit="B", cost=True),
    Metric("co2e", higher_is_better=False, unit="g", cost=True),
    # Language-modelling quality (lower is better).
    Metric("perplexity", higher_is_better=False),
    Metric("word_perplexity", higher_is_better=False, in_opt=False),
    Metric("byte_perplexity", higher_is_better=False, in_opt=False),
    Metric("bits_per_byte", higher_is_better=False, in_opt=False),
    # lm-eval tasks with the chance levels of SPEC §4 (multiple choice: 1 / number of options).
    Metric("arc_challenge", higher_is_better=True, chance=0.25),
    Metric("arc_easy", higher_is_better=True, chance=0.25),
    Metric("hellaswag", higher_is_better=True, chance=0.25),
    Metric("mmlu", higher_is_better=True, chance=0.25),
    Metric("winogrande", higher_is_better=True, chance=0.5),
    Metric("piqa", higher_is_better=True, chance=0.5),
    Metric("boolq", higher_is_better=True, chance=0.5),
    # No single chance level: usable in budgets, refused in the opt score until users set one.
    Metric("truthfulqa_mc2", higher_is_better=True),
    Metric("ifeval", higher_is_better=True),
    # The project's own offline tasks (pytest_llmeff.measure.local_tasks).
    Metric("llmeff_docs_mc", higher_is_better=True, chance=0.25),
    Metric("llmeff_docs_order", higher_is_better=True, chance=0.25),
    Metric("llmeff_docs_gen", higher_is_better=True, chance=0.0),
    # Generation quality against references.
    Metric("rouge_l", higher_is_better=True, chance=0.0),
    Metric("exact_match", higher_is_better=True, chance=0.0),
    Metric("hit_rate", higher_is_better=True, cost=True),
    Metric("seconds_per_sample", higher_is_better=False, unit="s", cost=True),
    Metric("prefill_tokens_per_s", higher_is_better=True, unit="tok/s", cost=True),
    Metric("decode_tokens_per_s", higher_is_better=True, unit="tok/s", cost=True),
):
    register_metric(_metric)
