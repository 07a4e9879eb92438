"""Structural surgery on decoder-only transformers: keep some layers, keep some attention heads.

transformers 5 has no ``prune_heads`` any more, so head removal is done here, for three families:

- GPT-2 (``transformer.h``; fused ``c_attn`` Conv1D [q|k|v] and ``c_proj``),
- OPT (``model.decoder.layers``; ``q/k/v_proj`` and ``out_proj``),
- Llama-style (``model.layers``; ``q/k/v/o_proj`` with grouped-query attention: Llama, Mistral,
  Qwen2/3…). With GQA a key/value head serves a group of query heads, so the unit removed is a
  whole group (one KV head and its query heads); with plain multi-head attention a group is a head.

A pruned model records what it kept in ``config.llmeff_structure`` so :func:`rebuild` can give a
freshly built model the same shapes before its saved weights are loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pytest_llmeff.compress.base import Unsupported

STRUCTURE_KEY = "llmeff_structure"


@dataclass(frozen=True)
class Family:
    name: str
    layers_path: tuple[str, ...]
    layer_count_attrs: tuple[str, ...]


GPT2 = Family("gpt2", ("transformer", "h"), ("n_layer", "num_hidden_layers"))
OPT = Family("opt", ("model", "decoder", "layers"), ("num_hidden_layers",))
LLAMA = Family("llama", ("model", "layers"), ("num_hidden_layers",))


def family(model: Any) -> Family:
    """Which supported family ``model`` belongs to (``Unsupported`` otherwise)."""
    model_type = getattr(model.config, "model_type", "")
    if model_type == "gpt2":
        return GPT2
    if model_type == "opt":
        return OPT
    layers = _get(model, LLAMA.layers_path)
    if layers is not None and len(layers) and all(
        hasattr(getattr(layers[0], "self_attn", None), p) for p in ("q_proj", "k_proj", "v_proj", "o_proj")
    ):
        return LLAMA
    raise Unsupported(f"structural pruning supports GPT-2, OPT and Llama-style models; "
                      f"{type(model).__name__} ({model_type or 'unknown type'}) is not one of them")


def _get(obj: Any, path: Sequence[str]) -> Any:
    for part in path:
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def layers(model: Any) -> Any:
    """The model's list of decoder blocks."""
    return _get(model, family(model).layers_path)


def keep_layers(model: Any, keep: Sequence[int]) -> None:
    """Keep only the blocks at ``keep`` (in order), renumbering what indexes the KV cache."""
    import torch

    fam = family(model)
    blocks = layers(model)
    if not keep:
        raise ValueError("cannot remove every layer")
    parent = _get(model, fam.layers_path[:-1])
    setattr(parent, fam.layers_path[-1], torch.nn.ModuleList([blocks[i] for i in keep]))
    for new_idx, block in enumerate(layers(model)):
        for module in block.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_idx  # caches are indexed by layer position
    for attr in fam.layer_count_attrs:
        if hasattr(model.config, attr):
            setattr(model.config, attr, len(keep))
    layer_types = getattr(model.config, "layer_types", None)
    if isinstance(layer_types, list) and len(layer_types) == len(blocks):
        model.config.layer_types = [layer_types[i] for i in keep]
    structure = getattr(model.config, STRUCTURE_KEY, None)
    if structure and structure.get("heads"):
        # Head records are keyed by layer position: carry them over to the new positions.
        old = structure["heads"]
        structure["heads"] = {str(n): old[str(o)] for n, o in enumerate(keep) if str(o) in old}


