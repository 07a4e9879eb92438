"""Calibration data for compressors that look at activations: token windows from the train split.

Compressors calibrate on the *training* text of the run's dataset, never on the evaluated text, so
quality is not flattered by having seen the test set.
"""

from __future__ import annotations

from typing import Any

from pytest_llmeff.compress.base import CompressContext


def train_token_stream(ctx: CompressContext, min_tokens: int) -> list[int]:
    """Tokens of the train documents, in order, joined like the evaluation text, until ``min_tokens``."""
    from pytest_llmeff.models.corpus import DOC_SEPARATOR

    ids: list[int] = []
    sep = ctx.tokenizer(DOC_SEPARATOR, add_special_tokens=False)["input_ids"]
    for text in ctx.text().train_texts:
        ids.extend(ctx.tokenizer(text, add_special_tokens=False)["input_ids"])
        ids.extend(sep)
        if len(ids) >= min_tokens:
            break
    return ids


def calibration_windows(ctx: CompressContext, n: int, length: int | None = None) -> Any:
    """``n`` consecutive windows of ``length`` tokens (default: the model's context, at most 512)
    from the start of the train split, as a ``(n, length)`` LongTensor on the CPU."""
    import torch

    length = length or min(ctx.base.context_length, 512)
    ids = train_token_stream(ctx, n * length)
    if len(ids) < n * length:
        n = max(1, len(ids) // length)
        if len(ids) < length:
            raise ValueError(f"the train text has {len(ids)} tokens: too few for one {length}-token window")
    return torch.tensor(ids[: n * length]).view(n, length)


def calibration_texts(ctx: CompressContext, n: int, max_tokens: int | None = None) -> list[dict[str, list[int]]]:
    """``n`` tokenised train documents, each cut to ``max_tokens`` (the model's context), as
    ``{"input_ids", "attention_mask"}`` dicts (what gptqmodel takes)."""
    max_tokens = max_tokens or min(ctx.base.context_length, 512)
    out = []
    for text in ctx.text().calibration_texts(n):
        enc = ctx.tokenizer(text, truncation=True, max_length=max_tokens)
        out.append({"input_ids": list(enc["input_ids"]), "attention_mask": list(enc["attention_mask"])})
    return out
