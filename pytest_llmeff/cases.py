"""A benchmark case as the test sees it: the ``llmeff`` fixture's object.

    @pytest.mark.llmeff(compressors=["base", "int8", "nf4"], budgets=["perplexity:+5%"])
    def test_quantization(llmeff, compressor):
        llmeff.run(compressor)

``run`` reads the case's budgets and settings from the marker, runs the case through
:func:`pytest_llmeff.flow.run_case` (compress, measure next to the base model, score, check the
budgets against base and stored baseline), records the result, and maps it to the test's outcome:
a failure with a readable report when a budget is broken, a skip where the method cannot run here,
a warning when the verdict is inconclusive or no baseline exists yet.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest

from pytest_llmeff.budgets import Budget, BudgetError, parse_budgets
from pytest_llmeff.compress import CompressError, Pipeline, Unsupported
from pytest_llmeff.flow import run_cache_case, run_case
from pytest_llmeff.registry import UnknownNameError
from pytest_llmeff.results import CaseResult, CaseSettings
from pytest_llmeff.session import Session


@contextlib.contextmanager
def clear_errors() -> Iterator[None]:
    """Configuration mistakes found while a case runs (a hub model that cannot be fetched, a dataset
    that cannot be loaded) fail the case with one line instead of a traceback; a requested energy
    meter this machine does not have skips it with the reason."""
    from pytest_llmeff.measure.energy import MeterUnavailable
    from pytest_llmeff.measure.tasks import TaskUnavailable
    from pytest_llmeff.measure.workloads import WorkloadError
    from pytest_llmeff.models.datasets import DatasetError
    from pytest_llmeff.models.loading import ModelLoadError

    failure = skipped = None
    try:
        yield
    except (ModelLoadError, DatasetError, WorkloadError) as exc:
        failure = str(exc)
    except MeterUnavailable as exc:  # a meter named with --llmeff-energy that this machine lacks
        skipped = f"energy meter unavailable: {exc}"
    except TaskUnavailable as exc:  # lm-eval cannot load a task's data here (offline)
        skipped = str(exc)
    # Without its context: pytest would print the error twice ("During handling of the above
    # exception, another exception occurred"); __exit__ still runs while the original is handled.
    if failure is not None:
        raise pytest.fail.Exception(failure, pytrace=False) from None
    if skipped is not None:
        pytest.skip(skipped)


class LlmeffWarning(UserWarning):
    """Something a benchmark reader must know that does not fail the case (e.g. no baseline yet)."""


BudgetSpec = Sequence[str] | Mapping[str, Sequence[str]]


def merge_budgets(defaults: Sequence[Budget], own: Sequence[Budget]) -> list[Budget]:
    """A case's own budgets replace default ones on the same metric and reference."""
    keys = {(b.metric, b.reference) for b in own}
    return [b for b in defaults if (b.metric, b.reference) not in keys] + list(own)


def budgets_for(spec: BudgetSpec | None, pipeline_id: str,
                canonical: Callable[[str], str] = lambda key: key) -> list[Budget]:
    """Budgets from a marker: a list for every case, or a dict keyed by pipeline id where ``"*"``
    applies to every case and a case's own entries replace ``"*"`` ones on the same metric.

    Keys are compared as parsed pipelines (``canonical``), so ``"kd + nf4"`` and, with
    --llmeff-allow-reorder, ``"nf4+kd"`` name the case ``kd+nf4``."""
    if spec is None:
        return []
    if isinstance(spec, Mapping):
        own = [b for key, texts in spec.items() if key != "*" and canonical(key) == pipeline_id
               for b in parse_budgets(texts)]
        return merge_budgets(parse_budgets(spec.get("*", [])), own)
    return parse_budgets(spec)


class _DeferredBenchmark:
    """Stands in for pytest-benchmark's fixture until an attribute of it is used."""

    def __init__(self, case: LlmeffCase) -> None:
        self._case = case

    def __getattr__(self, name: str) -> Any:
        return getattr(self._case._resolve_benchmark(), name)


