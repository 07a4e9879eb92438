"""Attention-head pruning (AH90 / AH80): remove heads whose attention collapses onto one token.

A head is called unimportant when, on calibration text, the largest weight in each query's
attention row — the share of attention the single most-attended token receives — averaged over
query positions and samples exceeds the threshold (0.9 for AH90, 0.8 for AH80). Attention maps
come from eager attention (sdpa returns none). The heads are then removed structurally
(:mod:`pytest_llmeff.compress.structure`), so the projections shrink and compute really drops.
Every layer keeps at least its least dominated head.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

from pytest_llmeff.compress import structure
from pytest_llmeff.compress.base import Candidate, CompressContext, CompressError, Compressor
from pytest_llmeff.compress.calibration import calibration_windows


def dominance(model: Any, windows: Any, batch_size: int = 4) -> list[Any]:
    """Per layer, per attention unit: the mean over queries and samples of the row maximum.

    For grouped-query attention a unit is a KV group; its score is the mean over its query heads.
    Returns a list (one per layer) of 1-D tensors.
    """
    import torch

    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")
    device = next(model.parameters()).device
    sums: list[Any] = []
    count = 0
    try:
        with torch.inference_mode():
            for b in range(0, windows.shape[0], batch_size):
                batch = windows[b:b + batch_size].to(device)
                attentions = model(input_ids=batch, output_attentions=True).attentions  # L × (B, H, T, T)
                row_max = [a.float().amax(dim=-1).sum(dim=(0, 2)) for a in attentions]  # L × (H,)
                sums = row_max if not sums else [s + r for s, r in zip(sums, row_max, strict=True)]
                count += batch.shape[0] * batch.shape[1]
    finally:
        model.set_attn_implementation(previous)
    scores = [s / count for s in sums]
    layout = structure.head_layout(model)
    out = []
    for score, (q_heads, kv_heads, _) in zip(scores, layout, strict=True):
        out.append(score.view(kv_heads, q_heads // kv_heads).mean(dim=1).cpu())
    return out


@dataclass(frozen=True)
class HeadPruning(Compressor):
    """Remove attention heads dominated by one token.

    Attributes:
        threshold: prune a unit whose mean row-maximum attention exceeds this, in (0, 1].
        samples: calibration windows (of the model's context, at most 512 tokens).
    """

    stage: ClassVar[str] = "structural"
    summary: ClassVar[str] = "attention-head pruning by single-token dominance (structural)"
    threshold: float = 0.9
    samples: int = 16

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1:
            raise CompressError(f"head-pruning threshold must lie in (0, 1], got {self.threshold!r}")
        if self.samples < 1:
            raise CompressError(f"head pruning needs at least 1 calibration sample, got {self.samples}")

    def check(self, ctx: CompressContext) -> None:
        structure.family(ctx.base.model)  # Unsupported for other architectures

    def apply(self, candidate: Candidate, ctx: CompressContext) -> Candidate:
        model = copy.deepcopy(candidate.model) if candidate.pristine else candidate.model
        ctx.progress(f"{self.id}: scoring attention heads on {self.samples} calibration windows")
        scores = dominance(model, calibration_windows(ctx, self.samples))
        before = structure.head_layout(model)
        removed, forced = [], []
        for layer, score in enumerate(scores):
            keep = [u for u in range(score.numel()) if float(score[u]) <= self.threshold]
            if not keep:  # every unit dominated: keep the least dominated one
                keep = [int(score.argmin())]
                forced.append(layer)
            if len(keep) < score.numel():
                removed.append(f"{layer}:{sorted(set(range(score.numel())) - set(keep))}")
                structure.keep_heads(model, layer, keep)
        after = structure.head_layout(model)
        units = "KV groups" if any(q != kv for q, kv, _ in before) else "heads"
        notes = list(candidate.notes)
        total_before, total_after = sum(q for q, _, _ in before), sum(q for q, _, _ in after)
        top = max(float(s.max()) for s in scores)
        notes.append(f"{self.id}: removed {total_before - total_after} of {total_before} query heads "
                     f"(unit: {units}) — {'; '.join(removed) or 'none above the threshold'}; "
                     f"highest head score {top:.3f}")
        if forced:
            notes.append(f"{self.id}: layers {forced} had every unit above the threshold; one was kept")
        info = dict(candidate.info, heads=float(total_after))
        return Candidate(model, False, candidate.steps + [self.id], notes, info)


def ah(threshold: float = 0.9, samples: int = 16) -> Compressor:
    return HeadPruning(threshold=float(threshold), samples=int(samples))


def ah90(samples: int = 16) -> Compressor:
    return HeadPruning(threshold=0.9, samples=int(samples))


def ah80(samples: int = 16) -> Compressor:
    return HeadPruning(threshold=0.8, samples=int(samples))
