"""Measure one model: quality (perplexity), latency, energy and memory, each with its method."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from pytest_llmeff.measure import latency
from pytest_llmeff.measure.costs import _idle_first, paired_costs, time_measurement
from pytest_llmeff.measure.memory import weight_bytes
from pytest_llmeff.measure.perplexity import ROLLING, perplexity, rolling_perplexity
from pytest_llmeff.measure.spec import EvalInputs, MeasureSpec
from pytest_llmeff.measure.threads import free_cores, using
from pytest_llmeff.records import Measurement


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
            version = f" v{row['version']}" if row.get("version") is not None else ""
            values[name] = Measurement(row["value"], "",
                                       f"lm-eval {name}{version} {row['fewshot']}-shot {row['metric']}{limit}",
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
                  info: dict[str, float] | None = None, reference_model: Any = None,
                  quality_memo: dict[str, dict[str, Measurement]] | None = None,
                  ) -> tuple[dict[str, Measurement], list[str], dict[str, Measurement] | None]:
    """All figures for ``model``: ``perplexity``, ``time``, ``energy`` (+ split), memory.

    Given ``reference_model`` (the base model), its time and energy are measured interleaved with
    the candidate's (:mod:`pytest_llmeff.measure.costs`) and returned as the third item; its
    quality is not measured again (it is deterministic). ``quality_memo`` (one per run) keeps the
    quality figures by :func:`quality_key`, so a model with the same weights as one measured before
    (a head pruning that removed no head: ``kd+ah80`` next to ``kd``) is not evaluated twice.
    Returns the measurements, notes for the reader (e.g. why energy is absent), and the
    reference's cost figures or None.
    """
    with using(free_cores()):  # untimed and deterministic: every core another process leaves free helps
        values = _remembered_quality(model, inputs, spec, quality_memo)
    costs, reference = paired_costs(model, inputs, spec, meter, benchmark, reference_model)
    values.update(costs.values)
    values = _with_memory(values, model, info, costs.peak, costs.values["time"].detail.workload or spec.workload)
    return values, costs.notes, (reference.values if reference is not None else None)


def quality_key(model: Any, spec: MeasureSpec) -> str | None:
    """A digest of all that a model's quality figures depend on: its class and configuration, every
    tensor of its state (name, dtype, shape, bytes), the run's protocol and tasks; None where the
    state cannot be read. ~30 ms for the embedded model. The thread count is not in it: the
    evaluation gives the same bits on any number of threads (tests/test_threads_quality.py)."""
    import hashlib

    import torch

    h = hashlib.blake2b(digest_size=16)
    config = getattr(model, "config", None)
    h.update(repr((type(model).__qualname__, getattr(config, "_attn_implementation", None),
                   config.to_json_string(use_diff=False) if config is not None else None,
                   spec.protocol, spec.eval_windows, spec.dataset, spec.tasks, spec.compile,
                   spec.device)).encode())
    try:
        for name, value in model.state_dict().items():
            if not isinstance(value, torch.Tensor):
                h.update(repr((name, value)).encode())
                continue
            t = value.detach().reshape(-1).contiguous()
            h.update(f"{name}:{t.dtype}:{tuple(value.shape)}".encode())
            h.update(t.cpu().view(torch.uint8).numpy().tobytes())
    except Exception:  # a state that will not serialise this way (exotic quantised tensors): no memo
        return None
    return h.hexdigest()


def _remembered_quality(model: Any, inputs: EvalInputs, spec: MeasureSpec,
                        memo: dict[str, dict[str, Measurement]] | None) -> dict[str, Measurement]:
    """``quality_values``, evaluated once per run for models of identical state (the evaluation is
    deterministic, so a second one would give the same bits and only cost time)."""
    key = quality_key(model, spec) if memo is not None else None
    if key is None or memo is None:
        return quality_values(model, inputs, spec)
    if key not in memo:
        memo[key] = quality_values(model, inputs, spec)
        return dict(memo[key])
    return {name: _reused(m) for name, m in memo[key].items()}


def _reused(m: Measurement) -> Measurement:
    if not isinstance(m.detail, dict):
        return m
    return dataclasses.replace(m, detail={**m.detail, "evaluated": "earlier in this run, on identical weights"})


def _with_memory(values: dict[str, Measurement], model: Any, info: dict[str, float] | None, peak: Any,
                 workload_id: str) -> dict[str, Measurement]:
    values["weight_bytes"] = Measurement(weight_bytes(model), "B", "parameters + buffers as stored")
    values.update(structure_values(model, info or {}))
    if peak.bytes is not None:
        values["peak_memory_bytes"] = Measurement(peak.bytes, "B", "torch.cuda.max_memory_allocated",
                                                  detail={"workload": workload_id})
    return values


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


@dataclass(frozen=True)
class CacheMeasurement:
    """One cache strategy over the replay list: its figures and answers, and the no-cache replay's
    time and energy when it was measured interleaved with it (else None)."""

    values: dict[str, Measurement]
    answers: list[list[int]]
    reference_costs: dict[str, Measurement] | None = None
    notes: tuple[str, ...] = ()


# Replays timed per case at least: each one averages a whole prompt list, so few are needed; the
# run-to-run spread, not these, bounds what the gate can see (docs/BENCHMARKS.md). Four: two whole
# cycles A B B A of one replay per window.
REPLAY_PAIRS = 4


def measure_cache(model: Any, tokenizer: Any, replay: list[list[int]], new_tokens: int, strategy: Any,
                  spec: MeasureSpec, meter: Any, benchmark: Any = None,
                  reference: list[list[int]] | None = None, paired_with: Any = None) -> CacheMeasurement:
    """Time, energy and answer quality of one cache strategy over the replay list.

    One call replays the whole list from an empty cache (the cache's effect lies in the list, so a
    single prompt is no unit of it); time and energy are per answered prompt. ``paired_with`` (the
    no-cache strategy) is measured as the base model is beside every other case
    (:mod:`pytest_llmeff.measure.costs`): warm-up until both are steady, then windows of replays
    of the two in the order A B B A, every replay timed. ``reference`` holds the answers without a
    cache; without it (the ``none`` case itself) the strategy's own answers are the reference. Every replay gives the
    same greedy answers, so answers and hits are read from the first.
    """
    from pytest_llmeff.measure.caching import answer_all, rouge_l
    from pytest_llmeff.measure.costs import Costs, add_energy, window_seconds
    from pytest_llmeff.measure.steady import warm_up
    from pytest_llmeff.measure.windows import plan_windows, run_windows
    from pytest_llmeff.measure.workloads import Job

    first: list[tuple[list[list[int]], int]] = []

    def replayer(s: Any, keep: bool) -> Any:
        def call() -> None:
            answers = answer_all(s, model, replay, new_tokens)
            if keep and not first:
                first.append((answers, s.hits))
        return call

    n = len(replay)
    strategies = [strategy] if paired_with is None else [strategy, paired_with]
    jobs = [Job(replayer(s, i == 0), tokens=new_tokens, samples=1) for i, s in enumerate(strategies)]
    _idle_first(meter, spec)
    # A replay averages n prompts: one replay against the one before shows whether first-use work
    # (a cache backend's set-up, a compile) is over.
    warm = warm_up([j.call for j in jobs], window=1, min_calls=2)
    plan = plan_windows(warm.estimate_s, window_seconds(meter, spec), spec.min_seconds, spec.energy.repeats,
                        min_samples=REPLAY_PAIRS)
    measured = run_windows(benchmark, [j.call for j in jobs], plan, meter, spec.energy.cooldown_s)
    workload = f"cache-replay-{n}x{len(replay[0])}+{new_tokens}"
    out = []
    for timing in measured.timings:
        per_prompt = latency.Timing(tuple(t / n for t in timing.samples), 1, timing.method, timing.calls_made)
        m = time_measurement(per_prompt, workload, new_tokens, spec, warm)
        m = dataclasses.replace(m, detail=dataclasses.replace(m.detail, statistic=f"median per prompt (replay / {n})"))
        out.append(Costs(values={"time": m}, notes=[note] if (note := warm.note()) else []))
    add_energy(jobs, out, meter, spec, measured, units=n)
    answers, hits = first[0]
    reference = reference or answers
    values = {
        **out[0].values,
        "exact_match": Measurement(sum(a == r for a, r in zip(answers, reference, strict=True)) / n, "",
                                   "greedy answers identical to the no-cache answers"),
        "rouge_l": Measurement(rouge_l([tokenizer.decode(r) for r in reference],
                                       [tokenizer.decode(a) for a in answers]), "",
                               "ROUGE-L F1 vs the no-cache answers (rouge_score)"),
        "hit_rate": Measurement(hits / n, "", "prompts answered from the cache"),
    }
    return CacheMeasurement(values, answers, out[1].values if len(out) > 1 else None, tuple(out[0].notes))
