"""Head-pruning scores and layer-pruning distances against a direct reading of the model.

The references read the attention maps and hidden states straight from transformers (eager
attention, ``output_hidden_states``), one sample at a time, on the embedded model and on a tiny
randomly initialised Llama with grouped-query attention.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from pytest_llmeff.compress import heads, layers
from pytest_llmeff.compress.base import Candidate, CompressContext


def direct_received_attention(model, windows: torch.Tensor, group: int = 1) -> list[torch.Tensor]:
    """Per layer and unit: max over key positions j of the share of the unit's attention that j
    receives, (1/T)·Σ_i A[i, j] over every query i, averaged over samples (and a KV group's heads)."""
    model.set_attn_implementation("eager")
    per_sample = []
    with torch.no_grad():
        for row in windows:
            maps = model(input_ids=row[None], output_attentions=True).attentions  # L × (1, H, T, T)
            per_sample.append([a[0].float().sum(dim=1) / a.shape[-1] for a in maps])  # L × (H, T)
    out = []
    for layer in range(len(per_sample[0])):
        received = torch.stack([s[layer] for s in per_sample]).mean(dim=0)  # (H, T)
        units = received.view(received.shape[0] // group, group, -1).mean(dim=1)
        out.append(units.amax(dim=-1))
    return out


def test_head_scores_are_the_attention_one_token_receives(embedded, heldout_ids):
    windows = torch.tensor(heldout_ids[: 3 * 256]).view(3, 256)
    want = direct_received_attention(embedded.model, windows)
    got = heads.head_scores(heads.received_attention(embedded.model, windows, batch_size=2))
    for w, g in zip(want, got, strict=True):
        assert torch.allclose(g, w, atol=1e-6)


def tiny_llama() -> LlamaForCausalLM:
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32)
    return LlamaForCausalLM(cfg).eval()


def test_gqa_unit_is_the_kv_group():
    model = tiny_llama()
    windows = torch.randint(0, 97, (3, 24), generator=torch.Generator().manual_seed(2))
    want = direct_received_attention(model, windows, group=2)
    got = heads.head_scores(heads.received_attention(model, windows))
    assert [g.numel() for g in got] == [2, 2, 2]
    for w, g in zip(want, got, strict=True):
        assert torch.allclose(g, w, atol=1e-6)


def direct_distances(model, windows: torch.Tensor, position: str) -> list[list[float]]:
    """Row n-1, column ℓ: arccos(cos(h_ℓ, h_ℓ+n))/π of the inputs to layers ℓ and ℓ+n, at the last
    token (or averaged over all tokens), averaged over samples; ℓ + n ≤ L − 1."""
    with torch.no_grad():
        hs = model(input_ids=windows, output_hidden_states=True).hidden_states
    n_layers = len(hs) - 1
    rows = []
    for n in range(1, n_layers):
        row = []
        for start in range(n_layers - n):
            a, b = hs[start].double(), hs[start + n].double()
            if position == "last":
                a, b = a[:, -1], b[:, -1]
            cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))
            row.append(float((torch.arccos(cos.clamp(-1, 1)) / math.pi).mean()))
        rows.append(row)
    return rows


@pytest.mark.parametrize("position", ["last", "all"])
def test_layer_distances_match_a_direct_computation(embedded, heldout_ids, position):
    windows = torch.tensor(heldout_ids[: 4 * 256]).view(4, 256)
    want = direct_distances(embedded.model, windows, position)
    got = layers.distance_matrix(embedded.model, windows, position=position, batch_size=3)
    assert len(got) == len(want) == 5
    for w, g in zip(want, got, strict=True):
        assert g == pytest.approx(w, abs=1e-5)
    assert layers.angular_distances(embedded.model, windows, 2, position=position) == pytest.approx(want[1], abs=1e-5)


def context(embedded) -> CompressContext:
    from pytest_llmeff.models.datasets import load_text_data

    return CompressContext(base=embedded, text=lambda: load_text_data("embedded"), workdir=Path("."),
                           cache_dir=Path("."), progress=lambda line: None)


def test_layer_pruning_removes_the_block_closest_at_the_last_token(embedded):
    from pytest_llmeff.compress.calibration import calibration_windows

    ctx = context(embedded)
    rows = direct_distances(embedded.model, calibration_windows(ctx, 4), "last")
    start = min(range(len(rows[0])), key=rows[0].__getitem__)
    pruned = layers.LayerPruning(ratio=0.2, samples=4).apply(Candidate(embedded.model), ctx)
    assert f"removed layers {start}–{start} of 6" in pruned.notes[0]
    assert "last token" in pruned.notes[0]


def test_head_pruning_that_removes_nothing_says_why(embedded):
    pruned = heads.HeadPruning(threshold=0.9, samples=2, id="ah90").apply(Candidate(embedded.model), context(embedded))
    cfg = embedded.model.config
    assert pruned.info["heads"] == cfg.n_layer * cfg.n_head
    note = pruned.notes[0]
    assert note.startswith("ah90: no head gives more than 0.9 of its attention to one token; highest 0.0")


def test_report_holds_both_pruning_maps(embedded, tmp_path):
    from pytest_llmeff.compress.maps import pruning_maps, removed_by
    from pytest_llmeff.report_files import write_report

    maps = pruning_maps(context(embedded), samples=2)
    n_layer, n_head = embedded.model.config.n_layer, embedded.model.config.n_head
    assert [len(layer) for layer in maps.heads] == [n_head] * n_layer and maps.unit == "head"
    assert [len(row) for row in maps.distances] == list(range(n_layer - 1, 0, -1))
    assert removed_by(maps, 0.0) == n_layer * (n_head - 1)  # every head above: one per layer stays
    written = write_report([], tmp_path, maps=maps)
    assert {tmp_path / "heads.png", tmp_path / "layers.png"} <= set(written)
    page = (tmp_path / "report.html").read_text()
    assert 'href="heads.png"' in page and 'href="layers.png"' in page and "per-layer max" in page
