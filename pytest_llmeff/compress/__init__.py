"""Compressors and pipelines: ``"kd+ah80+nf4"`` → validated, ordered steps.

Syntax: ``step ('+' step)*`` where ``step`` is a registered name, optionally with settings:
``nf4(double_quant=true)``, ``ah(threshold=0.7)``. Names resolve through :data:`COMPRESSORS`,
whose entries are factories returning a configured :class:`Compressor`. Third parties add
entries with the ``pytest_llmeff.compressors`` entry-point group or the
``pytest_llmeff_register_compressors`` hook.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_llmeff.compress.base import (
    STAGES,
    Candidate,
    CompressContext,
    CompressError,
    Compressor,
    Unsupported,
)
from pytest_llmeff.registry import Registry, UnknownNameError, split_top_level

__all__ = [
    "COMPRESSORS", "Candidate", "CompressContext", "CompressError", "Compressor", "Pipeline",
    "Unsupported", "parse_pipeline", "parse_step",
]

Factory = Callable[..., Compressor]
COMPRESSORS: Registry[Factory] = Registry("compressor", entry_point_group="pytest_llmeff.compressors")

for _name, _target in {
    "base": "pytest_llmeff.compress.basic:identity",
    "fp16": "pytest_llmeff.compress.basic:fp16",
    "bf16": "pytest_llmeff.compress.basic:bf16",
    "int8": "pytest_llmeff.compress.bnb:int8",
    "nf4": "pytest_llmeff.compress.bnb:nf4",
    "fp4": "pytest_llmeff.compress.bnb:fp4",
    "gptq": "pytest_llmeff.compress.gptq:gptq",
    "gptq4": "pytest_llmeff.compress.gptq:gptq4",
    "kd": "pytest_llmeff.compress.distill:kd",
    "kd-rkl": "pytest_llmeff.compress.distill:kd_rkl",
    "seqkd": "pytest_llmeff.compress.distill:seqkd",
    "ah": "pytest_llmeff.compress.heads:ah",
    "ah90": "pytest_llmeff.compress.heads:ah90",
    "ah80": "pytest_llmeff.compress.heads:ah80",
    "magnitude": "pytest_llmeff.compress.sparsity:magnitude",
    "sparsegpt": "pytest_llmeff.compress.sparsity:sparsegpt",
    "2:4": "pytest_llmeff.compress.sparsity:semi24",
    "2:4-sparsegpt": "pytest_llmeff.compress.sparsity:semi24_sparsegpt",
    "layer": "pytest_llmeff.compress.layers:layer",
    "layer20": "pytest_llmeff.compress.layers:layer20",
    "layer40": "pytest_llmeff.compress.layers:layer40",
}.items():
    COMPRESSORS.register(_name, _target)

def parse_step(text: str, registry: Registry[Factory] | None = None) -> Compressor:
    """One step: ``name`` or ``name(key=value, …)``, validated by the compressor's config."""
    try:
        compressor = (registry or COMPRESSORS).create(text)  # UnknownNameError with a did-you-mean
    except UnknownNameError:
        raise
    except (ValueError, TypeError) as exc:
        raise CompressError(str(exc)) from None
    return compressor.with_id(text.strip().replace(" ", ""))


