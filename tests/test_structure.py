"""Structural surgery on tiny GPT-2, OPT and Llama (GQA) models built from configs (no downloads).

Removing heads structurally must give exactly the output of the full model with those heads'
contributions zeroed, and the pruned model must save and load back unchanged.
"""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, OPTConfig, OPTForCausalLM

from pytest_llmeff.compress import structure
from pytest_llmeff.compress.base import Unsupported
from pytest_llmeff.models.loading import from_pretrained


def tiny(kind: str):
    torch.manual_seed(0)
    if kind == "gpt2":
        cfg = GPT2Config(vocab_size=97, n_positions=32, n_embd=32, n_layer=3, n_head=4,
                         resid_pdrop=0, embd_pdrop=0, attn_pdrop=0)
        return GPT2LMHeadModel(cfg).eval()
    if kind == "opt":
        cfg = OPTConfig(vocab_size=97, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, ffn_dim=64,
                        max_position_embeddings=32, word_embed_proj_dim=32, dropout=0.0, attention_dropout=0.0)
        return OPTForCausalLM(cfg).eval()
    cfg = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32)
    return LlamaForCausalLM(cfg).eval()


def zero_units(model, layer: int, removed: list[int]) -> None:
    """Zero the output-projection inputs of ``removed`` units: the reference for structural removal."""
    q, kv, hd = structure.head_layout(model)[layer]
    block = structure.layers(model)[layer]
    group = q // kv
    heads = [u * group + j for u in removed for j in range(group)]
    cols = [h * hd + i for h in heads for i in range(hd)]
    with torch.no_grad():
        if structure.family(model) is structure.GPT2:
            block.attn.c_proj.weight[cols, :] = 0  # Conv1D: (in, out)
        elif structure.family(model) is structure.OPT:
            block.self_attn.out_proj.weight[:, cols] = 0
        else:
            block.self_attn.o_proj.weight[:, cols] = 0


IDS = torch.randint(0, 97, (2, 16), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("kind", ["gpt2", "opt", "llama"])
def test_removing_heads_equals_zeroing_them(kind, tmp_path):
    model = tiny(kind)
    reference = tiny(kind)
    units = structure.attention_units(model)[1]
    keep = [0, units - 1] if units > 2 else [0]
    removed = [u for u in range(units) if u not in keep]
    zero_units(reference, 1, removed)
    structure.keep_heads(model, 1, keep)
    with torch.no_grad():
        expected = reference(input_ids=IDS).logits
        got = model(input_ids=IDS).logits
    assert torch.allclose(got, expected, atol=1e-5)
    q_before = structure.head_layout(reference)[1][0]
    assert structure.head_layout(model)[1][0] < q_before  # fewer query heads, smaller projections

    model.save_pretrained(tmp_path)
    again = from_pretrained(str(tmp_path), use_safetensors=True).eval()
    with torch.no_grad():
        assert torch.allclose(again(input_ids=IDS).logits, got, atol=1e-6)
    assert structure.head_layout(again) == structure.head_layout(model)


def test_gqa_prunes_whole_groups():
    model = tiny("llama")
    assert structure.head_layout(model)[0] == (4, 2, 8)  # 4 query heads share 2 KV heads
    structure.keep_heads(model, 0, [1])
    assert structure.head_layout(model)[0] == (2, 1, 8)
    assert model.config.llmeff_structure["units"] == "kv-groups"


def test_pruning_twice_records_original_indices(tmp_path):
    model = tiny("gpt2")
    structure.keep_heads(model, 2, [1, 2, 3])
    structure.keep_heads(model, 2, [0, 2])  # of the remaining: original heads 1 and 3
    assert model.config.llmeff_structure["heads"]["2"] == [1, 3]
    model.save_pretrained(tmp_path)
    assert structure.head_layout(from_pretrained(str(tmp_path)))[2][0] == 2


@pytest.mark.parametrize("kind", ["gpt2", "opt", "llama"])
def test_keep_layers_renumbers_and_reloads(kind, tmp_path):
    model = tiny(kind)
    structure.keep_heads(model, 2, [0])
    structure.keep_layers(model, [0, 2])
    assert len(structure.layers(model)) == 2
    assert model.config.llmeff_structure["heads"] == {"1": [0]}  # layer 2 is now layer 1
    with torch.no_grad():
        out = model(input_ids=IDS).logits
        generated = model.generate(input_ids=IDS[:1], max_new_tokens=4, do_sample=False)  # KV cache indices
    assert generated.shape == (1, 20)
    model.save_pretrained(tmp_path)
    again = from_pretrained(str(tmp_path)).eval()
    with torch.no_grad():
        assert torch.allclose(again(input_ids=IDS).logits, out, atol=1e-6)


def test_every_layer_or_head_cannot_go():
    model = tiny("gpt2")
    with pytest.raises(ValueError, match="at least one attention head"):
        structure.keep_heads(model, 0, [])
    with pytest.raises(ValueError, match="cannot remove every layer"):
        structure.keep_layers(model, [])


def test_unknown_architecture_is_unsupported():
    class Other(torch.nn.Module):
        config = type("C", (), {"model_type": "mamba"})()

    with pytest.raises(Unsupported, match="GPT-2, OPT and Llama-style"):
        structure.family(Other())
