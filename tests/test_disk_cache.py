"""The on-disk cache of students and GPTQ checkpoints: finished entries only, built atomically."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_llmeff.compress import disk_cache


def test_an_entry_is_trusted_only_once_finished(tmp_path: Path) -> None:
    folder = tmp_path / "gptq" / "abc"
    assert disk_cache.cached(folder) is None

    def make(tmp: Path) -> dict:
        (tmp / "model.safetensors").write_bytes(b"weights")
        return {"minutes": 0.5}

    record = disk_cache.build(folder, make)
    assert record == {"minutes": 0.5} and disk_cache.cached(folder) == {"minutes": 0.5}
    assert (folder / "model.safetensors").read_bytes() == b"weights"
    assert [p.name for p in folder.parent.iterdir()] == ["abc"]  # no temporary folder left behind


def test_a_failed_build_leaves_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "students" / "k"

    def make(tmp: Path) -> dict:
        (tmp / "half-written").write_text("x")
        raise RuntimeError("stopped midway")

    with pytest.raises(RuntimeError):
        disk_cache.build(folder, make)
    assert disk_cache.cached(folder) is None and list(folder.parent.iterdir()) == []


def test_an_unfinished_folder_is_replaced_and_a_finished_one_kept(tmp_path: Path) -> None:
    folder = tmp_path / "k"
    folder.mkdir()
    (folder / "model.safetensors").write_text("from a run that was killed")
    disk_cache.build(folder, lambda tmp: {"n": 1})
    assert disk_cache.cached(folder) == {"n": 1} and not (folder / "model.safetensors").exists()

    # another run finished the same entry while this one was building: the first one stays
    assert disk_cache.build(folder, lambda tmp: {"n": 2}) == {"n": 1}
    assert json.loads((folder / disk_cache.DONE).read_text()) == {"n": 1}


def test_keys_follow_every_setting() -> None:
    job = {"bits": 4, "group_size": 64, "calibration": [{"input_ids": [1, 2]}], "source": "aa"}
    assert disk_cache.key_of(job) == disk_cache.key_of(dict(reversed(list(job.items()))))
    for change in ({"bits": 3}, {"group_size": 32}, {"calibration": [{"input_ids": [1, 3]}]}, {"source": "ab"}):
        assert disk_cache.key_of({**job, **change}) != disk_cache.key_of(job)


def test_model_digest_sees_one_changed_weight() -> None:
    torch = pytest.importorskip("torch")
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=32, n_positions=16))
    before = disk_cache.model_digest(model)
    assert disk_cache.model_digest(model) == before
    with torch.no_grad():
        model.transformer.h[0].mlp.c_fc.weight[0, 0] += 1e-3
    assert disk_cache.model_digest(model) != before
