"""The compressor catalog on the embedded model: each method does what it says, and the results
save and load back with the same perplexity."""

from __future__ import annotations

import pytest
import torch

from pytest_llmeff.compress import Candidate, CompressContext, CompressError, parse_pipeline, structure
from pytest_llmeff.measure.perplexity import perplexity
from pytest_llmeff.models.datasets import load_text_data
from pytest_llmeff.models.loading import from_pretrained

WINDOWS = 12  # perplexity on the first 12 held-out windows: enough to compare, quick on 2 cores


@pytest.fixture(scope="module")
def ctx(embedded, tmp_path_factory):
    data = load_text_data("embedded")
    root = tmp_path_factory.mktemp("compress")
    return CompressContext(base=embedded, text=lambda: data, workdir=root / "work", cache_dir=root / "cache",
                           seed=0, progress=lambda _m: None)


@pytest.fixture(scope="module")
def base_ppl(embedded, heldout_ids):
    return perplexity(embedded.model, heldout_ids, "nonoverlap-256", max_windows=WINDOWS).value


def compress(name, ctx):
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    pipeline = parse_pipeline(name)
    pipeline.check(ctx)
    return pipeline.apply(Candidate(ctx.base.model), ctx)


def ppl(model, ids):
    return perplexity(model, ids, "nonoverlap-256", max_windows=WINDOWS).value


def reloads_with_same_perplexity(candidate, ids, tmp_path):
    value = ppl(candidate.model, ids)
    candidate.model.save_pretrained(tmp_path)
    again = from_pretrained(str(tmp_path), use_safetensors=True, dtype=torch.float32).eval()
    assert ppl(again, ids) == pytest.approx(value, rel=1e-5)
    return value


def test_head_pruning_is_structural_and_monotone_in_the_threshold(ctx, heldout_ids, tmp_path):
    heads = sum(q for q, _, _ in structure.head_layout(ctx.base.model))
    ah90, ah80 = compress("ah90", ctx), compress("ah80", ctx)
    assert ah90.info["heads"] <= heads and ah80.info["heads"] <= ah90.info["heads"]
    forced = compress("ah(threshold=0.01)", ctx)  # every head above: one per layer stays
    assert structure.head_layout(forced.model) == [(1, 1, 32)] * 6
    assert sum(p.numel() for p in forced.model.parameters()) < sum(p.numel() for p in ctx.base.model.parameters())
    assert any("had every unit above the threshold" in n for n in forced.notes)
    reloads_with_same_perplexity(forced, heldout_ids, tmp_path)