# ---------------------------------------------------------------------------- heads
def head_layout(model: Any) -> list[tuple[int, int, int]]:
    """Per layer: (query heads, key/value heads, head dim) as the model is now."""
    fam = family(model)
    out = []
    for block in layers(model):
        if fam is GPT2:
            attn = block.attn
            out.append((attn.split_size // attn.head_dim, attn.split_size // attn.head_dim, attn.head_dim))
        elif fam is OPT:
            attn = block.self_attn
            out.append((attn.num_heads, attn.num_heads, attn.head_dim))
        else:
            attn = block.self_attn
            q = attn.q_proj.out_features // attn.head_dim
            kv = attn.k_proj.out_features // attn.head_dim
            out.append((q, kv, attn.head_dim))
    return out


def _rows(units: Sequence[int], size: int) -> list[int]:
    return [u * size + i for u in units for i in range(size)]


def _shrink_linear(linear: Any, keep: list[int], dim: int) -> None:
    """Keep output rows (dim 0) or input columns (dim 1) of an ``nn.Linear``, in place."""
    import torch

    index = torch.tensor(keep, device=linear.weight.device)
    linear.weight = torch.nn.Parameter(linear.weight.index_select(dim, index).clone())
    if dim == 0:
        if linear.bias is not None:
            linear.bias = torch.nn.Parameter(linear.bias.index_select(0, index).clone())
        linear.out_features = len(keep)
    else:
        linear.in_features = len(keep)


def _shrink_conv1d(conv: Any, keep: list[int], dim: int) -> None:
    """GPT-2's Conv1D stores weight as (in, out): dim 1 selects outputs, dim 0 inputs."""
    import torch

    index = torch.tensor(keep, device=conv.weight.device)
    conv.weight = torch.nn.Parameter(conv.weight.index_select(dim, index).clone())
    if dim == 1:
        conv.bias = torch.nn.Parameter(conv.bias.index_select(0, index).clone())
        conv.nf = len(keep)


def keep_heads(model: Any, layer: int, keep_groups: Sequence[int]) -> None:
    """Keep the attention units ``keep_groups`` of ``layer`` (heads; GQA groups for Llama-style models)."""
    if not keep_groups:
        raise ValueError(f"layer {layer}: at least one attention head must stay")
    fam = family(model)
    block = layers(model)[layer]
    q_heads, kv_heads, hd = head_layout(model)[layer]
    keep = sorted(keep_groups)
    if fam is GPT2:
        attn = block.attn
        width = attn.split_size  # c_attn's output is [q | k | v], each `width` wide
        cols = [part * width + c for part in range(3) for c in _rows(keep, hd)]
        _shrink_conv1d(attn.c_attn, cols, 1)
        _shrink_conv1d(attn.c_proj, _rows(keep, hd), 0)
        attn.split_size = len(keep) * hd
        attn.num_heads = len(keep)
    elif fam is OPT:
        attn = block.self_attn
        for proj in (attn.q_proj, attn.k_proj, attn.v_proj):
            _shrink_linear(proj, _rows(keep, hd), 0)
        _shrink_linear(attn.out_proj, _rows(keep, hd), 1)
        attn.num_heads = len(keep)
    else:
        attn = block.self_attn
        group = q_heads // kv_heads  # query heads per KV head
        q_units = [g * group + j for g in keep for j in range(group)]
        _shrink_linear(attn.q_proj, _rows(q_units, hd), 0)
        _shrink_linear(attn.k_proj, _rows(keep, hd), 0)
        _shrink_linear(attn.v_proj, _rows(keep, hd), 0)
        _shrink_linear(attn.o_proj, _rows(q_units, hd), 1)
        for name in ("num_heads", "num_attention_heads"):
            if hasattr(attn, name):
                setattr(attn, name, len(q_units))
        for name in ("num_key_value_heads",):
            if hasattr(attn, name):
                setattr(attn, name, len(keep))
    structure = dict(getattr(model.config, STRUCTURE_KEY, None) or {})
    heads = dict(structure.get("heads", {}))
    heads[str(layer)] = list(keep) if str(layer) not in heads else [heads[str(layer)][k] for k in keep]
    structure["heads"] = heads
    structure.setdefault("units", "kv-groups" if fam is LLAMA and q_heads != kv_heads else "heads")
    setattr(model.config, STRUCTURE_KEY, structure)


def attention_units(model: Any) -> list[int]:
    """Per layer, the number of prunable attention units (heads, or KV groups under GQA)."""
    return [kv for _, kv, _ in head_layout(model)]


def rebuild(model: Any) -> None:
    """Give a freshly built model the head structure recorded in its config (before loading weights).

    The recorded indices refer to the original heads; a fresh model has them all, so the same
    indices select the same shapes.
    """
    structure = getattr(model.config, STRUCTURE_KEY, None) or {}
    heads = structure.get("heads", {})
    original = dict(heads)
    structure = dict(structure)
    structure["heads"] = {}
    setattr(model.config, STRUCTURE_KEY, structure)
    for layer, kept in sorted(original.items(), key=lambda kv: int(kv[0])):
        keep_heads(model, int(layer), kept)
