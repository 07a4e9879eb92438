"""Measure one model: quality (perplexity), latency, energy and memory, each with its method."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llmeff.measure import latency
from pytest_llmeff.measure.deployment import Deployment, measure_deployment
from pytest_llmeff.measure.memory import peak_memory, weight_bytes
from pytest_llmeff.measure.perplexity import ROLLING, perplexity, rolling_perplexity
from pytest_llmeff.measure.workloads import PerplexityPass, parse_workload
from pytest_llmeff.records import Measurement


@dataclass(frozen=True)
class EnergySettings:
    """How energy windows are repeated and turned into derived figures.

    Attributes:
        repeats: measured windows per case (median reported, with CV and a 95 % interval).
        cooldown_s: pause before each extra window (lets clocks and temperatures settle).
        idle: measure the idle power once and split each figure into idle (static) and active.
        region: grid intensity for CO2e (``carbon.Intensity``); None: no carbon figure.
        pue: facility overhead applied to the carbon figure.
        embodied: (chip kg CO2e, lifetime years) for an embodied share; None: operational only.
    """

    repeats: int = 1
    cooldown_s: float = 0.0
    idle: bool = True
    region: Any = None
    pue: float = 1.0
    embodied: tuple[float, float] | None = None


@dataclass(frozen=True)
class MeasureSpec:
    """How a model is measured in this run (the same for the base and every candidate)."""

    workload: str
    protocol: str
    eval_windows: int | None
    min_seconds: float
    device: str
    dataset: str
    energy: EnergySettings = EnergySettings()
    tasks: tuple[Any, ...] = ()  # measure.tasks.TaskSpec
    compile: bool = False  # torch.compile the model for the perplexity evaluation


@dataclass(frozen=True)
class EvalInputs:
    """The run's evaluation material, shared by every case."""

    eval_ids: list[int]  # the evaluation text as one token stream
    documents: tuple[str, ...]  # the same text as documents (document-level protocols)
    tokenizer: Any
    context_length: int
    workdir: Path  # where lm-eval's local task files are written


def quality_values(model: Any, inputs: EvalInputs, spec: MeasureSpec) -> dict[str, Measurement]:
    """Perplexity under the run's protocol, and the run's lm-eval task scores."""
    if spec.protocol == ROLLING:
        r = rolling_perplexity(model, inputs.tokenizer, inputs.documents, max_documents=spec.eval_windows)
        detail = {"dataset": spec.dataset, "documents": r.documents, "tokens_scored": r.tokens_scored,
                  "words": r.words, "bytes": r.bytes, "dtype": r.dtype, "device": r.device,
                  "seconds": round(r.seconds, 3)}
        values = {
            "perplexity": Measurement(r.word_perplexity, "", f"{ROLLING} (word)", detail=detail),
            "word_perplexity": Measurement(r.word_perplexity, "", ROLLING),
            "byte_perplexity": Measurement(r.byte_perplexity, "", ROLLING),
            "bits_per_byte": Measurement(r.bits_per_byte, "", ROLLING),
        }
    else:
        evaluated, compiled = _maybe_compiled(model, spec.compile)
        try:
            ppl = perplexity(evaluated, inputs.eval_ids, spec.protocol, max_windows=spec.eval_windows)
        except Exception:  # a model torch.compile cannot trace (quantised kernels…): evaluate it eagerly
            if not compiled:
                raise
            compiled = False
            ppl = perplexity(model, inputs.eval_ids, spec.protocol, max_windows=spec.eval_windows)
        values = {"perplexity": Measurement(ppl.value, "", ppl.protocol, detail={
            "dataset": spec.dataset, "tokens_scored": ppl.tokens_scored, "windows": ppl.windows,
            "window": ppl.window,
            "dtype": ppl.dtype, "device": ppl.device, "seconds": round(ppl.seconds, 3),
            "tokens_per_s": round(ppl.tokens_scored / ppl.seconds, 1), "compiled": compiled})}
    if spec.tasks:
        from pytest_llmeff.measure.tasks import run_tasks

        for name, row in run_tasks(model, inputs.tokenizer, list(spec.tasks), inputs.workdir).items():
            limit = f", first {row['limit']} documents" if row["limit"] else ""
            values[name] = Measurement(row["value"], "", f"lm-eval {name} {row['fewshot']}-shot {row['metric']}{limit}",
                                       detail={"stderr": row["stderr"], **row["extra"]})
    return values


