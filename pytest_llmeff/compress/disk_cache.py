"""Compression results kept on disk between runs: distilled students and GPTQ checkpoints.

Both cost minutes to build and are fully determined by their inputs, so they are stored under
``<cache dir>/<kind>/<key>``, the key a hash of everything that determines them (the source
model's weights, the method's settings, the data, the library versions). A folder is built in a
temporary sibling and renamed into place, so a run stopped midway leaves nothing a later run would
trust, and two runs (xdist workers) building the same entry keep one of them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_llmeff.compress import structure

DONE = "llmeff-cache.json"  # written last into a finished entry: its build record


def model_digest(model: Any) -> str:
    """sha256 over parameter names, shapes, dtypes and bytes, and the pruned structure."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        data = tensor.detach().to("cpu").contiguous()
        digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    digest.update(json.dumps(getattr(model.config, structure.STRUCTURE_KEY, None), sort_keys=True).encode())
    return digest.hexdigest()


def key_of(payload: dict[str, Any]) -> str:
    """A short stable hash of a JSON-able description of everything that determines an entry."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def cached(folder: Path) -> dict[str, Any] | None:
    """The build record of a finished entry, None if there is none (or it is unreadable)."""
    try:
        return json.loads((folder / DONE).read_text())
    except (OSError, ValueError):
        return None


def build(folder: Path, make: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """Run ``make(tmp)`` to fill a temporary folder, write its returned record, move it to ``folder``.

    If another run finished the same entry meanwhile, that one is kept and ours is dropped.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        record = make(tmp)
        (tmp / DONE).write_text(json.dumps(record, indent=2))
        try:
            tmp.rename(folder)
        except OSError:  # the entry appeared meanwhile (or a stale unfinished one sits there)
            if cached(folder) is None:
                shutil.rmtree(folder, ignore_errors=True)
                tmp.rename(folder)
        return cached(folder) or record
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
