"""Measure one model: quality (perplexity), latency, energy and memory, each with its method."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_llmeff.measure import latency
from pytest_llmeff.measure.memory import peak_memory, weight_bytes
from pytest_llmeff.measure.perplexity import perplexity
from pytest_llmeff.measure.workloads import PerplexityPass, parse_workload
from pytest_llmeff.records import Measurement


@dataclass(frozen=True)
class MeasureSpec:
    """How a model is measured in this run (the same for the base and every candidate)."""

    workload: str
    protocol: str
    eval_windows: int | None
    min_seconds: float
    device: str
    dataset: str


def measure_model(model: Any, eval_ids: list[int], context_length: int, spec: MeasureSpec,
                  meter: Any, benchmark: Any = None) -> tuple[dict[str, Measurement], list[str]]:
    """All figures for ``model``: ``perplexity``, ``time``, ``energy`` (+ split), memory.

    Time and energy come from the same window: the workload runs ``rounds × iterations`` times
    under the energy meter, long enough for the meter's resolution; energy is divided by the
    number of calls. Returns the measurements and notes for the reader (e.g. why energy is absent).
    """
    notes: list[str] = []
    ppl = perplexity(model, eval_ids, spec.protocol, max_windows=spec.eval_windows)
    values: dict[str, Measurement] = {
        "perplexity": Measurement(ppl.value, "", ppl.protocol, detail={
            "dataset": spec.dataset, "tokens_scored": ppl.tokens_scored, "windows": ppl.windows,
            "dtype": ppl.dtype, "device": ppl.device, "seconds": round(ppl.seconds, 3)}),
    }

    workload = parse_workload(spec.workload)
    workload_id = workload.id(context_length)
    if isinstance(workload, PerplexityPass):
        job = workload.build(model, eval_ids, spec.device, context_length, spec.protocol)
    else:
        job = workload.build(model, eval_ids, spec.device, context_length)
    plan = latency.plan(job.call, min_window_s=max(spec.min_seconds, meter.min_window_s))
    with peak_memory(spec.device) as peak, meter.measure() as window:
        timing = (latency.run_with_benchmark(benchmark, job.call, plan) if benchmark is not None
                  else latency.run_plain(job.call, plan))
    values["time"] = Measurement(timing.median_s, "s", timing.method, detail={
        "workload": workload_id, "statistic": "median per call", "mean_s": timing.mean_s,
        "stddev_s": timing.stddev_s, "min_s": timing.min_s, "rounds": timing.rounds,
        "iterations": timing.iterations, "tokens_per_call": job.tokens,
        "device": spec.device})

    calls = timing.calls_made
    min_window = max(spec.min_seconds, meter.min_window_s)
    if window.reading is None and window.error and "too short" in window.error:
        # The timed window came out shorter than planned (the workload sped up after warm-up):
        # measure energy alone over a longer untimed loop rather than report nothing.
        longer = latency.extend(plan, timing.mean_s * timing.calls_made, min_window)
        with meter.measure() as window:
            calls = latency.run_plain(job.call, longer).calls_made
        notes.append(f"energy from a separate {longer.calls}-call window: the timed window was shorter "
                     f"than the meter's {min_window:g} s")
    if window.reading is None:
        notes.append(f"energy not measured: {window.error}")
    else:
        reading = window.reading
        values["energy"] = Measurement(reading.joules / calls, "J", reading.method, reading.estimated, detail={
            "statistic": "window total / calls", "window_s": round(reading.seconds, 3), "calls": calls,
            "per_token_j": reading.joules / calls / job.tokens})
        for comp in reading.components.values():
            values[f"energy.{comp.component}"] = Measurement(comp.joules / calls, "J", comp.method,
                                                             comp.estimated)
    values["weight_bytes"] = Measurement(weight_bytes(model), "B", "parameters + buffers as stored")
    values["parameters"] = Measurement(sum(p.numel() for p in model.parameters()), "",
                                       "parameter count (packed quantised tensors count stored elements)")
    if peak.bytes is not None:
        values["peak_memory_bytes"] = Measurement(peak.bytes, "B", "torch.cuda.max_memory_allocated",
                                                  detail={"workload": workload_id})
    return values, notes
