"""Time and energy of one workload call, for a candidate and the base model measured side by side.

The order of work for a case (see :mod:`pytest_llmeff.measure.steady` and
:mod:`pytest_llmeff.measure.windows` for why):

1. idle power, once per run, before the first window;
2. warm-up of both models until steady (no compiles, call time no longer falling);
3. time and energy from the same calls: windows of each model in the order A B B A (A B B A …),
   each inside one energy window and every call in it timed (pytest-benchmark times the
   candidate's), so a linear drift of the machine over the windows weighs on both alike; each
   window's energy is divided by exactly the calls made inside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pytest_llmeff.measure import latency
from pytest_llmeff.measure.deployment import Deployment, measure_deployment
from pytest_llmeff.measure.memory import peak_memory
from pytest_llmeff.measure.perplexity import ROLLING
from pytest_llmeff.measure.spec import EnergySettings, EvalInputs, MeasureSpec
from pytest_llmeff.measure.steady import WarmUp, warm_up
from pytest_llmeff.measure.windows import Windowed, plan_windows, run_windows
from pytest_llmeff.measure.workloads import Job, PerplexityPass, parse_workload
from pytest_llmeff.records import Measurement


@dataclass
class Costs:
    """Time and energy figures of one model (``values``), notes for the reader, peak memory."""

    values: dict[str, Measurement] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    peak: Any = None


def paired_costs(model: Any, inputs: EvalInputs, spec: MeasureSpec, meter: Any, benchmark: Any = None,
                 reference_model: Any = None) -> tuple[Costs, Costs | None]:
    """Costs of ``model`` and, given ``reference_model``, of the reference measured interleaved
    with it (``None`` otherwise). The deployment replay measures ``model`` alone."""
    workload = parse_workload(spec.workload)
    workload_id = workload.id(inputs.context_length)
    if isinstance(workload, Deployment):
        with peak_memory(spec.device) as peak:
            replayed, replay_notes = measure_deployment(model, workload, inputs.eval_ids, inputs.context_length,
                                                        spec.device, meter, benchmark)
        return Costs(replayed, list(replay_notes), peak), None
    jobs = [_job(workload, m, inputs, spec) for m in (model, reference_model) if m is not None]
    _idle_first(meter, spec)
    warm = warm_up([j.call for j in jobs])
    plan = plan_windows(warm.estimate_s, window_seconds(meter, spec), spec.min_seconds, spec.energy.repeats)
    with peak_memory(spec.device) as peak:
        measured = run_windows(benchmark, [j.call for j in jobs], plan, meter, spec.energy.cooldown_s)
    out = []
    for job, timing in zip(jobs, measured.timings, strict=True):
        costs = Costs(peak=peak)
        costs.values["time"] = time_measurement(timing, workload_id, job.tokens, spec, warm)
        if job.prefill is not None:
            costs.values.update(generation_values(job, timing.median_s))
        if note := warm.note():
            costs.notes.append(note)
        out.append(costs)
    add_energy(jobs, out, meter, spec, measured)
    return out[0], (out[1] if len(out) > 1 else None)


def _job(workload: Any, model: Any, inputs: EvalInputs, spec: MeasureSpec) -> Job:
    if isinstance(workload, PerplexityPass):
        protocol = spec.protocol if spec.protocol != ROLLING else ""
        return workload.build(model, inputs.eval_ids, spec.device, inputs.context_length, protocol)
    return workload.build(model, inputs.eval_ids, spec.device, inputs.context_length)


def window_seconds(meter: Any, spec: MeasureSpec) -> float:
    """How long each window lasts at least: the meter's minimum with a margin, and half the
    case's ``min_seconds`` (two windows per model fill it)."""
    return max(meter.min_window_s * latency.WINDOW_MARGIN, spec.min_seconds / 2)


def add_energy(jobs: list[Job], out: list[Costs], meter: Any, spec: MeasureSpec, measured: Windowed,
               units: int = 1) -> None:
    """Energy figures of every model from its windows' readings (median over windows of window
    energy / calls). ``units``: what one call holds (a cache replay answers that many prompts); the
    figures are per unit, like the time."""
    if not meter.meters:
        for costs in out:
            costs.notes.append("energy not measured: no energy meter (--llmeff-energy none)")
        return
    errors = measured.errors
    for job, costs, windows in zip(jobs, out, measured.readings, strict=True):
        if not windows:
            costs.notes.append(f"energy not measured: {errors[-1] if errors else 'no window could be read'}")
            continue
        per_unit = [(reading, calls * units) for reading, calls in windows]
        costs.values.update(energy_values(per_unit, meter, spec.energy, costs.values["time"].value,
                                          job.tokens, job.samples))


def _idle_first(meter: Any, spec: MeasureSpec) -> None:
    """Measure the run's idle power (once) before its first timed window rather than after it."""
    if spec.energy.idle and meter.meters:
        settle = 1.0 if spec.device.startswith("cuda") else 0.0  # GPU clocks stay up briefly after work
        meter.idle_power(max(spec.min_seconds / 2, meter.min_window_s), settle_s=settle)


