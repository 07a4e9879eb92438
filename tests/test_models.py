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


def test_the_build_command_s_defaults_describe_the_shipped_model():
    from dataclasses import asdict

    from pytest_llmeff.models.build_reference import Recipe

    defaults, shipped = asdict(Recipe()), RECIPE["recipe"]
    assert {k: defaults[k] for k in shipped} == shipped
    # Fields added since: their defaults are what the shipped model was built with.
    assert defaults["attn_dropout"] == shipped["dropout"] and defaults["bos_share"] == 0.0
    assert (defaults["package_text"], defaults["train_split_repeats"], defaults["init_from"]) == (False, 1, "")


def test_training_windows_begin_with_bos_in_the_share_asked_for():
    import torch

    from pytest_llmeff.models.build_reference import Recipe, _training_batch

    data = torch.arange(1, 5001)  # no token 0 in the text: a 0 in front can only be the BOS token
    plain = _training_batch(data, Recipe(), torch.Generator().manual_seed(1))
    # Without BOS windows the draw is the one the shipped model was trained with: offsets only.
    starts = torch.randint(0, data.numel() - 256, (16,), generator=torch.Generator().manual_seed(1))
    assert torch.equal(plain, torch.stack([data[s:s + 256] for s in starts.tolist()]))
    mixed = _training_batch(data, Recipe(bos_share=0.5, batch_size=400), torch.Generator().manual_seed(1))
    with_bos = mixed[:, 0] == 0
    assert mixed.shape == (400, 256) and 150 < int(with_bos.sum()) < 250
    assert torch.equal(mixed[with_bos][:, 2:] - mixed[with_bos][:, 1:-1], torch.ones(int(with_bos.sum()), 254,
                                                                                      dtype=torch.long))


def test_extra_training_text_loses_every_document_that_overlaps_the_heldout_split():
    from pytest_llmeff.models.corpus import Document, decontaminate

    held = [Document("h", "one two three four five six seven eight nine ten eleven twelve thirteen fourteen")]
    docs = [Document("copy", held[0].text),
            Document("run", "before " + " ".join(held[0].text.split()[1:]) + " after"),  # 13 words shared
            Document("twelve", "x " + " ".join(held[0].text.split()[:12]) + " y"),  # only 12 in a row
            Document("other", "a different docstring about something else entirely")]
    assert [d.source for d in decontaminate(docs, held)] == ["twelve", "other"]


def test_the_training_stream_mixes_the_train_split_its_repeats_and_the_package_text():
    from pytest_llmeff.models.build_reference import Recipe, _training_ids
    from pytest_llmeff.models.corpus import DOC_SEPARATOR

    class Chars:  # a character tokenizer: token counts are character counts
        def __call__(self, text, add_special_tokens=True):
            if isinstance(text, list):
                return {"input_ids": [[ord(c) for c in t] for t in text]}
            return {"input_ids": [ord(c) for c in text]}

    train, extra = ["alpha", "beta"], ["gamma delta"]
    assert _training_ids(Chars(), train, [], Recipe()) == [ord(c) for c in DOC_SEPARATOR.join(train)]
    mixed = _training_ids(Chars(), train, extra, Recipe(package_text=True, train_split_repeats=3))
    text = "".join(map(chr, mixed))
    assert text.count("alpha") == text.count("beta") == 3 and text.count("gamma delta") == 1
    assert len(mixed) == 3 * (5 + 4) + 11 + 7 * len(DOC_SEPARATOR)
    assert mixed == _training_ids(Chars(), train, extra, Recipe(package_text=True, train_split_repeats=3))


def test_continued_training_refuses_a_start_model_of_another_shape(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    from pytest_llmeff.models.build_reference import Recipe, train_model

    GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=16, n_embd=16, n_layer=1, n_head=2)).save_pretrained(tmp_path)
    recipe = Recipe(vocab_size=64, n_positions=16, n_embd=16, n_layer=1, n_head=4, init_from=str(tmp_path))
    with pytest.raises(ValueError, match="n_head"):
        train_model(list(range(64)) * 4, list(range(64)), recipe, "cpu", max_minutes=1)


def test_recipe_overrides_check_their_types(capsys):
    import argparse

    from pytest_llmeff.models.build_reference import Recipe, _with_overrides

    parser = argparse.ArgumentParser()
    assert _with_overrides(Recipe(), ["package_text=true", "train_split_repeats=3"], parser).package_text is True
    with pytest.raises(SystemExit):
        _with_overrides(Recipe(), ["package_text=maybe"], parser)
    assert "'maybe' is not a bool" in capsys.readouterr().err