def test_magnitude_and_two_four_sparsity(ctx, heldout_ids, base_ppl):
    from pytest_llmeff.compress.sparsity import block_linears

    mag = compress("magnitude", ctx)
    assert mag.info["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert any("mask only" in n and "no speed-up" in n for n in mag.notes)
    results = {}
    for name in ("2:4", "2:4-sparsegpt"):
        cand = compress(name, ctx)
        for _, weight in block_linears(cand.model):
            groups = (weight.reshape(weight.shape[0], -1, 4) == 0).sum(dim=-1)
            assert bool((groups >= 2).all()), name  # two of every four consecutive weights are zero
        assert any(n.startswith(f"{name}: mask only") for n in cand.notes)  # CPU: no sparse kernels
        results[name] = ppl(cand.model, heldout_ids)
    # SparseGPT compensates the pruned weights: it must beat plain magnitude at the same pattern.
    assert results["2:4-sparsegpt"] < results["2:4"]
    assert all(v > base_ppl for v in results.values())


def test_layer_pruning_keeps_the_last_layer_and_reloads(ctx, heldout_ids, tmp_path):
    l20, l40 = compress("layer20", ctx), compress("layer40", ctx)
    assert (l20.info["layers"], l40.info["layers"]) == (5, 4)
    last = ctx.base.model.transformer.h[-1]
    assert torch.equal(l40.model.transformer.h[-1].mlp.c_fc.weight, last.mlp.c_fc.weight)
    reloads_with_same_perplexity(l40, heldout_ids, tmp_path)


def test_distillation_trains_caches_and_reloads(ctx, heldout_ids, tmp_path):
    student = compress("kd(steps=15)", ctx)
    assert student.info["layers"] == 3
    assert any("cached" in n for n in student.notes)
    before = ppl(_untrained_student(ctx), heldout_ids)
    after = reloads_with_same_perplexity(student, heldout_ids, tmp_path)
    assert after < before  # training moved the student towards the teacher
    again = compress("kd(steps=15)", ctx)
    assert any("from cache" in n for n in again.notes)
    assert ppl(again.model, heldout_ids) == pytest.approx(after, rel=1e-5)


def test_a_student_trained_on_other_thread_counts_is_another_cache_entry(ctx, monkeypatch):
    from pytest_llmeff.compress import distill

    teacher, recipe = ctx.base.model, distill.TrainRecipe(steps=15)
    keys = set()
    for threads in (1, 2):
        monkeypatch.setattr(distill, "training_threads", lambda threads=threads: threads)
        keys.add(distill.cache_key(teacher, recipe, "layers:[0, 2, 4]", ctx))
    assert len(keys) == 2  # its last bits depend on the thread count: never mixed up


def _untrained_student(ctx):
    import copy

    model = copy.deepcopy(ctx.base.model)
    structure.keep_layers(model, [0, 2, 4])
    return model


def test_distillation_losses_differ(ctx, heldout_ids):
    forward = ppl(compress("kd(steps=4)", ctx).model, heldout_ids)
    reverse = ppl(compress("kd-rkl(steps=4)", ctx).model, heldout_ids)
    assert forward != reverse


def test_head_pruned_model_quantises(ctx, heldout_ids):
    cand = compress("ah(threshold=0.01)+nf4", ctx)
    assert type(cand.model.transformer.h[0].attn.c_attn).__name__ == "Linear4bit"
    # One 32-wide head left: c_proj's input is too narrow for the CPU 4-bit kernel and stays float.
    assert any("6 linear layers left unquantised" in n for n in cand.notes)
    assert torch.isfinite(torch.tensor(ppl(cand.model, heldout_ids)))


def test_gptq4_on_cpu(ctx, heldout_ids, monkeypatch):
    # This test is about the compressor, not gptqmodel's kernels: on a machine that has never run
    # it, gptqmodel builds a C++ packing extension with ninja (~30 s, under ~/.cache/gptqmodel) and
    # torch.compile builds its dequantisation (inductor, ~30 s); its Python packing and eager mode
    # give the same checkpoint without either.
    monkeypatch.setenv("GPTQMODEL_DISABLE_PACK_EXT", "1")
    with torch._dynamo.config.patch(disable=True):
        _gptq4_quantises_and_caches(ctx, heldout_ids)


def _gptq4_quantises_and_caches(ctx, heldout_ids):
    # allow_emulated: CPUs without native bfloat16 (this test's AVX2 runners) refuse GPTQ otherwise.
    # Four calibration documents are enough for these 3.5 M parameters (16 gave the same perplexity),
    # and four windows to compare: the CPU kernel takes ~0.7 s a window on 2 cores.
    spec = "gptq4(samples=4, allow_emulated=true)"
    cand = compress(spec, ctx)
    assert any("group size 64" in n for n in cand.notes)  # 192-wide layers do not divide into 128
    assert cand.info["parameters"] == sum(p.numel() for p in ctx.base.model.parameters())
    base = perplexity(ctx.base.model, heldout_ids, "nonoverlap-256", max_windows=4).value
    first = perplexity(cand.model, heldout_ids, "nonoverlap-256", max_windows=4).value
    assert first == pytest.approx(base, rel=0.15)
    # The checkpoint is cached: a second run loads the same files instead of quantising again.
    again = compress(spec, ctx)
    assert any("checkpoint from cache" in n for n in again.notes)
    ours, cached = cand.model.state_dict(), again.model.state_dict()
    assert ours.keys() == cached.keys() and all(torch.equal(ours[k], cached[k]) for k in ours)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ah(threshold=1.5)", r"threshold must lie in \(0, 1\]"),
        ("ah(threshold=0)", r"threshold must lie in \(0, 1\]"),
        ("layer(ratio=1.0)", r"ratio must lie in \(0, 1\)"),
        ("kd(keep=1)", "share of layers"),
        ("kd(loss=mse)", "has no setting loss"),
        ("magnitude(sparsity=1.2)", "sparsity must lie in"),
        ("gptq(bits=5)", "bits must be 2, 3, 4 or 8"),
        ("nf4+ah80", "cannot follow 'nf4'"),
    ],
)
def test_bad_settings_and_chains(text, message):
    with pytest.raises(CompressError, match=message):
        parse_pipeline(text)


