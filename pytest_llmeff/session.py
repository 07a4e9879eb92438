"""The run: resolved options, the base model and text (loaded once), references, results, baselines.

Built once per pytest session (``pytest_configure``); knows nothing about pytest itself, so it can
be driven from a script too. Heavy libraries are imported on first use, not when it is built —
except torch on GPU runs, where the device must be checked before any case starts.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_llmeff.budgets import Budget, BudgetResult
from pytest_llmeff.compress import Candidate, CompressContext, Pipeline, parse_pipeline
from pytest_llmeff.devices import resolve_device
from pytest_llmeff.fingerprint import library_differences, machine_fingerprint
from pytest_llmeff.measure.case import EvalInputs, MeasureSpec, measure_model
from pytest_llmeff.options import Options
from pytest_llmeff.records import CaseRecord
from pytest_llmeff.results import CaseResult, CaseSettings
from pytest_llmeff.score import RecordScorer
from pytest_llmeff.store import BaselineChange, BaselineError, BaselineStore
from pytest_llmeff.verdicts import NoiseSettings, judge

# Record fields that must agree before two records' numbers may be compared.
COMPARABLE_FIELDS = ("workload", "device", "model")


class Session:
    """One llmeff run. ``progress`` prints a line to the terminal (long phases announce themselves)."""

    def __init__(self, options: Options, progress: Callable[[str], None] = print,
                 machine_info: dict[str, Any] | None = None, worker: int | None = None) -> None:
        self.options = options
        self.progress = progress
        self.worker = worker  # pytest-xdist worker number; None in the controller or a serial run
        self.device, accelerator = resolve_device(options.device, worker)
        self.dtype = "float32" if options.dtype == "auto" else options.dtype
        self.fingerprint = machine_fingerprint(self.device, accelerator, machine_info)
        self.store = BaselineStore(options.baselines, self.fingerprint, options.model.name,
                                   options.baseline_machine, options.force_compare)
        self.store.load()  # corrupt or foreign files fail now, before any case runs
        self.scorer = RecordScorer(options.weights, options.opt_metrics)
        self.results: list[CaseResult] = []
        self.accepted: dict[str, CaseRecord] = {}
        self.baseline_changes: list[BaselineChange] = []
        self.errors: list[str] = []  # files the run was asked for that could not be written (one line each)
        self._references: dict[str, CaseRecord] = {}
        self._prefixes: dict[str, Candidate] = {}  # structural pipeline prefixes, reused by later cases
        self._cache_answers: dict[str, list[list[int]]] = {}  # no-cache answers per replay list
        self._base: Any = None
        self._text: Any = None
        self._eval_ids: list[int] | None = None
        self._meter: Any = None
        self._workdir = Path(tempfile.mkdtemp(prefix="llmeff-"))

    # ------------------------------------------------------------------ lazily loaded resources
    def base(self) -> Any:
        """The base model (``LoadedModel``), loaded on first use."""
        if isinstance(self._base, Exception):
            raise self._base  # a failed load is not retried by every case
        if self._base is None:
            from pytest_llmeff.models.loading import ModelLoadError, load_model

            self.progress(f"loading model {self.options.model.name!r} ({self.dtype}) on {self.device}")
            try:
                self._base = load_model(self.options.model, self.device, self.dtype)
            except ModelLoadError as exc:
                self._base = exc
                raise
            self.progress(f"model loaded: {self._base.parameters:,} parameters")
        return self._base

    def text(self) -> Any:
        if self._text is None:
            from pytest_llmeff.models.datasets import load_text_data

            self._text = load_text_data(self.options.dataset)
        return self._text

    def eval_ids(self) -> list[int]:
        if self._eval_ids is None:
            from pytest_llmeff.models.datasets import check_length

            ids = list(self.base().tokenizer(self.text().eval_text)["input_ids"])
            check_length(self.options.dataset, len(ids), self.protocol())  # too short: one clear line
            self._eval_ids = ids
        return self._eval_ids

    def built_meter(self) -> Any:
        """The energy meter if a case has built it (reports must not build one), else None."""
        return None if self._meter is None or isinstance(self._meter, Exception) else self._meter

    def inputs(self) -> EvalInputs:
        base = self.base()
        return EvalInputs(self.eval_ids(), self.text().documents, base.tokenizer, base.context_length,
                          self._workdir)

    def meter(self) -> Any:
        if isinstance(self._meter, Exception):
            raise self._meter
        if self._meter is None:
            from pytest_llmeff.measure.energy import MeterUnavailable, build_meter

            index = int(self.device.split(":")[1]) if ":" in self.device else 0
            try:
                self._meter = build_meter(self.device, self.options.energy, [index], self.options.ram_dimms)
            except MeterUnavailable as exc:
                self._meter = exc
                raise
        return self._meter

    def protocol(self) -> str:
        return self.options.protocol or f"nonoverlap-{min(self.base().context_length, 1024)}"

    # ------------------------------------------------------------------ compress
    def pipeline(self, text: str) -> Pipeline:
        return parse_pipeline(text, allow_reorder=self.options.allow_reorder,
                              registry=self.options.compressor_registry)

    def context(self) -> CompressContext:
        return CompressContext(base=self.base(), text=self.text, workdir=self._workdir,
                               cache_dir=self.options.cache_dir, seed=self.options.seed,
                               progress=self.progress)

    def compress(self, pipeline: Pipeline) -> Candidate:
        """Apply ``pipeline`` to the base model (raises ``Unsupported`` where it cannot run here)."""
        ctx = self.context()
        pipeline.check(ctx)
        return pipeline.apply(Candidate(self.base().model), ctx, self._prefixes)

    # ------------------------------------------------------------------ measure and score
    def spec(self, case: CaseSettings | None = None) -> MeasureSpec:
        case = case or CaseSettings()
        return MeasureSpec(workload=case.workload or self.options.workload, protocol=self.protocol(),
                           eval_windows=self.options.eval_windows, min_seconds=self.options.min_seconds,
                           device=self.device, dataset=self.options.dataset, energy=self.options.energy_settings,
                           tasks=self.options.tasks if case.tasks is None else case.tasks,
                           compile=self.options.compile)

    def measure(self, candidate: Candidate, method: str, case_id: str, benchmark: Any = None,
                case: CaseSettings | None = None) -> CaseRecord:
        spec = self.spec(case)
        tasks = f", tasks {', '.join(t.name for t in spec.tasks)}" if spec.tasks else ""
        self.progress(f"measuring {method}: perplexity ({spec.protocol}){tasks}, {spec.workload} latency and energy")
        values, notes = measure_model(candidate.model, self.inputs(), spec, self.meter(), benchmark,
                                      candidate.info)
        record = self._record(case_id, method, values, tuple(candidate.notes) + tuple(notes))
        return CaseRecord(**{**record.__dict__, "dtype": _dtype_label(candidate.model)})

    def paired_reference(self, reference: CaseRecord, case: CaseSettings | None = None) -> CaseRecord:
        """The base model timed again right next to a candidate, quality kept from ``reference``.

        Ratios then compare two timings taken under the same machine conditions instead of
        minutes apart: on a shared machine the speed of everything drifts by more than many of the
        effects measured here. Off with --llmeff-unpaired, and for the deployment replay.
        """
        from pytest_llmeff.measure.case import cost_values
        from pytest_llmeff.measure.deployment import Deployment
        from pytest_llmeff.measure.workloads import parse_workload

        spec = self.spec(case)
        if not self.options.paired or isinstance(parse_workload(spec.workload), Deployment):
            return reference
        costs, _, _ = cost_values(self.base().model, self.inputs(), spec, self.meter())
        values = {k: v for k, v in reference.values.items() if not k.startswith("energy")} | costs
        paired = CaseRecord(**{**reference.__dict__, "values": values,
                               "notes": (*reference.notes, "time and energy re-measured next to the case")})
        return self.score(paired, paired)

    def _reference_key(self, case: CaseSettings | None) -> str:
        spec = self.spec(case)
        return f"{spec.workload}|{spec.tasks!r}"

    def has_reference(self, case: CaseSettings | None = None) -> bool:
        return self._reference_key(case) in self._references

    def has_cache_reference(self, replay: Any = None) -> bool:
        from pytest_llmeff.measure.caching import Replay

        return f"cache:{replay or Replay(seed=self.options.seed)}" in self._references

    def reference(self, case: CaseSettings | None = None, benchmark: Any = None, case_id: str = "") -> CaseRecord:
        """The base model measured under the case's workload and tasks (once per run)."""
        key = self._reference_key(case)
        if key not in self._references:
            base = Candidate(self.base().model)
            record = self.measure(base, "base", case_id or "base", benchmark, case)
            self._references[key] = self.score(record, record)
        return self._references[key]

    def cache_case(self, strategy_text: str, case_id: str, benchmark: Any = None,
                   replay: Any = None) -> tuple[CaseRecord, CaseRecord]:
        """Measure a cache strategy on the replay list; returns (record, the no-cache reference)."""
        from pytest_llmeff.measure.caching import Replay, parse_strategy
        from pytest_llmeff.measure.case import measure_cache

        replay = replay or Replay(seed=self.options.seed)
        prompts = replay.build(self.eval_ids())
        model, tok, spec = self.base().model, self.base().tokenizer, self.spec()
        key = f"cache:{replay}"
        if key not in self._references:
            self.progress(f"measuring the no-cache reference on {len(prompts)} replayed prompts")
            values, answers = measure_cache(model, tok, prompts, replay.new_tokens, parse_strategy("none"),
                                            spec, self.meter(), benchmark if strategy_text == "none" else None)
            record = self._record(case_id, "cache:none", values)
            self._references[key] = self.score(record, record)
            self._cache_answers[key] = answers
        reference = self._references[key]
        if strategy_text == "none":
            return reference, reference
        self.progress(f"measuring cache strategy {strategy_text}")
        values, _ = measure_cache(model, tok, prompts, replay.new_tokens, parse_strategy(strategy_text), spec,
                                  self.meter(), benchmark, self._cache_answers[key])
        if self.options.paired:  # the no-cache answers timed again next to this case (see paired_reference)
            again, _ = measure_cache(model, tok, prompts, replay.new_tokens, parse_strategy("none"), spec,
                                     self.meter(), None, self._cache_answers[key])
            reference = CaseRecord(**{**reference.__dict__, "values": again,
                                      "notes": (*reference.notes, "time and energy re-measured next to the case")})
            reference = self.score(reference, reference)
        return self.score(self._record(case_id, f"cache:{strategy_text}", values), reference), reference

    def _record(self, case_id: str, method: str, values: dict[str, Any], notes: tuple[str, ...] = ()) -> CaseRecord:
        return CaseRecord(case_id=case_id, method=method, model=self.options.model.name, device=self.device,
                          dtype=_dtype_label(self.base().model),
                          workload=values["time"].detail.get("workload", ""), values=values, notes=notes)

    def score(self, record: CaseRecord, reference: CaseRecord) -> CaseRecord:
        """``record`` with its opt scores (every preset, plus the run's weights as ``run``)."""
        opts, left_out = self.scorer.scores(record.numbers(), reference.numbers())
        if opts is None:
            return record
        notes = tuple(n for n in record.notes if "left out of the opt score" not in n) + tuple(left_out)
        return CaseRecord(**{**record.__dict__, "opt": opts, "notes": notes})

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
                               NoiseSettings(seed=self.options.seed))
            results.append(result)
        return CaseResult(record.case_id, record, reference, baseline, note, results)

    def add(self, result: CaseResult) -> None:
        """Keep a finished case for the summary and, if it passes, for the baselines."""
        self.results.append(result)

    def retime(self, model: Any, record: CaseRecord, case: CaseSettings | None = None) -> CaseRecord | None:
        """``record`` with as many timing rounds again (plain perf_counter loop, same plan), or None
        for workloads that cannot be repeated this way (the deployment replay)."""
        from pytest_llmeff.measure import latency
        from pytest_llmeff.measure.case import time_measurement
        from pytest_llmeff.measure.workloads import PerplexityPass, parse_workload

        spec = self.spec(case)
        workload = parse_workload(spec.workload)
        old = record.values["time"]
        if not hasattr(workload, "build") or "samples" not in old.detail:
            return None
        inputs = self.inputs()
        extra = (workload.build(model, inputs.eval_ids, self.device, inputs.context_length, "")
                 if isinstance(workload, PerplexityPass)
                 else workload.build(model, inputs.eval_ids, self.device, inputs.context_length))
        timing = latency.run_plain(extra.call, latency.TimingPlan(old.detail["rounds"], old.detail["iterations"], 0, 0))
        merged = latency.Timing(tuple(old.detail["samples"]) + timing.samples, timing.iterations,
                                f"{old.method} + {timing.method} (rerun)", 0)
        values = dict(record.values)
        values["time"] = time_measurement(merged, old.detail["workload"], old.detail["tokens_per_call"], self.device)
        return CaseRecord(**{**record.__dict__, "values": values})

    def accept(self, case_id: str) -> None:
        """Called for cases that passed: their records may become baselines."""
        for result in self.results:
            if result.case_id == case_id:
                self.accepted[case_id] = result.record

    def finish(self, write: bool = True) -> None:
        """Write accepted baselines (only with --llmeff-update-baselines), the run JSON and reports,
        then clean up. xdist workers pass ``write=False``: their controller writes once for all."""
        if write:
            if self.options.update_baselines and self.accepted:
                try:
                    self.baseline_changes = self.store.write(self.accepted)
                except BaselineError as exc:  # e.g. a read-only folder: said once, the other outputs still written
                    self.errors.append(str(exc))
            self.write_outputs()
        if self._meter is not None and not isinstance(self._meter, Exception):
            self._meter.close()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def merge(self, results: list[dict[str, Any]], accepted: list[str]) -> None:
        """Take a worker's finished cases (pytest-xdist controller)."""
        for data in results:
            result = CaseResult.from_json(data)
            self.results.append(result)
            if result.case_id in accepted:
                self.accepted[result.case_id] = result.record

    def write_outputs(self) -> None:
        import dataclasses

        from pytest_llmeff.report_files import write_run_outputs

        # One file at a time, so that one that cannot be written does not keep the others from it.
        for name, flag in (("json_path", "--llmeff-json"), ("report_dir", "--llmeff-report"),
                           ("markdown_path", "--llmeff-markdown")):
            target = getattr(self.options, name)
            if target is None:
                continue
            only = dataclasses.replace(self.options, **{"json_path": None, "report_dir": None,
                                                        "markdown_path": None, name: target})
            try:
                write_run_outputs(self.results, only, self.fingerprint, self.device)
            except OSError as exc:
                self.errors.append(f"{flag}: cannot write {exc.filename or target}: {exc.strerror or exc}; "
                                   "make it writable or choose another path")

    def library_drift(self) -> list[str]:
        """Library versions that differ from those the stored baselines were recorded with."""
        if not self.store.path.exists():
            return []
        import json

        stored = json.loads(self.store.path.read_text()).get("fingerprint", {})
        return library_differences(stored, self.fingerprint)


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
