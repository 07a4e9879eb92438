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

from pytest_llmeff.compress import Candidate, CompressContext, Pipeline, parse_pipeline
from pytest_llmeff.devices import resolve_device
from pytest_llmeff.fingerprint import library_differences, machine_fingerprint
from pytest_llmeff.judge import Judge
from pytest_llmeff.measure.case import EvalInputs, MeasureSpec
from pytest_llmeff.options import Options
from pytest_llmeff.records import CaseRecord
from pytest_llmeff.references import References
from pytest_llmeff.results import CaseResult, CaseSettings
from pytest_llmeff.store import BaselineChange, BaselineError, BaselineStore


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
        self.judge = Judge(options, self.store)
        self.score, self.check = self.judge.score, self.judge.check  # the session's verbs for a case
        self.references = References(self)
        self.results: list[CaseResult] = []
        self.accepted: dict[str, CaseRecord] = {}
        self.baseline_changes: list[BaselineChange] = []
        self.errors: list[str] = []  # files the run was asked for that could not be written (one line each)
        self._pipelines: dict[str, Pipeline] = {}  # pipeline text → parsed (see pipeline)
        self._prefixes: dict[str, Candidate] = {}  # structural pipeline prefixes, reused by later cases
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
            from pytest_llmeff.measure.threads import apply
            from pytest_llmeff.models.loading import ModelLoadError, load_model

            threads = apply(self.options.threads)
            self.progress(f"loading model {self.options.model.name!r} ({self.dtype}) on {self.device}; "
                          f"torch uses {threads} CPU thread(s)")
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
        """``text`` parsed and validated, once per run: collection checks it, and the fixture, the
        case and its budget keys get the same object."""
        if text not in self._pipelines:
            self._pipelines[text] = parse_pipeline(text, allow_reorder=self.options.allow_reorder,
                                                   registry=self.options.compressor_registry)
        return self._pipelines[text]

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
                           compile=self.options.compile, threads=self.options.threads)

    def add(self, result: CaseResult) -> None:
        """Keep a finished case for the summary and, if it passes, for the baselines."""
        self.results.append(result)

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

        maps = None
        loaded = self._base is not None and not isinstance(self._base, Exception)  # no load for a picture
        if self.options.report_dir and self.results and loaded:
            from pytest_llmeff.compress.maps import pruning_maps  # the base model's pruning pictures

            maps = pruning_maps(self.context())
        # One file at a time, so that one that cannot be written does not keep the others from it.
        for name, flag in (("json_path", "--llmeff-json"), ("report_dir", "--llmeff-report"),
                           ("markdown_path", "--llmeff-markdown")):
            target = getattr(self.options, name)
            if target is None:
                continue
            only = dataclasses.replace(self.options, **{"json_path": None, "report_dir": None,
                                                        "markdown_path": None, name: target})
            try:
                write_run_outputs(self.results, only, self.fingerprint, self.device, maps)
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