class LlmeffCase:
    """Measure, record and assert one case. Built by the ``llmeff`` fixture."""

    def __init__(self, session: Session, node: Any, benchmark: Callable[[], Any],
                 marker_kwargs: Mapping[str, Any], hook: Any = None) -> None:
        self.session = session
        self.node = node
        self.node_id = node.nodeid
        # pytest-benchmark's fixture is requested only when this case times something: a case that
        # skips or reuses a measured reference leaves it alone (it warns when requested but unused).
        self._benchmark_factory = benchmark
        self._benchmark: Any = None
        self.marker = dict(marker_kwargs)
        self._hook = hook
        self.result: CaseResult | None = None

    @property
    def benchmark(self) -> Any:
        """pytest-benchmark's fixture, requested on first use: the measuring code receives this
        stand-in and touches it only when the timing starts, so a case that fails or skips before
        (a dataset too short, a meter this machine lacks, Ctrl-C) leaves the fixture unrequested."""
        return _DeferredBenchmark(self)

    def _resolve_benchmark(self) -> Any:
        if self._benchmark is None:
            self._benchmark = self._benchmark_factory()
        return self._benchmark

    @functools.cached_property
    def settings(self) -> CaseSettings:
        """The marker's ``workload=`` and ``tasks=`` (validated), else the run's."""
        from pytest_llmeff.measure.tasks import TaskError, parse_tasks
        from pytest_llmeff.measure.workloads import WorkloadError, parse_workload

        workload, tasks = self.marker.get("workload"), self.marker.get("tasks")
        try:
            if workload:
                parse_workload(str(workload))
            specs = None if tasks is None else tuple(parse_tasks(tasks if isinstance(tasks, str) else ",".join(tasks)))
        except (WorkloadError, TaskError) as exc:
            raise pytest.fail.Exception(f"{self.node_id}: {exc}", pytrace=False) from None
        return CaseSettings(str(workload) if workload else None, specs)

    def pipeline(self, compressor: str | Pipeline) -> Pipeline:
        if isinstance(compressor, Pipeline):
            return compressor
        try:
            return self.session.pipeline(compressor)
        except (UnknownNameError, CompressError) as exc:
            raise pytest.fail.Exception(str(exc), pytrace=False) from None

    def _canonical(self, key: str) -> str:
        """A budget key as the id of the pipeline it names (itself if it names none)."""
        if key.startswith("cache:"):
            return key
        try:
            return self.session.pipeline(key).id
        except (UnknownNameError, CompressError):
            return key

    def budgets(self, pipeline_id: str, extra: BudgetSpec | None = None) -> list[Budget]:
        try:
            own = (budgets_for(self.marker.get("budgets"), pipeline_id, self._canonical)
                   + budgets_for(extra, pipeline_id, self._canonical))
        except BudgetError as exc:
            raise pytest.fail.Exception(f"{self.node_id}: {exc}", pytrace=False) from None
        return merge_budgets(self.session.options.budgets, own)

    def run_cache(self, strategy: str, budgets: BudgetSpec | None = None, replay: Any = None) -> CaseResult:
        """Measure a caching strategy (``none``, ``static``, ``semantic``, ``kv-quantized`` …) on the
        replayed prompt list against the no-cache answers; see :mod:`pytest_llmeff.measure.caching`."""
        from pytest_llmeff.measure.caching import CacheError, parse_strategy, strategy_unavailable

        try:
            why = strategy_unavailable(parse_strategy(strategy))
        except (CacheError, UnknownNameError) as exc:
            raise pytest.fail.Exception(str(exc), pytrace=False) from None
        if why:
            pytest.skip(f"cache:{strategy}: {why}")
        checks = self.budgets(f"cache:{strategy}", budgets)
        with clear_errors():
            result = run_cache_case(self.session, strategy, checks, self.node_id, self.benchmark, replay)
        return self._conclude(f"cache:{strategy}", result)

    def _conclude(self, label: str, result: CaseResult) -> CaseResult:
        self.session.add(result)
        self.result = result
        self._annotate_benchmark(result)
        # JUnit XML properties (--junitxml): CI systems show them per test. Each figure's unit and
        # how it was obtained (measured or estimated, and by what) ride along as their own properties.
        for name, value in result.record.numbers().items():
            self.node.user_properties.append((f"llmeff.{name}", value))
            m = result.record.values.get(name)
            if m is not None and m.unit:
                self.node.user_properties.append((f"llmeff.{name}.unit", m.unit))
            if m is not None and (name in ("perplexity", "time", "energy") or name.startswith("energy.")):
                how = "estimated" if m.estimated else "measured"
                self.node.user_properties.append((f"llmeff.{name}.how", f"{how}: {m.method}"))
        self.node.user_properties.append(("llmeff.verdict", result.verdict))
        if self._hook is not None:
            self._hook.pytest_llmeff_record(result=result)
        failed = [b.message for b in result.budgets if b.failed]
        if failed:
            pytest.fail(f"{label}: budget broken\n  " + "\n  ".join(failed), pytrace=False)
        if result.verdict == "inconclusive":
            undecided = [b.message for b in result.budgets if b.status == "inconclusive"]
            message = f"{label}: timing noise leaves a budget undecided\n  " + "\n  ".join(undecided)
            if self.session.options.inconclusive == "fail":
                pytest.fail(message + "\n  (--llmeff-inconclusive fail)", pytrace=False)
            warnings.warn(LlmeffWarning(message), stacklevel=3)
        if result.verdict == "no baseline":
            message = f"{label}: {result.baseline_note}"
            if self.session.options.missing_baseline == "fail":
                pytest.fail(message + " (--llmeff-missing-baseline fail)", pytrace=False)
            warnings.warn(LlmeffWarning(message), stacklevel=3)
        return result

    def run(self, compressor: str | Pipeline, budgets: BudgetSpec | None = None) -> CaseResult:
        """Compress, measure, score and check ``compressor`` (a pipeline id such as ``"kd+nf4"``).

        Args:
            compressor: the pipeline (the ``compressor`` fixture gives one).
            budgets: more budgets for this call, on top of the marker's and the run's defaults.

        Returns:
            The :class:`~pytest_llmeff.results.CaseResult`; the test has already failed if a budget broke.
        """
        pipeline = self.pipeline(compressor)
        checks = self.budgets(pipeline.id, budgets)
        with clear_errors():
            try:
                result = run_case(self.session, pipeline, checks, self.node_id, self.benchmark, self.settings)
            except Unsupported as exc:
                pytest.skip(f"{pipeline.id}: {exc}")
        return self._conclude(pipeline.id, result)

    def _annotate_benchmark(self, result: CaseResult) -> None:
        """Put llmeff's figures into pytest-benchmark's ``extra_info`` (saved with --benchmark-autosave)."""
        info = getattr(self._benchmark, "extra_info", None)
        if info is None:
            return
        from pytest_llmeff.benchmark_save import extra_info

        info["llmeff"] = extra_info(result)
