"""The embedded corpus: English text every Python install carries, split deterministically.

Sources (both ship with CPython, under the PSF licence):
- ``pydoc_data.topics``: the language reference topics behind ``help()``;
- the docstrings of the standard library's own ``.py`` files, read with ``ast`` (no import, no
  code execution), skipping tests, demos, ``site-packages`` and the IDLE / lib2to3 trees.

Every 20th document goes to the held-out split, the rest to train. Because the standard library
differs between Python versions, the project ships a frozen snapshot (``corpus.jsonl.gz`` next to the
reference model) and evaluates on that; :func:`collect_documents` is only needed to rebuild it.

The reference model's *extra training text* (:func:`collect_package_documents`) is the docstrings of
permissively licensed packages the project installs anyway (``PACKAGE_LICENCES``): the same kind of
text, about 25 times more of it. It is rebuilt from the installed packages when the model is rebuilt
(its hash is in the recipe) and does not ship; any document sharing a 13-word run with the held-out
split is dropped (:func:`decontaminate`), so the held-out perplexity stays a held-out figure.
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


def _docstrings(path: Path, root: Path, origin: str = "stdlib") -> Iterator[Document]:
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
                    yield Document(f"{origin}:{rel}:{name}", text)


def collect_documents() -> list[Document]:
    """Read the running interpreter's documentation text, in a fixed order."""
    import pydoc_data.topics as topics

    docs = [Document(f"pydoc:{key}", topics.topics[key].strip()) for key in sorted(topics.topics)]
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in _stdlib_files(root):
        docs.extend(_docstrings(path, root))
    return docs


# Packages whose docstrings may train the reference model, with the licence of each project's own
# LICENSE file (a wheel's metadata may also list bundled components, as torch's does).
# pip and setuptools are left out (they vendor copies of other projects' modules).
PACKAGE_LICENCES = {
    "transformers": "Apache-2.0", "torch": "BSD-3-Clause (PyTorch's LICENSE)", "sympy": "BSD-3-Clause",
    "pandas": "BSD-3-Clause", "scipy": "BSD-3-Clause", "sklearn": "BSD-3-Clause",
    "numpy": "BSD-3-Clause", "networkx": "BSD-3-Clause", "nltk": "Apache-2.0",
    "matplotlib": "PSF-based (matplotlib licence)", "pygments": "BSD-2-Clause",
    "huggingface_hub": "Apache-2.0", "lm_eval": "MIT", "datasets": "Apache-2.0", "mpmath": "BSD-3-Clause",
    "accelerate": "Apache-2.0", "_pytest": "MIT", "rich": "MIT", "jinja2": "BSD-3-Clause",
    "pydantic": "MIT", "pyarrow": "Apache-2.0", "fsspec": "BSD-3-Clause", "joblib": "BSD-3-Clause",
}
_SHINGLE_WORDS = 13  # the GPT-3 paper's contamination n-gram


def collect_package_documents(packages: dict[str, str] | None = None) -> list[Document]:
    """Docstrings of the installed ``packages`` (default ``PACKAGE_LICENCES``), in a fixed order,
    each document once. A package that is not installed is skipped."""
    import importlib.util

    seen: set[str] = set()
    docs: list[Document] = []
    for name in sorted(packages or PACKAGE_LICENCES):
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            continue
        root = Path(next(iter(spec.submodule_search_locations)))
        for path in _stdlib_files(root):
            for doc in _docstrings(path, root.parent, origin="package"):
                if doc.text not in seen:
                    seen.add(doc.text)
                    docs.append(doc)
    return docs


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = text.lower().split()
    return {tuple(words[i:i + _SHINGLE_WORDS]) for i in range(len(words) - _SHINGLE_WORDS + 1)}


def decontaminate(docs: list[Document], heldout: list[Document]) -> list[Document]:
    """``docs`` without those that share a 13-word run with a held-out document (or equal one)."""
    held_texts = {d.text for d in heldout}
    held = set().union(*(_shingles(d.text) for d in heldout))
    return [d for d in docs if d.text not in held_texts and held.isdisjoint(_shingles(d.text))]


def write_documents(docs: list[Document], path: Path) -> str:
    """Write ``docs`` as gzipped JSON lines (source, text); return the sha256 of the payload."""
    return _write_rows([{"source": d.source, "text": d.text} for d in docs], path)


def split_documents(docs: list[Document]) -> dict[str, list[Document]]:
    """Every ``HELD_OUT_EVERY``-th document (by position) is held out; the rest is train."""
    return {
        "train": [d for i, d in enumerate(docs) if i % HELD_OUT_EVERY != HELD_OUT_EVERY - 1],
        "heldout": [d for i, d in enumerate(docs) if i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1],
    }


def write_snapshot(docs: list[Document], path: Path) -> str:
    """Write the corpus as gzipped JSON lines (split, source, text); return its sha256."""
    splits = split_documents(docs)
    return _write_rows([{"split": split, "source": d.source, "text": d.text}
                        for split in ("train", "heldout") for d in splits[split]], path)


def _write_rows(rows: list[dict[str, str]], path: Path) -> str:
    """Write ``rows`` as gzipped JSON lines; return the sha256 of the uncompressed payload."""
    payload = ("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n").encode("utf-8")
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
