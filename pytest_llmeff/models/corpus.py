"""The embedded corpus: English text every Python install carries, split deterministically.

Sources (both ship with CPython, under the PSF licence):
- ``pydoc_data.topics``: the language reference topics behind ``help()``;
- the docstrings of the standard library's own ``.py`` files, read with ``ast`` (no import, no
  code execution), skipping tests, demos, ``site-packages`` and the IDLE / lib2to3 trees.

Every 20th document goes to the held-out split, the rest to train. Because the standard library
differs between Python versions, the project ships a frozen snapshot (``corpus.jsonl.gz`` next to the
reference model) and evaluates on that; :func:`collect_documents` is only needed to rebuild it.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import inspect
import json
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HELD_OUT_EVERY = 20
DOC_SEPARATOR = "\n\n"  # the GPTQ-paper convention for joining documents before windowing

_SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "idlelib",
              "lib2to3", "turtledemo", "__pycache__", "ensurepip", "config-3"}
_MIN_DOC_CHARS = 80  # one-line docstrings ("Return self.") teach little and inflate the count


@dataclass(frozen=True)
class Document:
    """One corpus document: where it came from and its text."""

    source: str
    text: str


def _stdlib_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).parts
        if any(part in _SKIP_DIRS or part.startswith("config-") for part in rel[:-1]):
            continue
        if rel[-1].startswith("test_"):
            continue
        yield path


def _docstrings(path: Path, root: Path) -> Iterator[Document]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return
    rel = path.relative_to(root).as_posix()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                text = inspect.cleandoc(doc).strip()
                if len(text) >= _MIN_DOC_CHARS:
                    name = getattr(node, "name", "<module>")
                    yield Document(f"stdlib:{rel}:{name}", text)


def collect_documents() -> list[Document]:
    """Read the running interpreter's documentation text, in a fixed order."""
    import pydoc_data.topics as topics

    docs = [Document(f"pydoc:{key}", topics.topics[key].strip()) for key in sorted(topics.topics)]
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in _stdlib_files(root):
        docs.extend(_docstrings(path, root))
    return docs


def split_documents(docs: list[Document]) -> dict[str, list[Document]]:
    """Every ``HELD_OUT_EVERY``-th document (by position) is held out; the rest is train."""
    return {
        "train": [d for i, d in enumerate(docs) if i % HELD_OUT_EVERY != HELD_OUT_EVERY - 1],
        "heldout": [d for i, d in enumerate(docs) if i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1],
    }


def write_snapshot(docs: list[Document], path: Path) -> str:
    """Write the corpus as gzipped JSON lines (split, source, text); return its sha256."""
    splits = split_documents(docs)
    lines = [
        json.dumps({"split": split, "source": d.source, "text": d.text}, ensure_ascii=False)
        for split in ("train", "heldout")
        for d in splits[split]
    ]
    payload = ("\n".join(lines) + "\n").encode("utf-8")
    # mtime=0 keeps the gzip bytes reproducible, so the content hash below is stable.
    path.write_bytes(gzip.compress(payload, mtime=0))
    return hashlib.sha256(payload).hexdigest()


def read_snapshot(path: Path) -> dict[str, list[Document]]:
    """Read a snapshot written by :func:`write_snapshot`."""
    splits: dict[str, list[Document]] = {"train": [], "heldout": []}
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            splits[row["split"]].append(Document(row["source"], row["text"]))
    return splits


def snapshot_provenance() -> dict[str, str]:
    """Which interpreter a freshly collected corpus comes from (stored in the recipe)."""
    return {"python": sys.version.split()[0], "implementation": sys.implementation.name}
