"""The pruning scores of the base model as the third study pictures them, computed once per run.

- per-unit head scores (layers × heads, or KV groups): the largest share of a unit's attention that
  one token receives (:func:`pytest_llmeff.compress.heads.received_attention`), with the AH90 / AH80
  thresholds;
- the angular distance between the inputs of layers ℓ and ℓ + n for every ℓ and n
  (:func:`pytest_llmeff.compress.layers.distance_matrix`, last token, as Gromov et al.).

Computed from a few calibration windows, only when a report folder is asked for; the plotting lives
in :mod:`pytest_llmeff.report_files`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_llmeff.compress import structure
from pytest_llmeff.compress.base import CompressContext, Unsupported

THRESHOLDS = (0.9, 0.8)  # AH90, AH80


@dataclass(frozen=True)
class PruningMaps:
    """Head scores (``heads[layer][unit]``) and layer distances (``distances[n − 1][ℓ]``)."""

    heads: list[list[float]]
    unit: str  # "head" or "KV group"
    distances: list[list[float]]
    samples: int
    window: int
    position: str = "last"
    thresholds: tuple[float, ...] = THRESHOLDS


def pruning_maps(ctx: CompressContext, samples: int = 4) -> PruningMaps | None:
    """Both maps for ``ctx.base.model``, or None for an architecture the pruning steps do not support."""
    from pytest_llmeff.compress.calibration import calibration_windows
    from pytest_llmeff.compress.heads import head_scores, received_attention
    from pytest_llmeff.compress.layers import distance_matrix

    model = ctx.base.model
    try:
        structure.family(model)
    except Unsupported:
        return None
    windows = calibration_windows(ctx, samples)
    scores = head_scores(received_attention(model, windows))
    unit = "KV group" if any(q != kv for q, kv, _ in structure.head_layout(model)) else "head"
    return PruningMaps(heads=[s.tolist() for s in scores], unit=unit, distances=distance_matrix(model, windows),
                       samples=int(windows.shape[0]), window=int(windows.shape[1]))


def removed_by(maps: PruningMaps, threshold: float) -> int:
    """Units a head-pruning step at ``threshold`` would remove (every layer keeps at least one)."""
    return sum(min(sum(s > threshold for s in layer), len(layer) - 1) for layer in maps.heads)


def summary(maps: PruningMaps) -> list[str]:
    """Lines for the report: the per-layer maximum head score and the layer distances."""
    lines = [f"head scores (share of a {maps.unit}'s attention one token receives, {maps.samples} × "
             f"{maps.window}-token calibration windows): per-layer max "
             + ", ".join(f"{max(layer):.3f}" for layer in maps.heads)
             + "; removed at " + ", ".join(f"{t:g}: {removed_by(maps, t)}" for t in maps.thresholds)]
    for n, row in enumerate(maps.distances, start=1):
        best = min(range(len(row)), key=row.__getitem__)
        lines.append(f"angular distance n={n} ({maps.position} token), ℓ = 0…{len(row) - 1}: "
                     + ", ".join(f"{d:.3f}" for d in row) + f" (min at ℓ={best})")
    return lines
