"""The embedded reference model and corpus that ship inside the package (no hub needed)."""

from __future__ import annotations

import hashlib
from pathlib import Path

REFERENCE_DIR = Path(__file__).parent / "reference"
EMBEDDED_NAME = "embedded"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
