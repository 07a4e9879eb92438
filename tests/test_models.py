"""The embedded reference model (integrity, learned quality) and model resolution errors."""

from __future__ import annotations

import json

import pytest

from pytest_llmeff.measure.perplexity import perplexity
from pytest_llmeff.models.embedded import REFERENCE_DIR, sha256_file
from pytest_llmeff.models.loading import ModelLoadError, load_model, resolve_model

RECIPE = json.loads((REFERENCE_DIR / "RECIPE.json").read_text())


@pytest.mark.parametrize("name", ["model.safetensors", "tokenizer.json", "config.json"])
def test_shipped_files_match_the_recipe_hashes(name):
    assert sha256_file(REFERENCE_DIR / name) == RECIPE["sha256"][name]


def test_corpus_matches_the_recipe_hash():
    assert sha256_file(REFERENCE_DIR / RECIPE["corpus"]["file"]) == RECIPE["corpus"]["sha256"]


def test_recorded_heldout_perplexity_is_reproduced(embedded, heldout_ids):
    recorded = RECIPE["heldout_perplexity"]
    result = perplexity(embedded.model, heldout_ids, recorded["protocol"])
    assert result.tokens_scored == recorded["tokens_scored"]
    assert result.value == pytest.approx(recorded["value"], rel=1e-3)


def test_the_model_has_learned():
    # Uniform guessing over the vocabulary has perplexity = vocabulary size.
    vocab = RECIPE["recipe"]["vocab_size"]
    assert RECIPE["heldout_perplexity"]["value"] < vocab / 20


def test_local_folder_loads_like_the_embedded_model(tmp_path, embedded):
    embedded.model.save_pretrained(tmp_path)
    embedded.tokenizer.save_pretrained(tmp_path)
    spec = resolve_model(str(tmp_path))
    assert spec.source == "local"
    loaded = load_model(spec, "cpu", "float32")
    assert loaded.parameters == embedded.parameters


def test_missing_folder_suggests_a_sibling(tmp_path):
    (tmp_path / "my-model").mkdir()
    with pytest.raises(ModelLoadError, match="does not exist — did you mean .*my-model"):
        resolve_model(str(tmp_path / "my-modle"))


def test_embedded_typo_in_a_path_like_name():
    with pytest.raises(ModelLoadError, match="did you mean 'embedded'"):
        resolve_model("./embeded")


def test_folder_without_config_or_weights(tmp_path):
    with pytest.raises(ModelLoadError, match="no config.json"):
        resolve_model(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="holds no weights"):
        resolve_model(str(tmp_path))


def test_pickled_weights_need_an_opt_in(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not really")
    with pytest.raises(ModelLoadError, match="can run code when loaded"):
        resolve_model(str(tmp_path))
    assert resolve_model(str(tmp_path), allow_pickle=True).allow_pickle


def test_hub_id_offline_is_a_clear_error(monkeypatch):
    # huggingface_hub reads HF_HUB_OFFLINE once, when it is imported (here long before this test):
    # without its constant the load waits ~45 s on the network before failing.
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    spec = resolve_model("some-org/some-model")
    assert spec.source == "hub" and spec.from_pretrained_kwargs()["use_safetensors"]
    with pytest.raises(ModelLoadError, match="could not load model 'some-org/some-model' from the Hugging Face hub"):
        load_model(spec, "cpu", "float32")
