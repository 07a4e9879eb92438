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

A case measured interleaved with the base model is resampled *paired*: one draw of call indices
serves both, as call ``j`` of each was made in matched windows (A B B A, equal call counts) under
the same machine conditions. The base model
judged against itself is therefore exactly itself in every replicate.

Budgets against the **stored baseline** compare two runs, so the noise *between* runs counts too.
Within-run resamples cannot see it (measured on the shared 2-core CPU kind: unchanged code's opt
moved run to run by more than its resamples allowed). Such a budget:

- passes when the current value is within the budget;
- fails when it is past the budget **and** its distance from the baseline's level is more than
  ``Z_BETWEEN`` standard deviations of the noise of that difference — the rule asv uses (a fixed
  factor and a significant difference). The level is the geometric mean of the ``n`` recorded
  baseline runs (the stored value and its history); the noise is the case's own (from the
  resamples), the machine's run-to-run spread σ_run of that figure (see :func:`run_spread`) for
  this run, and σ_run/√n for the level, which was measured too: a baseline recorded once is as
  noisy as the run it judges (measured: a baseline recorded in one lucky run put an unchanged
  case 9–11 % above it in three runs in a row);
- is inconclusive otherwise (past the budget, but within the noise): more rounds may decide.
"""

from __future__ import annotations

import dataclasses
import math
import random
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pytest_llmeff.budgets import Budget, BudgetResult
from pytest_llmeff.records import CaseRecord

SAMPLED = ("time", "energy")
# numbers(record, sampled overrides, reference numbers or None) -> the record's numbers with the
# overrides in, and its opt scores recomputed against the reference numbers when those are given.
Numbers = Callable[[CaseRecord, Mapping[str, float], Mapping[str, float] | None], dict[str, float]]


# A failure against the stored baseline needs a distance of this many standard deviations of the
# combined noise (one-sided p ≈ 0.006 for normal noise); see docs/BENCHMARKS.md "Gate calibration".
Z_BETWEEN = 2.5
# Run-to-run spread (SD of the log) of timing-based figures: the floor, and the value while a baseline
# holds fewer than MIN_HISTORY recorded runs. Conservative: paired opt scores on the 2-core CPU kind
# spread by 0.7–2 % between runs (docs/BENCHMARKS.md, "Gate calibration").
DEFAULT_RUN_SPREAD = 0.03
MIN_HISTORY = 3


@dataclass(frozen=True)
class NoiseSettings:
    replicates: int = 500
    confidence: float = 0.95
    seed: int = 0
    z_between: float = Z_BETWEEN
    run_spread: float = DEFAULT_RUN_SPREAD


def run_spread(baseline: CaseRecord, metric: str, default: float) -> tuple[float, str]:
    """The run-to-run spread (SD of the log) of ``metric`` on this machine, and how it was obtained:
    the SD of the values of earlier baseline updates kept with the baseline when there are enough,
    never less than ``default`` for figures that depend on timing; 0 for deterministic ones
    (perplexity, task scores)."""
    history = [v for v in baseline.history.get(metric, ()) if v > 0]
    current = baseline.numbers().get(metric)
    values = [*history, current] if current and current > 0 else history
    floor = default if timing_based(metric) else 0.0
    if len(values) >= MIN_HISTORY:
        # A few runs estimate a spread loosely: the default stays the floor for timing-based figures.
        measured = statistics.stdev([math.log(v) for v in values])
        how = f"SD {measured * 100:.1f} % over {len(values)} recorded runs, floor {floor * 100:g} %"
        return max(measured, floor), how
    if floor:
        return floor, f"default for this machine kind ({len(values)} recorded run(s))"
    return 0.0, "deterministic"


HISTORY = 5  # baseline updates kept per figure


def with_history(old: CaseRecord | None, new: CaseRecord) -> CaseRecord:
    """``new`` carrying ``old``'s timing-based figures into its history, when both measured the same
    model the same way: every quality figure (perplexity, task scores, generation metrics) is
    bit-identical and obtained the same way (the evaluations are deterministic, so a compressor,
    model or task change shows there — and the opt score, which holds them, changes with them), and
    workload, device and torch threads agree. After a change the history starts afresh."""
    if old is None or quality_figures(old) != quality_figures(new):
        return new
    threads = [r.timing.threads if r.timing else None for r in (old, new)]
    if threads[0] != threads[1] or (old.workload, old.device) != (new.workload, new.device):
        return new  # measured another way: not a repeat of the same measurement
    history = {m: (*old.history.get(m, ()), v)[-HISTORY:] for m, v in old.numbers().items()
               if timing_based(m) and m in new.numbers()}
    return dataclasses.replace(new, history=history)


def quality_figures(record: CaseRecord) -> dict[str, tuple[float, str]]:
    """The record's deterministic figures: value and method of every metric that is not a cost
    (a metric registered without ``cost=True`` is taken to be deterministic, see ``Metric.cost``)."""
    from pytest_llmeff.metrics import is_quality

    return {name: (m.value, m.method) for name, m in record.values.items() if is_quality(name)}


def timing_based(metric: str) -> bool:
    """Whether ``metric`` depends on timing (time, energy, the opt score…) rather than being deterministic."""
    from pytest_llmeff.metrics import METRICS

    if metric == "opt" or metric.startswith("opt."):
        return True
    return metric in METRICS and METRICS.get(metric).cost


def samples_of(record: CaseRecord) -> dict[str, list[float]]:
    """The per-round samples a record carries (``Measurement.samples``), by metric."""
    out = {}
    for name in SAMPLED:
        m = record.values.get(name)
        samples = m.samples if m is not None else ()
        if samples and len(samples) > 1:
            out[name] = [float(x) for x in samples]
    return out


def draw_median(values: list[float], rng: random.Random, indices: list[int] | None = None) -> tuple[float, list[int]]:
    """The median of one bootstrap draw of ``values``, and the drawn indices; ``indices`` (another
    sample's draw) is reused where the samples are as many, so that paired samples are drawn alike
    (samples of unequal length were not taken call for call, and are drawn independently)."""
    if indices is None or len(indices) != len(values):
        indices = [rng.randrange(len(values)) for _ in values]
    return statistics.median(values[i] for i in indices), indices


def _resample(samples: dict[str, list[float]], rng: random.Random,
              indices: dict[str, list[int]] | None = None) -> tuple[dict[str, float], dict[str, list[int]]]:
    """Medians of one bootstrap draw per metric; ``indices`` reuses another record's draw (paired)."""
    out, drawn = {}, {}
    for k, v in samples.items():
        out[k], drawn[k] = draw_median(v, rng, indices.get(k) if indices else None)
    return out, drawn


def judge(budget: Budget, point: BudgetResult, record: CaseRecord, reference: CaseRecord,
          baseline: CaseRecord | None, numbers: Numbers, settings: NoiseSettings = NoiseSettings(),
          paired: bool = False) -> BudgetResult:
    """The noise-aware verdict of ``budget`` (``point`` is its check on the medians).

    ``numbers`` (see :data:`Numbers`) comes from the session, which knows how opt is scored.
    ``paired``: the record was measured interleaved with ``reference`` (resampled with one draw).
    A stored baseline's value stays as stored; its noise is its run-to-run spread.
    """
    if point.status == "missing":
        return point
    sources = {"cur": samples_of(record), "ref": samples_of(reference)}
    if not any(sources.values()) and budget.reference != "baseline":
        return point
    rng = random.Random(settings.seed)
    passed, logs = 0, []
    for _ in range(settings.replicates):
        cur_draw, idx = _resample(sources["cur"], rng)
        ref_draw, _ = _resample(sources["ref"], rng, idx if paired else None)
        ref = numbers(reference, ref_draw, None)
        cur = numbers(record, cur_draw, ref)
        value = cur.get(budget.metric)
        if value and value > 0:
            logs.append(math.log(value))
        passed += budget.check(cur, ref, baseline.numbers() if baseline is not None else None).status == "pass"
    if budget.reference == "baseline" and baseline is not None:
        own = statistics.stdev(logs) if len(logs) > 1 else 0.0
        return _between_runs(budget, point, baseline, own, settings)
    return _within_run(budget, point, passed / settings.replicates, settings)


def _within_run(budget: Budget, point: BudgetResult, share: float, settings: NoiseSettings) -> BudgetResult:
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


def baseline_level(baseline: CaseRecord, metric: str) -> tuple[float | None, int]:
    """The geometric mean of ``metric`` over the recorded baseline runs (history and the stored
    value), and how many runs it rests on."""
    stored = baseline.numbers().get(metric)
    values = [v for v in (*baseline.history.get(metric, ()), stored) if v is not None and v > 0]
    if not values:
        return stored, 0
    return math.exp(statistics.fmean(math.log(v) for v in values)), len(values)


def _between_runs(budget: Budget, point: BudgetResult, baseline: CaseRecord, own: float,
                  settings: NoiseSettings) -> BudgetResult:
    """Against the stored baseline: past the budget, and significantly so, to fail.

    Significant: the value lies more than ``z_between`` σ beyond the baseline's level (a regression
    budget, ``+10%``: asv's rule of a factor and a significant difference) or beyond the limit
    itself (a budget that demands an improvement, ``-20%``), in the failing direction; σ is the
    noise of this run's value and of the level (see the module docstring). With no noise at all
    (deterministic figures) being past the limit is enough.
    """
    if point.status == "pass":
        return point
    level, n = baseline_level(baseline, budget.metric)
    values = (point.current, level, point.limit)
    if n == 0 or any(v is None or not math.isfinite(v) or v <= 0 for v in values):
        return point
    spread, how = run_spread(baseline, budget.metric, settings.run_spread)
    sigma = math.sqrt(own ** 2 + spread ** 2 * (1 + 1 / n))
    worse = 1.0 if budget.op in ("<=", "<") else -1.0  # the direction in which the value fails
    beyond = max(worse * math.log(point.current / level), worse * math.log(point.current / point.limit))
    noise = (f"{beyond * 100:.1f} % beyond the baseline's level ({level:.4g}, {n} recorded run(s)) or the "
             f"limit against noise σ {sigma * 100:.1f} % (this run {own * 100:.1f} %, run to run "
             f"{spread * 100:.1f} %: {how})")
    if beyond > settings.z_between * sigma:
        return BudgetResult(budget, "fail", f"{point.message}; {noise}, more than {settings.z_between:g} σ",
                            point.current, point.limit)
    return BudgetResult(budget, "inconclusive",
                        f"{point.message.split(';')[0]} — inconclusive: past the budget but {noise}, within "
                        f"{settings.z_between:g} σ", point.current, point.limit)