def generation_values(job: Any, seconds_per_call: float) -> dict[str, Measurement]:
    """Seconds per sample, and tokens/s of the prefill (prompt pass, timed alone) and of the decode
    (the rest of the call): the two phases bound different hardware limits.

    The prompt pass already yields the first new token of each sample, so the decode interval
    holds ``new_tokens − 1`` forward steps per sample: decode tokens/s divides those, not every new
    token, by the decode time.
    """
    prefill = latency.run_plain(job.prefill, latency.plan(job.prefill, min_window_s=0.3, min_rounds=5)).median_s
    decode = max(seconds_per_call - prefill, 1e-9)
    decode_tokens = job.tokens - job.samples  # the first new token of each sample came from the prefill
    how = "perf_counter wall clock; decode = generate call − prefill pass"
    out = {
        "seconds_per_sample": Measurement(seconds_per_call / job.samples, "s", "median call / samples"),
        "prefill_tokens_per_s": Measurement(job.prompt_tokens / prefill, "tok/s", how,
                                            detail={"tokens": job.prompt_tokens, "seconds": prefill}),
    }
    if decode_tokens > 0:  # one new token: there is no decode step to time
        out["decode_tokens_per_s"] = Measurement(decode_tokens / decode, "tok/s", how + " (new tokens − 1 steps)",
                                                 detail={"tokens": decode_tokens, "seconds": decode})
    return out


def time_measurement(timing: latency.Timing, workload_id: str, tokens: int, spec: MeasureSpec,
                     warm: WarmUp | None = None) -> Measurement:
    """Median seconds per call, with every call's sample (noise-aware verdicts resample them), the
    threads torch used, and what warming up took."""
    from pytest_llmeff.details import TimeDetail, WarmUpDetail

    warmup = None if warm is None else WarmUpDetail(warm.calls, round(warm.seconds, 3), warm.compiles, warm.steady)
    detail = TimeDetail(
        workload=workload_id, statistic="median per call", rounds=timing.rounds, iterations=timing.iterations,
        device=spec.device, threads=spec.threads, tokens_per_call=tokens, mean_s=timing.mean_s,
        stddev_s=timing.stddev_s, min_s=timing.min_s, samples=tuple(timing.samples), warmup=warmup)
    return Measurement(timing.median_s, "s", timing.method, detail=detail)


def energy_values(windows: list[tuple[Any, int]], meter: Any, settings: EnergySettings, seconds_per_call: float,
                  tokens: int, samples: int) -> dict[str, Measurement]:
    """Per-call energy (median over windows), its split, idle/active share, per token, and CO2e."""
    from pytest_llmeff import carbon
    from pytest_llmeff.details import EnergyDetail
    from pytest_llmeff.measure.stats import summarize

    first = windows[0][0]
    per_window = [r.joules / c for r, c in windows]
    totals = summarize(per_window)
    out = {"energy": Measurement(totals.median, "J", first.method, first.estimated, detail=EnergyDetail(
        statistic=f"median over {totals.n} window(s) of window total / calls", windows=totals.n,
        calls=windows[0][1], window_s=round(first.seconds, 3), cv=round(totals.cv, 4),
        ci95=(totals.ci_low, totals.ci_high), samples=tuple(per_window)))}
    for comp, part in first.components.items():
        per_call = summarize([r.components[comp].joules / c for r, c in windows]).median
        out[f"energy.{comp}"] = Measurement(per_call, "J", part.method, part.estimated)
    if settings.idle:
        idle_w = sum(meter.idle_power().values())  # measured once, before the first window (_idle_first)
        # The idle power over the window's own length per call: the energy per call is the window's
        # total / calls, and that window also holds the time between calls and the meter's last step.
        idle = min(idle_w * summarize([r.seconds / c for r, c in windows]).median, totals.median)
        how = "idle power (measured once, process asleep) × window seconds / calls"
        out["energy.idle"] = Measurement(idle, "J", how, first.estimated)
        out["energy.active"] = Measurement(totals.median - idle, "J", "energy − idle", first.estimated)
    out["energy_per_token"] = Measurement(totals.median / tokens, "J", "energy / tokens per call", first.estimated)
    out["energy_per_sample"] = Measurement(totals.median / samples, "J", "energy / samples per call",
                                           first.estimated)
    if settings.region is not None:
        grams = carbon.operational_grams(totals.median, settings.region, settings.pue)
        how = (f"energy × {settings.region.g_per_kwh:g} gCO2e/kWh ({settings.region.region}: "
               f"{settings.region.source}) × PUE {settings.pue:g}")
        if settings.embodied:
            kg, years = settings.embodied
            grams += carbon.embodied_grams(seconds_per_call, kg, years)
            how += f" + embodied ({kg:g} kg chip over {years:g} years, by runtime)"
        out["co2e"] = Measurement(grams, "g", how, True)
    return out
