"""Evaluation and calibration text: the embedded corpus, a local file or folder, or WikiText-2.

- ``embedded``: the shipped corpus snapshot (held-out split evaluated, train split for calibration
  and distillation).
- a folder with ``train.txt`` and ``test.txt``: used as they are.
- a single text file: split at blank lines; every 20th paragraph is evaluated, the rest calibrates
  (calibrating on the evaluated text would flatter compressed models).
- ``wikitext2``: the WikiText-2 raw splits through ``datasets`` (needs the network or a cache).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pytest_llmeff.models import corpus
from pytest_llmeff.models.embedded import EMBEDDED_NAME, REFERENCE_DIR
from pytest_llmeff.registry import did_you_mean

WIKITEXT2 = "wikitext2"
_NAMED = (EMBEDDED_NAME, WIKITEXT2)


class DatasetError(ValueError):
    """A dataset that cannot be found or loaded."""


@dataclass(frozen=True)
class TextData:
    """Text for one run: what perplexity is measured on, and what compressors may learn from."""

    name: str
    eval_text: str
    train_texts: tuple[str, ...]
    description: str
    eval_documents: tuple[str, ...] = ()  # the evaluated text as documents (document-level protocols)

    @property
    def documents(self) -> tuple[str, ...]:
        return self.eval_documents or (self.eval_text,)

    def calibration_texts(self, n: int, min_chars: int = 200) -> list[str]:
        """The first ``n`` training documents of at least ``min_chars`` characters (deterministic)."""
        picked = [t for t in self.train_texts if len(t) >= min_chars][:n]
        return picked or list(self.train_texts[:n])


def check_dataset(name: str) -> None:
    """Validate a dataset name without loading it (for option parsing)."""
    if name in _NAMED:
        return
    path = Path(name).expanduser()
    if path.is_file():
        _paragraphs(path, name)
        return
    if path.is_dir():
        if not (path / "train.txt").is_file() or not (path / "test.txt").is_file():
            raise DatasetError(f"dataset folder {name!r} needs train.txt and test.txt")
        for part in ("train.txt", "test.txt"):
            if not _read(path / part, f"{name}/{part}").strip():
                raise DatasetError(f"dataset file {name}/{part} is empty: give it text")
        return
    raise DatasetError(
        f"unknown dataset {name!r}{did_you_mean(name, list(_NAMED))}: use 'embedded', 'wikitext2', "
        "a text file, or a folder with train.txt and test.txt"
    )


def _read(path: Path, name: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DatasetError(f"dataset file {name!r} is not UTF-8 text") from None
    except OSError as exc:
        raise DatasetError(f"dataset file {name!r} cannot be read: {exc.strerror or exc}") from None


def _paragraphs(path: Path, name: str) -> list[str]:
    """The blank-line separated paragraphs of a single-file dataset (at least two)."""
    paragraphs = [p.strip() for p in _read(path, name).split("\n\n") if p.strip()]
    if len(paragraphs) < 2:
        found = "is empty" if not paragraphs else "has one paragraph"
        raise DatasetError(f"text file {name!r} {found}; it needs at least two blank-line separated "
                           "paragraphs (one is evaluated, the others calibrate)")
    return paragraphs


def check_length(name: str, tokens: int, protocol: str) -> None:
    """Refuse an evaluation text too short for the perplexity ``protocol`` (a clear line instead
    of the evaluation's own error once a case is measured)."""
    match = re.match(r"^nonoverlap-(\d+)$", protocol)
    need = int(match.group(1)) if match else 2
    if tokens < need:
        raise DatasetError(f"dataset {name!r}: the evaluated text is {tokens} tokens, too short for perplexity "
                           f"protocol {protocol} (needs at least {need}); give a longer text"
                           + (" or a shorter --llmeff-protocol, e.g. nonoverlap-" + str(max(2, tokens))
                              if match and tokens >= 2 else ""))


def load_text_data(name: str) -> TextData:
    """Load the dataset called ``name`` (see the module docstring)."""
    check_dataset(name)
    if name == EMBEDDED_NAME:
        splits = corpus.read_snapshot(REFERENCE_DIR / "corpus.jsonl.gz")
        heldout = tuple(d.text for d in splits["heldout"])
        return TextData(
            name, corpus.DOC_SEPARATOR.join(heldout), tuple(d.text for d in splits["train"]),
            "embedded corpus (Python stdlib documentation), held-out split", heldout,
        )
    if name == WIKITEXT2:
        return _wikitext2()
    path = Path(name).expanduser()
    if path.is_dir():
        train = _read(path / "train.txt", f"{name}/train.txt")
        return TextData(name, _read(path / "test.txt", f"{name}/test.txt"),
                        tuple(p for p in train.split("\n\n") if p.strip()), f"{path}/test.txt")
    paragraphs = _paragraphs(path, name)
    held = corpus.HELD_OUT_EVERY
    evaluated = [p for i, p in enumerate(paragraphs) if i % held == held - 1] or paragraphs[-1:]
    rest = [p for p in paragraphs if p not in evaluated]
    return TextData(name, corpus.DOC_SEPARATOR.join(evaluated), tuple(rest),
                    f"{path}, every {held}th paragraph", tuple(evaluated))


def _wikitext2() -> TextData:
    try:
        from datasets import load_dataset

        test = load_dataset("wikitext", "wikitext-2-raw-v1", split="test")
        train = load_dataset("wikitext", "wikitext-2-raw-v1", split="train")
    except Exception as exc:  # datasets raises many types when offline; all mean "not available"
        raise DatasetError(
            "WikiText-2 could not be loaded through `datasets` (no network and no local cache?): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}. "
            "Use --llmeff-dataset embedded or a local text file instead."
        ) from None
    # GPTQ-paper convention: the raw lines joined with blank lines; documents start at " = Title = ".
    lines = list(test["text"])
    documents: list[str] = []
    for line in lines:
        if re.match(r"^ = [^=]", line) or not documents:
            documents.append("")
        documents[-1] += line
    return TextData(WIKITEXT2, "\n\n".join(lines), tuple(t for t in train["text"] if t.strip()),
                    "WikiText-2 raw, test split", tuple(d for d in documents if d.strip()))
