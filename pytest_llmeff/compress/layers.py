"""Layer pruning by angular distance (Gromov et al., "The Unreasonable Ineffectiveness of the Deeper
Layers", 2024): drop the block of ``n`` consecutive layers whose input and output hidden states are
most alike, optionally healing the result by distillation from the unpruned model.

The paper's distance (its eq. 7) is taken at the last token:

    d(x^(ℓ), x^(ℓ+n)) = (1/π) · arccos( x_T^(ℓ) · x_T^(ℓ+n) / (‖x_T^(ℓ)‖ ‖x_T^(ℓ+n)‖) ),

"where the inner product is over the hidden dimension of the model for the final token T of the
sequence", summed (here: averaged) over calibration samples; ``x^(ℓ)`` is the input to layer ℓ. The
block at the ℓ that minimises it is removed; the last layer is always kept (ℓ + n ≤ L − 1).
``position="all"`` averages over every token instead (a variant some re-implementations use).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from pytest_llmeff.compress import structure
from pytest_llmeff.compress.base import Candidate, CompressContext, CompressError, Compressor
from pytest_llmeff.compress.calibration import calibration_windows

POSITIONS = ("last", "all")


def distance_matrix(model: Any, windows: Any, position: str = "last", batch_size: int = 4) -> list[list[float]]:
    """Angular distances for every block: row ``n − 1`` holds ℓ = 0 … L−1−n, each the mean over the
    windows ``(n, T)`` of the distance between the inputs of layers ℓ and ℓ + n (n = 1 … L−1).

    ``position``: ``"last"`` (the paper: the final token) or ``"all"`` (mean over every token).
    """
    import torch

    if position not in POSITIONS:
        raise CompressError(f"unknown token position {position!r} for angular distances ({', '.join(POSITIONS)})")
    n_layers = len(structure.layers(model))
    device = next(model.parameters()).device
    sums = torch.zeros(n_layers, n_layers, dtype=torch.float64)  # [n, ℓ]
    count = 0
    with torch.inference_mode():
        for b in range(0, windows.shape[0], batch_size):
            batch = windows[b:b + batch_size].to(device)
            # hidden_states[ℓ] enters layer ℓ (index 0: embeddings); the last entry is after the
            # final norm and is never used, since the last layer is kept.
            hs = model(input_ids=batch, output_hidden_states=True).hidden_states
            states = [h[:, -1:] if position == "last" else h for h in hs[:n_layers]]  # (B, T', d)
            for n in range(1, n_layers):
                for start in range(n_layers - n):
                    cos = torch.nn.functional.cosine_similarity(states[start].float(), states[start + n].float(),
                                                                dim=-1)
                    sums[n, start] += (torch.arccos(cos.clamp(-1.0, 1.0)) / math.pi).double().sum().cpu()
            count += states[0].shape[0] * states[0].shape[1]
    return [(sums[n, :n_layers - n] / count).tolist() for n in range(1, n_layers)]


def angular_distances(model: Any, windows: Any, n: int, batch_size: int = 4, position: str = "last") -> list[float]:
    """Mean angular distance (in [0, 1]) between the inputs of layer ℓ and ℓ + n, for ℓ = 0 … L−1−n."""
    return distance_matrix(model, windows, position, batch_size)[n - 1]


@dataclass(frozen=True)
class LayerPruning(Compressor):
    """Remove a share of the layers (the most redundant consecutive block).

    Attributes:
        ratio: share of layers to remove, in (0, 1); the count is rounded, at least one.
        samples: calibration windows.
        heal: distil from the unpruned model afterwards (forward KL, ``heal_steps`` steps).
        position: token position of the distance: ``last`` (the paper) or ``all`` (every token).
    """

    stage: ClassVar[str] = "structural"
    summary: ClassVar[str] = "layer pruning by angular distance (optional KD healing)"
    ratio: float = 0.2
    samples: int = 16
    heal: bool = False
    heal_steps: int = 200
    position: str = "last"

    def __post_init__(self) -> None:
        if not 0 < self.ratio < 1:
            raise CompressError(f"layer-pruning ratio must lie in (0, 1), got {self.ratio!r}")
        if self.position not in POSITIONS:
            raise CompressError(f"layer-pruning position must be one of {', '.join(POSITIONS)}, got {self.position!r}")
        if self.samples < 1 or self.heal_steps < 1:
            raise CompressError("layer pruning needs samples ≥ 1 and heal_steps ≥ 1")

    def check(self, ctx: CompressContext) -> None:
        structure.family(ctx.base.model)

    def count(self, n_layers: int) -> int:
        n = max(1, round(self.ratio * n_layers))
        if n > n_layers - 1:
            raise CompressError(f"removing {self.ratio:.0%} of {n_layers} layers ({n}) would remove every "
                                "layer but must keep the last one")
        return n

    def apply(self, candidate: Candidate, ctx: CompressContext) -> Candidate:
        teacher = candidate.model
        n_layers = len(structure.layers(teacher))
        n = self.count(n_layers)
        ctx.progress(f"{self.id}: angular distances of {n}-layer blocks on {self.samples} calibration windows")
        distances = angular_distances(teacher, calibration_windows(ctx, self.samples), n, position=self.position)
        start = min(range(len(distances)), key=distances.__getitem__)
        keep = [i for i in range(n_layers) if not start <= i < start + n]
        model = copy.deepcopy(teacher)
        structure.keep_layers(model, keep)
        notes = list(candidate.notes)
        where = "last token" if self.position == "last" else "mean over all tokens"
        notes.append(f"{self.id}: removed layers {start}–{start + n - 1} of {n_layers} "
                     f"(angular distance, {where}: {distances[start]:.3f}; every ℓ: "
                     + ", ".join(f"{d:.3f}" for d in distances) + ")")
        if self.heal:
            from pytest_llmeff.compress.distill import TrainRecipe, train_student

            recipe = TrainRecipe(steps=self.heal_steps, seq_len=min(ctx.base.context_length, 256), seed=ctx.seed)
            ctx.progress(f"{self.id}: healing by distillation from the unpruned model ({self.heal_steps} steps)")
            train_student(model, teacher, ctx, recipe, f"{self.id} healing")
            notes.append(f"{self.id}: healed by forward-KL distillation, {self.heal_steps} steps")
        info = dict(candidate.info, layers=float(len(keep)))
        return Candidate(model, False, candidate.steps + [self.id], notes, info)


def layer(ratio: float = 0.2, samples: int = 16, heal: bool = False, heal_steps: int = 200,
          position: str = "last") -> Compressor:
    return LayerPruning(ratio=float(ratio), samples=int(samples), heal=bool(heal), heal_steps=int(heal_steps),
                        position=str(position))


def layer20(heal: bool = False) -> Compressor:
    return LayerPruning(ratio=0.2, heal=bool(heal))


def layer40(heal: bool = False) -> Compressor:
    return LayerPruning(ratio=0.4, heal=bool(heal))
