"""The run: resolved options, the base model and text (loaded once), references, results, baselines.

Built once per pytest session (``pytest_configure``); knows nothing about pytest itself, so it can
be driven from a script too. Heavy libraries are imported on first use, not when it is built —
except torch on GPU runs, where the device must be checked before any case starts.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llmeff.budgets import Budget, BudgetResult
from pytest_llmeff.compress import Candidate, CompressContext, Pipeline, parse_pipeline
from pytest_llmeff.fingerprint import library_differences, machine_fingerprint
from pytest_llmeff.measure.case import EvalInputs, MeasureSpec, measure_model
from pytest_llmeff.metrics import METRICS, get_metric
from pytest_llmeff.options import OptionError, Options
from pytest_llmeff.records import CaseRecord
from pytest_llmeff.score import PRESETS, opt_breakdown
from pytest_llmeff.store import BaselineChange, BaselineStore

# Record fields that must agree before two records' numbers may be compared.
COMPARABLE_FIELDS = ("workload", "device", "model")


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

    @property
    def verdict(self) -> str:
        if any(b.failed for b in self.budgets):
            return "fail"
        if any(b.status == "missing" and b.budget.reference == "baseline" for b in self.budgets):
            return "no baseline"
        if any(b.status == "missing" for b in self.budgets):
            return "inconclusive"
        return "pass"


def resolve_device(requested: str) -> tuple[str, dict[str, Any] | None]:
    """``auto`` / ``cpu`` / ``cuda[:N]`` → the device to use and, on GPU, facts about the card."""
    if requested == "cpu":
        return "cpu", None
    import torch

    if not torch.cuda.is_available():
        if requested == "auto":
            return "cpu", None
        built = f"CUDA {torch.version.cuda}" if torch.version.cuda else "no CUDA support (a CPU build)"
        raise OptionError(f"--llmeff-device {requested}: no CUDA device is visible "
                          f"(torch {torch.__version__} has {built}); use --llmeff-device cpu or auto")
    device = "cuda:0" if requested in ("auto", "cuda") else requested
    index = int(device.split(":")[1])
    if index >= torch.cuda.device_count():
        raise OptionError(f"--llmeff-device {requested}: only {torch.cuda.device_count()} CUDA device(s)")
    props = torch.cuda.get_device_properties(index)
    info: dict[str, Any] = {"name": props.name, "memory_bytes": int(props.total_memory),
                            "capability": f"{props.major}.{props.minor}", "cuda": torch.version.cuda}
    info.update(_nvml_facts(index))
    return device, info


def _nvml_facts(index: int) -> dict[str, Any]:
    try:
        import pynvml

        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(index)
        return {"uuid": pynvml.nvmlDeviceGetUUID(h), "driver": pynvml.nvmlSystemGetDriverVersion(),
                "power_limit_w": pynvml.nvmlDeviceGetPowerManagementLimit(h) / 1000}
    except Exception:  # NVML absent or restricted: the card's name from torch is still recorded
        return {}


class Session:
    """One llmeff run. ``progress`` prints a line to the terminal (long phases announce themselves)."""

    def __init__(self, options: Options, progress: Callable[[str], None] = print,
                 machine_info: dict[str, Any] | None = None) -> None:
        self.options = options
        self.progress = progress
        self.device, accelerator = resolve_device(options.device)
        self.dtype = "float32" if options.dtype == "auto" else options.dtype
        self.fingerprint = machine_fingerprint(self.device, accelerator, machine_info)
        self.store = BaselineStore(options.baselines, self.fingerprint, options.model.name)
        self.store.load()  # corrupt or foreign files fail now, before any case runs
        self.results: list[CaseResult] = []
        self.accepted: dict[str, CaseRecord] = {}
        self.baseline_changes: list[BaselineChange] = []
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
            self._eval_ids = list(self.base().tokenizer(self.text().eval_text)["input_ids"])
        return self._eval_ids

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
                           tasks=self.options.tasks if case.tasks is None else case.tasks)

    def measure(self, candidate: Candidate, method: str, case_id: str, benchmark: Any = None,
                case: CaseSettings | None = None) -> CaseRecord:
        spec = self.spec(case)
        tasks = f", tasks {', '.join(t.name for t in spec.tasks)}" if spec.tasks else ""
        self.progress(f"measuring {method}: perplexity ({spec.protocol}){tasks}, {spec.workload} latency and energy")
        values, notes = measure_model(candidate.model, self.inputs(), spec, self.meter(), benchmark,
                                      candidate.info)
        record = self._record(case_id, method, values, tuple(candidate.notes) + tuple(notes))
        return CaseRecord(**{**record.__dict__, "dtype": _dtype_label(candidate.model)})

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
        return self.score(self._record(case_id, f"cache:{strategy_text}", values), reference), reference

    def _record(self, case_id: str, method: str, values: dict[str, Any], notes: tuple[str, ...] = ()) -> CaseRecord:
        return CaseRecord(case_id=case_id, method=method, model=self.options.model.name, device=self.device,
                          dtype=_dtype_label(self.base().model),
                          workload=values["time"].detail.get("workload", ""), values=values, notes=notes)

    def score(self, record: CaseRecord, reference: CaseRecord) -> CaseRecord:
        """``record`` with its opt scores (every preset, plus the run's weights as ``run``)."""
        cand = _opt_inputs(record, self.options.opt_metrics)
        base = _opt_inputs(reference, self.options.opt_metrics)
        if cand is None or base is None:
            return record
        opts = {name: opt_breakdown(base, cand, name).opt for name in PRESETS}
        opts["run"] = opt_breakdown(base, cand, self.options.weights).opt
        return CaseRecord(**{**record.__dict__, "opt": opts})

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
            results.append(result)
        case = CaseResult(record.case_id, record, reference, baseline, note, results)
        self.results.append(case)
        return case

    def accept(self, case_id: str) -> None:
        """Called for cases that passed: their records may become baselines."""
        for result in self.results:
            if result.case_id == case_id:
                self.accepted[case_id] = result.record

    def finish(self) -> None:
        """Write accepted baselines (only with --llmeff-update-baselines) and clean up."""
        if self.options.update_baselines and self.accepted:
            self.baseline_changes = self.store.write(self.accepted)
        if self._meter is not None and not isinstance(self._meter, Exception):
            self._meter.close()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def library_drift(self) -> list[str]:
        """Library versions that differ from those the stored baselines were recorded with."""
        if not self.store.path.exists():
            return []
        import json

        stored = json.loads(self.store.path.read_text()).get("fingerprint", {})
        return library_differences(stored, self.fingerprint)


def opt_quality(values: dict[str, float], selection: tuple[str, ...] | None) -> dict[str, float]:
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


def _opt_inputs(record: CaseRecord, selection: tuple[str, ...] | None) -> dict[str, float] | None:
    values = record.numbers()
    if "time" not in values or "energy" not in values:
        return None
    return {"time": values["time"], "energy": values["energy"], **opt_quality(values, selection)}


def _dtype_label(model: Any) -> str:
    quant = getattr(model, "quantization_config", None) or getattr(getattr(model, "config", None),
                                                                    "quantization_config", None)
    base = str(getattr(model, "dtype", "")).replace("torch.", "")
    if quant is not None:
        method = getattr(quant, "quant_method", None)
        method = getattr(method, "value", method)
        bits = "int8" if getattr(quant, "load_in_8bit", False) else getattr(quant, "bnb_4bit_quant_type", "")
        return f"{method}:{bits or getattr(quant, 'bits', '?')} ({base} activations)"
    return base
