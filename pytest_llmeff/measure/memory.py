"""Memory: the weight footprint of a model, and peak accelerator memory over a workload."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


def weight_bytes(model: Any) -> int:
    """Bytes held by parameters and buffers (packed quantised weights counted as stored)."""
    if hasattr(model, "get_memory_footprint"):
        return int(model.get_memory_footprint())
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


@dataclass
class PeakMemory:
    bytes: int | None = None  # None where the device has no allocator statistics (CPU)


@contextlib.contextmanager
def peak_memory(device: str) -> Iterator[PeakMemory]:
    """Peak allocated accelerator memory inside the block (``torch.cuda.max_memory_allocated``)."""
    out = PeakMemory()
    if not device.startswith("cuda"):
        yield out
        return
    import torch

    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    try:
        yield out
    finally:
        torch.cuda.synchronize(device)
        out.bytes = int(torch.cuda.max_memory_allocated(device))