def _maybe_compiled(model: Any, wanted: bool) -> tuple[Any, bool]:
    if not wanted:
        return model, False
    import torch

    try:
        return torch.compile(model), True
    except Exception:  # no compiler toolchain, unsupported module: evaluate eagerly
        return model, False


def measure_model(model: Any, inputs: EvalInputs, spec: MeasureSpec, meter: Any, benchmark: Any = None,
                  info: dict[str, float] | None = None) -> tuple[dict[str, Measurement], list[str]]:
    """All figures for ``model``: ``perplexity``, ``time``, ``energy`` (+ split), memory.

    Time and energy come from the same window: the workload runs ``rounds × iterations`` times
    under the energy meter, long enough for the meter's resolution; energy is divided by the
    number of calls. Returns the measurements and notes for the reader (e.g. why energy is absent).
    """
    values = quality_values(model, inputs, spec)
    costs, notes, peak = cost_values(model, inputs, spec, meter, benchmark)
    values.update(costs)
    return _with_memory(values, model, info, peak, costs["time"].detail.get("workload", spec.workload)), notes


def cost_values(model: Any, inputs: EvalInputs, spec: MeasureSpec, meter: Any,
                benchmark: Any = None) -> tuple[dict[str, Measurement], list[str], Any]:
    """Time and energy of the run's workload (and peak accelerator memory over it)."""
    notes: list[str] = []
    values: dict[str, Measurement] = {}
    eval_ids, context_length = inputs.eval_ids, inputs.context_length
    workload = parse_workload(spec.workload)
    workload_id = workload.id(context_length)
    if isinstance(workload, Deployment):
        with peak_memory(spec.device) as peak:
            replayed, replay_notes = measure_deployment(model, workload, eval_ids, context_length, spec.device,
                                                        meter, benchmark)
        return replayed, replay_notes, peak
    if isinstance(workload, PerplexityPass):
        protocol = spec.protocol if spec.protocol != ROLLING else ""
        job = workload.build(model, eval_ids, spec.device, context_length, protocol)
    else:
        job = workload.build(model, eval_ids, spec.device, context_length)
    _idle_first(meter, spec)
    plan = latency.plan(job.call, min_window_s=max(spec.min_seconds, meter.min_window_s))
    with peak_memory(spec.device) as peak, meter.measure() as window:
        timing = (latency.run_with_benchmark(benchmark, job.call, plan) if benchmark is not None
                  else latency.run_plain(job.call, plan))
    values["time"] = time_measurement(timing, workload_id, job.tokens, spec.device)
    if job.prefill is not None:
        values.update(generation_values(job, timing.median_s))

    calls = timing.calls_made
    min_window = max(spec.min_seconds, meter.min_window_s)
    energy_plan = plan
    if window.reading is None and window.error and "too short" in window.error:
        # The timed window came out shorter than planned (the workload sped up after warm-up):
        # measure energy alone over a longer untimed loop rather than report nothing.
        longer = energy_plan = latency.extend(plan, timing.mean_s * timing.calls_made, min_window)
        with meter.measure() as window:
            calls = latency.run_plain(job.call, longer).calls_made
        notes.append(f"energy from a separate {longer.calls}-call window: the timed window was shorter "
                     f"than the meter's {min_window:g} s")
    windows = [] if window.reading is None else [(window.reading, calls)]
    if window.reading is None:
        notes.append(f"energy not measured: {window.error}")
    else:
        for _ in range(spec.energy.repeats - 1):
            time.sleep(spec.energy.cooldown_s)
            with meter.measure() as extra:
                made = latency.run_plain(job.call, energy_plan).calls_made
            if extra.reading is not None:
                windows.append((extra.reading, made))
        values.update(energy_values(windows, meter, spec.energy, timing.median_s, job.tokens, job.samples))
    return values, notes, peak


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


def time_measurement(timing: Any, workload_id: str, tokens: int, device: str) -> Measurement:
    """Median seconds per call, with every round's sample (noise-aware verdicts resample them)."""
    return Measurement(timing.median_s, "s", timing.method, detail={
        "workload": workload_id, "statistic": "median per call", "mean_s": timing.mean_s,
        "stddev_s": timing.stddev_s, "min_s": timing.min_s, "rounds": timing.rounds,
        "iterations": timing.iterations, "tokens_per_call": tokens, "device": device,
        "samples": list(timing.samples)})


