"""The base model as every case's reference: measured once per workload and tasks, timed again
interleaved with each candidate (so their ratio cancels the machine's drift), and the no-cache
answers of the cache replay. Also the re-measurement of a case whose verdict is inconclusive."""

from __future__ import annotations

import dataclasses
import statistics
from typing import Any

from pytest_llmeff.compress import Candidate
from pytest_llmeff.details import with_samples
from pytest_llmeff.measure.case import measure_model
from pytest_llmeff.records import CaseRecord
from pytest_llmeff.results import CaseSettings

# Figures derived from a measurement's time or energy: replaced together when the costs are re-measured.
COST_DERIVED = ("time", "co2e", "seconds_per_sample", "prefill_tokens_per_s", "decode_tokens_per_s",
                "peak_memory_bytes")


class References:
    """Reference records of one run (``session``: the run's resources, options and scoring)."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self._references: dict[str, CaseRecord] = {}
        self._cache_answers: dict[str, list[list[int]]] = {}  # no-cache answers per replay list
        self._quality: dict[str, dict[str, Any]] = {}  # quality figures by model state (measure.case.quality_key)

    def measure(self, candidate: Candidate, method: str, case_id: str, benchmark: Any = None,
                case: CaseSettings | None = None, paired_with: CaseRecord | None = None,
                ) -> tuple[CaseRecord, CaseRecord | None]:
        """Measure ``candidate``; given ``paired_with`` (the run's base record), the base model is
        timed again interleaved with it (see :mod:`pytest_llmeff.measure.costs`) and returned as
        that record with its time and energy replaced (quality kept: it is deterministic)."""
        run, spec = self.session, self.session.spec(case)
        tasks = f", tasks {', '.join(t.name for t in spec.tasks)}" if spec.tasks else ""
        run.progress(f"measuring {method}: perplexity ({spec.protocol}){tasks}, {spec.workload} latency and energy"
                     + (", interleaved with the base model" if paired_with is not None else ""))
        values, notes, ref_costs = measure_model(candidate.model, run.inputs(), spec, run.meter(), benchmark,
                                                 candidate.info, run.base().model if paired_with else None,
                                                 quality_memo=self._quality)
        record = self._record(case_id, method, values, tuple(candidate.notes) + tuple(notes))
        record = dataclasses.replace(record, dtype=_dtype_label(candidate.model))
        if paired_with is None or ref_costs is None:
            return record, None
        return dataclasses.replace(record, interleaved=True), self._paired(paired_with, ref_costs)

    def _paired(self, reference: CaseRecord, costs: dict[str, Any]) -> CaseRecord:
        """``reference`` with the cost figures measured next to a case (every cost-derived figure of
        the old measurement dropped, so none is left beside a missing one)."""
        kept = {k: v for k, v in reference.values.items() if k not in COST_DERIVED and not k.startswith("energy")}
        paired = dataclasses.replace(reference, values=kept | costs, notes=(
            *reference.notes, "time and energy measured interleaved with the case"))
        return self.session.score(paired, paired)

    def measure_case(self, candidate: Candidate, method: str, case_id: str, benchmark: Any = None,
                     case: CaseSettings | None = None) -> tuple[CaseRecord, CaseRecord]:
        """A candidate's record scored against the base model (interleaved with it unless
        --llmeff-unpaired or the deployment replay), and that reference."""
        from pytest_llmeff.measure.deployment import Deployment
        from pytest_llmeff.measure.workloads import parse_workload

        base = self.reference(case)
        replay = isinstance(parse_workload(self.session.spec(case).workload), Deployment)
        pair = self.session.options.paired and not replay
        record, paired = self.measure(candidate, method, case_id, benchmark, case, base if pair else None)
        reference = paired or base
        return self.session.score(record, reference), reference

    def _reference_key(self, case: CaseSettings | None) -> str:
        spec = self.session.spec(case)
        return f"{spec.workload}|{spec.tasks!r}"

    def has_reference(self, case: CaseSettings | None = None) -> bool:
        return self._reference_key(case) in self._references

    def has_cache_reference(self, replay: Any = None) -> bool:
        from pytest_llmeff.measure.caching import Replay

        return f"cache:{replay or Replay(seed=self.session.options.seed)}" in self._references

    def reference(self, case: CaseSettings | None = None, benchmark: Any = None, case_id: str = "") -> CaseRecord:
        """The base model measured under the case's workload and tasks (once per run)."""
        key = self._reference_key(case)
        if key not in self._references:
            base = Candidate(self.session.base().model)
            record, _ = self.measure(base, "base", case_id or "base", benchmark, case)
            self._references[key] = self.session.score(record, record)
        return self._references[key]

    def cache_case(self, strategy_text: str, case_id: str, benchmark: Any = None,
                   replay: Any = None) -> tuple[CaseRecord, CaseRecord]:
        """Measure a cache strategy on the replay list; returns (record, the no-cache reference)."""
        from pytest_llmeff.measure.caching import Replay, parse_strategy
        from pytest_llmeff.measure.case import measure_cache

        replay = replay or Replay(seed=self.session.options.seed)
        prompts = replay.build(self.session.eval_ids())
        model, tok, spec = self.session.base().model, self.session.base().tokenizer, self.session.spec()
        key = f"cache:{replay}"
        if key not in self._references:
            self.session.progress(f"measuring the no-cache reference on {len(prompts)} replayed prompts")
            measured = measure_cache(model, tok, prompts, replay.new_tokens, parse_strategy("none"), spec,
                                     self.session.meter(), benchmark if strategy_text == "none" else None)
            record = self._record(case_id, "cache:none", measured.values, measured.notes)
            self._references[key] = self.session.score(record, record)
            self._cache_answers[key] = measured.answers
        reference = self._references[key]
        if strategy_text == "none":
            return reference, reference
        pair = self.session.options.paired  # the no-cache replays timed again next to this case (see measure_case)
        self.session.progress(f"measuring cache strategy {strategy_text}"
                              + (", interleaved with the no-cache replay" if pair else ""))
        measured = measure_cache(model, tok, prompts, replay.new_tokens, parse_strategy(strategy_text), spec,
                                 self.session.meter(), benchmark, self._cache_answers[key],
                                 paired_with=parse_strategy("none") if pair else None)
        record = self._record(case_id, f"cache:{strategy_text}", measured.values, measured.notes)
        if measured.reference_costs is not None:
            reference = self._paired(reference, measured.reference_costs)
            record = dataclasses.replace(record, interleaved=True)
        return self.session.score(record, reference), reference

    def _record(self, case_id: str, method: str, values: dict[str, Any], notes: tuple[str, ...] = ()) -> CaseRecord:
        run = self.session
        return CaseRecord(case_id=case_id, method=method, model=run.options.model.name, device=run.device,
                          dtype=_dtype_label(run.base().model),
                          workload=values["time"].detail.workload, values=values, notes=notes)

    def retime(self, model: Any, record: CaseRecord, reference: CaseRecord,
               case: CaseSettings | None = None) -> tuple[CaseRecord, CaseRecord] | None:
        """``record`` and its paired ``reference`` measured once more, interleaved as before, with the
        new time and energy samples added to the old ones (medians over all); None for workloads
        measured without samples (the deployment replay)."""
        from pytest_llmeff.measure.costs import paired_costs

        if not record.values["time"].samples:
            return None
        run = self.session
        costs, ref_costs = paired_costs(model, run.inputs(), run.spec(case), run.meter(), None,
                                        run.base().model if record.interleaved else None)
        record = dataclasses.replace(record, values=_merged(record.values, costs.values))
        if ref_costs is not None:
            pooled = dataclasses.replace(reference, values=_merged(reference.values, ref_costs.values))
            reference = self.session.score(pooled, pooled)
        return self.session.score(record, reference), reference


def _merged(old: Any, new: dict[str, Any]) -> dict[str, Any]:
    """``old`` values with the sampled figures (time, energy) pooled with ``new`` ones."""
    from pytest_llmeff.verdicts import SAMPLED

    out = dict(old)
    for name in SAMPLED:
        before, after = old.get(name), new.get(name)
        if before is None or after is None or not before.samples or not after.samples:
            continue
        samples = [*before.samples, *after.samples]
        out[name] = dataclasses.replace(before, value=statistics.median(samples),
                                        detail=with_samples(before.detail, samples))
    return out


def _dtype_label(model: Any) -> str:
    quant = getattr(model, "quantization_config", None) or getattr(getattr(model, "config", None),
                                                                    "quantization_config", None)
    base = str(getattr(model, "dtype", "")).replace("torch.", "")
    if quant is not None:
        def field(name: str, default: Any = None) -> Any:  # gptqmodel keeps the config as a dict
            return quant.get(name, default) if isinstance(quant, dict) else getattr(quant, name, default)

        method = field("quant_method")
        method = getattr(method, "value", method)
        bits = "int8" if field("load_in_8bit", False) else field("bnb_4bit_quant_type", "")
        return f"{method}:{bits or field('bits', '?')} ({base} activations)"
    return base
