"""The embedded corpus: deterministic split, reproducible snapshot."""

from __future__ import annotations

import json

import pytest

from pytest_llmeff.models import corpus
from pytest_llmeff.models.datasets import DatasetError, check_dataset, load_text_data
from pytest_llmeff.models.embedded import REFERENCE_DIR

RECIPE = json.loads((REFERENCE_DIR / "RECIPE.json").read_text())


def test_split_rule_every_twentieth_document():
    docs = [corpus.Document(str(i), f"text {i}") for i in range(45)]
    split = corpus.split_documents(docs)
    assert [d.source for d in split["heldout"]] == ["19", "39"]
    assert len(split["train"]) == 43


def test_snapshot_round_trip_is_byte_stable(tmp_path):
    docs = [corpus.Document(f"s{i}", f"document {i} " * 20) for i in range(40)]
    h1 = corpus.write_snapshot(docs, tmp_path / "a.jsonl.gz")
    h2 = corpus.write_snapshot(docs, tmp_path / "b.jsonl.gz")
    assert h1 == h2 and (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()
    back = corpus.read_snapshot(tmp_path / "a.jsonl.gz")
    assert back == corpus.split_documents(docs)


def test_shipped_snapshot_has_the_recorded_sizes():
    splits = corpus.read_snapshot(REFERENCE_DIR / "corpus.jsonl.gz")
    assert len(splits["train"]) == RECIPE["corpus"]["train_documents"]
    assert len(splits["heldout"]) == RECIPE["corpus"]["heldout_documents"]


def test_collect_from_this_interpreter_reads_pydoc_and_docstrings():
    docs = corpus.collect_documents()
    sources = {d.source.split(":")[0] for d in docs}
    assert sources == {"pydoc", "stdlib"}
    assert len(docs) > 1000 and all(d.text.strip() for d in docs)


def test_datasets_text_file_and_folder(tmp_path):
    text = "\n\n".join(f"paragraph {i} " * 10 for i in range(40))
    (tmp_path / "doc.txt").write_text(text)
    data = load_text_data(str(tmp_path / "doc.txt"))
    assert data.eval_text.count("paragraph") == 20  # paragraphs 19 and 39, ten words each
    assert len(data.train_texts) == 38
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "train.txt").write_text("a b c\n\nd e f")
    (folder / "test.txt").write_text("x y z")
    assert load_text_data(str(folder)).eval_text == "x y z"


def test_dataset_errors():
    with pytest.raises(DatasetError, match="did you mean 'wikitext2'"):
        check_dataset("wikitext")
    with pytest.raises(DatasetError, match="did you mean 'embedded'"):
        check_dataset("embeded")