def _with_memory(values: dict[str, Measurement], model: Any, info: dict[str, float] | None, peak: Any,
                 workload_id: str) -> dict[str, Measurement]:
    values["weight_bytes"] = Measurement(weight_bytes(model), "B", "parameters + buffers as stored")
    values.update(structure_values(model, info or {}))
    if peak.bytes is not None:
        values["peak_memory_bytes"] = Measurement(peak.bytes, "B", "torch.cuda.max_memory_allocated",
                                                  detail={"workload": workload_id})
    return values


def energy_values(windows: list[tuple[Any, int]], meter: Any, settings: EnergySettings, seconds_per_call: float,
                  tokens: int, samples: int) -> dict[str, Measurement]:
    """Per-call energy (median over windows), its split, idle/active share, per token, and CO2e."""
    from pytest_llmeff import carbon
    from pytest_llmeff.measure.stats import summarize

    first = windows[0][0]
    per_window = [r.joules / c for r, c in windows]
    totals = summarize(per_window)
    out = {"energy": Measurement(totals.median, "J", first.method, first.estimated, detail={
        "statistic": f"median over {totals.n} window(s) of window total / calls", "windows": totals.n,
        "cv": round(totals.cv, 4), "ci95": [totals.ci_low, totals.ci_high],
        "window_s": round(first.seconds, 3), "calls": windows[0][1], "samples": per_window})}
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


def structure_values(model: Any, info: dict[str, float]) -> dict[str, Measurement]:
    """Parameters, layers, attention heads and sparsity: what structural compression changed."""
    from pytest_llmeff.compress import structure
    from pytest_llmeff.compress.base import Unsupported

    out = {}
    if "parameters" in info:
        out["parameters"] = Measurement(info["parameters"], "", "parameter count before quantisation")
    else:
        out["parameters"] = Measurement(sum(p.numel() for p in model.parameters()), "", "parameter count")
    try:
        layout = structure.head_layout(model)
    except (Unsupported, AttributeError):
        layout = None
    if layout is not None:
        out["layers"] = Measurement(len(layout), "", "decoder blocks")
        out["heads"] = Measurement(sum(q for q, _, _ in layout), "", "attention query heads, all layers")
    if "sparsity" in info:
        out["sparsity"] = Measurement(info["sparsity"], "", "share of zero weights in the decoder blocks' linears")
    return out


def measure_cache(model: Any, tokenizer: Any, replay: list[list[int]], new_tokens: int, strategy: Any,
                  spec: MeasureSpec, meter: Any, benchmark: Any = None,
                  reference: list[list[int]] | None = None) -> tuple[dict[str, Measurement], list[list[int]]]:
    """Time, energy and answer quality of one cache strategy over the replay list.

    ``reference`` holds the answers without a cache; without it (the ``none`` case itself) the
    strategy's own answers are the reference. Returns the measurements and the answers.
    """
    from pytest_llmeff.measure.caching import answer_all, rouge_l

    answers = answer_all(strategy, model, replay, new_tokens)
    hits = strategy.hits
    reference = reference or answers

    def call() -> None:
        answer_all(strategy, model, replay, new_tokens)

    _idle_first(meter, spec)
    plan = latency.plan(call, min_window_s=max(spec.min_seconds, meter.min_window_s), warmup=0)
    with meter.measure() as window:
        timing = (latency.run_with_benchmark(benchmark, call, plan) if benchmark is not None
                  else latency.run_plain(call, plan))
    n = len(replay)
    values = {
        "time": Measurement(timing.median_s / n, "s", timing.method, detail={
            "workload": f"cache-replay-{n}x{len(replay[0])}+{new_tokens}", "statistic": "median per prompt",
            "rounds": timing.rounds, "iterations": timing.iterations, "device": spec.device}),
        "exact_match": Measurement(sum(a == r for a, r in zip(answers, reference, strict=True)) / n, "",
                                   "greedy answers identical to the no-cache answers"),
        "rouge_l": Measurement(rouge_l([tokenizer.decode(r) for r in reference],
                                       [tokenizer.decode(a) for a in answers]), "",
                               "ROUGE-L F1 vs the no-cache answers (rouge_score)"),
        "hit_rate": Measurement(hits / n, "", "prompts answered from the cache"),
    }
    if window.reading is not None:  # per answered prompt: every call answers the n prompts
        values.update(energy_values([(window.reading, timing.calls_made * n)], meter, spec.energy,
                                    timing.median_s / n, new_tokens, 1))
    return values, answers
