"""Attention-head pruning (AH90 / AH80): remove heads whose attention collapses onto one token.

The first study's rule: "If a single token receives most of the attention, the head likely does
not contain any important connections." A head's score is therefore the largest share of its
attention that one key position receives: for each position j, ``(1/T)·Σ_i A[i, j]`` over every
query i of a T-token window (rows sum to 1, so these shares sum to 1 over j), averaged over the
calibration windows; the score is the maximum over j — in practice token 0, the attention sink.
A head scoring above the threshold (0.9 for AH90, 0.8 for AH80) is removed.

Why every query and not only those that can see j (i ≥ j): the last positions are seen by few
queries, so a head attending to the current token would score ~1 at j = T−1 and a previous-token
head ~0.5 at j = T−2 — the sharp heads that attend to *different* tokens, which the rule keeps.
(Nor each query's own largest weight: that flags the same sharp heads.) Attention maps come from
eager attention (sdpa returns none). Under grouped-query attention the unit is a KV group, its
shares the mean over the group's query heads. The heads are removed structurally
(:mod:`pytest_llmeff.compress.structure`), so the projections shrink and compute really drops.
Every layer keeps at least its lowest-scoring unit.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

from pytest_llmeff.compress import structure
from pytest_llmeff.compress.base import Candidate, CompressContext, CompressError, Compressor
from pytest_llmeff.compress.calibration import calibration_windows


def received_attention(model: Any, windows: Any, batch_size: int = 4) -> list[Any]:
    """Per layer, a ``(units, T)`` tensor: the share of each unit's attention that key position j
    receives, ``(1/T)·Σ_i A[i, j]`` over all queries i, averaged over the windows ``(n, T)``.

    A unit is a head, or a KV group under grouped-query attention (mean over its query heads).
    """
    import torch

    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")
    device = next(model.parameters()).device
    sums: list[Any] = []
    try:
        with torch.inference_mode():
            for b in range(0, windows.shape[0], batch_size):
                batch = windows[b:b + batch_size].to(device)
                attentions = model(input_ids=batch, output_attentions=True).attentions  # L × (B, H, T, T)
                columns = [a.float().sum(dim=(0, 2)) for a in attentions]  # L × (H, T): Σ over samples, queries
                sums = columns if not sums else [s + c for s, c in zip(sums, columns, strict=True)]
    finally:
        model.set_attn_implementation(previous)
    n, length = windows.shape
    out = []
    for total, (q_heads, kv_heads, _) in zip(sums, structure.head_layout(model), strict=True):
        shares = total / (n * length)  # (H, T)
        out.append(shares.view(kv_heads, q_heads // kv_heads, length).mean(dim=1).cpu())
    return out


def head_scores(received: list[Any]) -> list[Any]:
    """Per layer, per unit: the largest share of its attention that a single token receives."""
    return [r.amax(dim=-1) for r in received]


@dataclass(frozen=True)
class HeadPruning(Compressor):
    """Remove attention heads dominated by one token.

    Attributes:
        threshold: prune a unit when one token receives more than this share of its attention, in (0, 1].
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
        received = received_attention(model, calibration_windows(ctx, self.samples))
        scores = head_scores(received)
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
        notes = list(candidate.notes)
        notes.append(self._note(before, after, received, removed))
        if forced:
            notes.append(f"{self.id}: layers {forced} had every unit above the threshold; one was kept")
        info = dict(candidate.info, heads=float(sum(q for q, _, _ in after)))
        return Candidate(model, False, candidate.steps + [self.id], notes, info)

    def _note(self, before: list[tuple[int, int, int]], after: list[tuple[int, int, int]], received: list[Any],
              removed: list[str]) -> str:
        """What was removed, or why nothing was: the highest score, where, and on which token."""
        layer = max(range(len(received)), key=lambda i: float(received[i].max()))
        unit, token = divmod(int(received[layer].argmax()), received[layer].shape[1])
        kind = "KV group" if any(q != kv for q, kv, _ in before) else "head"
        top = f"highest {float(received[layer].max()):.3f} (layer {layer}, {kind} {unit}, token {token})"
        if not removed:
            return (f"{self.id}: no {kind} gives more than {self.threshold:g} of its attention to one token; "
                    f"{top}")
        total_before, total_after = sum(q for q, _, _ in before), sum(q for q, _, _ in after)
        return (f"{self.id}: removed {total_before - total_after} of {total_before} query heads "
                f"(unit: {kind}s, share of attention one token receives > {self.threshold:g}) — "
                f"{'; '.join(removed)}; {top}")


def ah(threshold: float = 0.9, samples: int = 16) -> Compressor:
    return HeadPruning(threshold=float(threshold), samples=int(samples))


def ah90(samples: int = 16) -> Compressor:
    return HeadPruning(threshold=0.9, samples=int(samples))


def ah80(samples: int = 16) -> Compressor:
    return HeadPruning(threshold=0.8, samples=int(samples))