def test_ratio_that_would_remove_every_layer(ctx):
    from pytest_llmeff.compress.layers import LayerPruning

    with pytest.raises(CompressError, match="would remove every layer"):
        LayerPruning(ratio=0.9).count(2)


def _two_four_layers(device: str, dtype: torch.dtype) -> list[torch.nn.Module]:
    from transformers.pytorch_utils import Conv1D

    from pytest_llmeff.compress.sparsity import two_four_mask

    torch.manual_seed(0)
    linear, conv = torch.nn.Linear(128, 256), Conv1D(256, 128)  # Conv1D(out, in) stores W as (in, out)
    with torch.no_grad():
        linear.weight.mul_(two_four_mask(linear.weight))
        conv.weight.copy_((conv.weight.t() * two_four_mask(conv.weight.t())).t())  # groups along the input
    return [linear.to(device, dtype), conv.to(device, dtype)]


def test_sparse_kernel_swap_falls_back_to_dense_where_it_cannot_run():
    from pytest_llmeff.compress.sparsity import _sparse_kernel_layer

    x = torch.randn(8, 128)
    for layer in _two_four_layers("cpu", torch.float32):  # the kernels need CUDA and 16-bit weights
        before = layer(x)
        assert _sparse_kernel_layer(layer) is False
        assert type(layer.weight) is torch.nn.Parameter and layer.weight.requires_grad
        assert torch.equal(layer(x), before)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="2:4 sparse kernels need a CUDA GPU")
def test_sparse_kernel_swap_on_cuda_keeps_the_outputs():
    from pytest_llmeff.compress.sparsity import _sparse_kernel_layer

    if torch.cuda.get_device_capability() < (8, 0):
        pytest.skip("2:4 sparse kernels need compute capability 8.0 or newer")
    x = torch.randn(64, 128, device="cuda", dtype=torch.float16)
    for layer in _two_four_layers("cuda", torch.float16):
        before = layer(x)
        assert _sparse_kernel_layer(layer) is True
        assert isinstance(layer.weight, torch.sparse.SparseSemiStructuredTensor)
        assert torch.allclose(layer(x), before, rtol=1e-2, atol=1e-2)


def test_half_precision_student_trains_to_finite_weights(ctx):
    # fp16 AdamW rounds its epsilon to 0: without fp32 master weights five steps gave NaN weights.
    import copy

    from pytest_llmeff.compress.distill import TrainRecipe, train_student

    teacher = copy.deepcopy(ctx.base.model).half()
    student = copy.deepcopy(teacher)
    curve = train_student(student, teacher, ctx, TrainRecipe(steps=5, batch_size=2, seq_len=64), "fp16")
    assert next(student.parameters()).dtype == torch.float16  # handed back in the dtype it came in
    assert all(bool(torch.isfinite(p).all()) for p in student.parameters())
    assert all(torch.isfinite(torch.tensor(point["loss"])) for point in curve)


def test_two_four_then_quantised_says_the_sparsity_is_stored_dense(ctx):
    # Sparse kernels are a pipeline's last act; after quantisation there are none to use.
    pytest.importorskip("bitsandbytes")
    cand = compress("2:4+nf4", ctx)
    assert any(n.startswith("2:4: mask only — the weights were quantised afterwards") for n in cand.notes)