@dataclass(frozen=True)
class Pipeline:
    """An ordered chain of compressors; ``id`` is the text it was parsed from."""

    id: str
    steps: tuple[Compressor, ...]
    reordered_from: str | None = None

    @property
    def is_reference(self) -> bool:
        """The unmodified model (``base``): measured as every case's reference, not compressed."""
        return len(self.steps) == 1 and self.steps[0].stage == "identity"

    def check(self, ctx: CompressContext) -> None:
        for step in self.steps:
            step.check(ctx)

    def apply(self, candidate: Candidate, ctx: CompressContext,
              cache: dict[str, Candidate] | None = None) -> Candidate:
        """Run the steps. With ``cache``, structural prefixes (``kd``, ``kd+ah90``) computed by an
        earlier pipeline are reused, and new ones stored, as copies (later steps change models in place)."""
        start = 0
        if cache is not None:
            for k in range(len(self.steps), 0, -1):
                key = "+".join(s.id for s in self.steps[:k])
                if key in cache:
                    candidate, start = _copy(cache[key]), k
                    break
        for k in range(start, len(self.steps)):
            step = self.steps[k]
            if step.stage == "quantize":
                # Packed quantised tensors count storage elements, not weights: keep the real count.
                candidate.info.setdefault("parameters", float(sum(p.numel() for p in candidate.model.parameters())))
            candidate = step.apply(candidate, ctx)
            if cache is not None and step.stage == "structural" and _cacheable(candidate.model):
                cache["+".join(s.id for s in self.steps[:k + 1])] = _copy(candidate)
        # Steps with a last part that only the finished model can take (2:4 sparse kernels) do it now.
        quantized = any(s.stage == "quantize" for s in self.steps)
        for step in self.steps:
            candidate = step.finish(candidate, ctx, quantized)
        if self.reordered_from:
            candidate.notes.append(f"steps reordered from '{self.reordered_from}' to '{self.id}'")
        return candidate


def _copy(candidate: Candidate) -> Candidate:
    import copy

    return Candidate(copy.deepcopy(candidate.model), candidate.pristine, list(candidate.steps),
                     list(candidate.notes), dict(candidate.info))


def _cacheable(model: Any, limit_bytes: int = 2 << 30) -> bool:
    """Keep copies of small models only: a cached copy of a 7B model would not fit beside it."""
    return sum(p.numel() * p.element_size() for p in model.parameters()) <= limit_bytes


def parse_pipeline(text: str, *, allow_reorder: bool = False,
                   registry: Registry[Factory] | None = None) -> Pipeline:
    """Parse and validate a pipeline id such as ``"kd+ah80+nf4"``.

    Structural steps (distillation, pruning) must come before casts, casts before quantisation,
    and at most one cast and one quantisation may appear. With ``allow_reorder`` a chain in the
    wrong order is sorted into a valid one (stable) instead of refused.

    Raises:
        UnknownNameError: a step names no registered compressor (with a did-you-mean).
        CompressError: malformed text, bad settings, or a chain that cannot be applied.
    """
    if not isinstance(text, str) or not text.strip():
        raise CompressError("empty compressor pipeline")
    parts = split_top_level(text, "+")
    if any(not p.strip() for p in parts):
        raise CompressError(f"malformed compressor pipeline {text!r}: empty step between '+' signs")
    steps = [parse_step(p, registry) for p in parts]
    if len(steps) > 1 and any(s.stage == "identity" for s in steps):
        raise CompressError(f"pipeline {text!r}: 'base' (the unmodified model) cannot be chained")
    for stage in ("cast", "quantize"):
        same = [s.id for s in steps if s.stage == stage]
        if len(same) > 1:
            what = "quantised weights cannot be quantised again" if stage == "quantize" else "one cast is enough"
            raise CompressError(f"pipeline {text!r} has two {stage} steps ({', '.join(same)}): {what}")
    rank = [STAGES.index(s.stage) for s in steps]
    for i in range(1, len(steps)):
        if rank[i] < rank[i - 1]:
            if allow_reorder:
                ordered = sorted(steps, key=lambda s: STAGES.index(s.stage))
                return Pipeline("+".join(s.id for s in ordered), tuple(ordered), reordered_from=text.strip())
            earlier, later = steps[i - 1], steps[i]
            fixed = "+".join(s.id for s in sorted(steps, key=lambda s: STAGES.index(s.stage)))
            raise CompressError(
                f"pipeline {text!r} cannot be applied: {later.id!r} ({later.stage}) cannot follow "
                f"{earlier.id!r} ({earlier.stage}) — {_why(earlier)}; use '{fixed}' "
                "(or allow reordering with --llmeff-allow-reorder)"
            )
    return Pipeline("+".join(s.id for s in steps), tuple(steps))


def _why(step: Compressor) -> str:
    if step.stage == "quantize":
        return "quantisation packs the weights, so nothing can prune, distil or cast them afterwards"
    return "a cast comes after structural changes and before quantisation"
