"""Perplexity protocols on the embedded model, checked against transformers' own loss."""

from __future__ import annotations

import math

import pytest
import torch

from pytest_llmeff.measure.perplexity import PerplexityProtocol, perplexity


def test_nonoverlap_matches_the_models_own_loss(embedded, heldout_ids):
    ctx, n = 256, 6
    ids = heldout_ids[: ctx * n + 17]  # a ragged tail, dropped by the protocol
    result = perplexity(embedded.model, ids, "nonoverlap-256", batch_size=4)
    losses = []
    with torch.inference_mode():
        for i in range(n):
            window = torch.tensor([ids[i * ctx:(i + 1) * ctx]])
            losses.append(embedded.model(input_ids=window, labels=window).loss.item())
    assert result.value == pytest.approx(math.exp(sum(losses) / n), rel=1e-5)
    assert (result.windows, result.tokens_scored, result.protocol) == (n, n * (ctx - 1), "nonoverlap-256")
    assert (result.dtype, result.device) == ("float32", "cpu")


def test_batching_does_not_change_the_value(embedded, heldout_ids):
    ids = heldout_ids[: 256 * 5]
    one = perplexity(embedded.model, ids, "nonoverlap-256", batch_size=1).value
    many = perplexity(embedded.model, ids, "nonoverlap-256", batch_size=5).value
    assert one == pytest.approx(many, rel=1e-5)


def test_stride_scores_each_token_once_with_more_context(embedded, heldout_ids):
    ids = heldout_ids[: 256 * 6]
    stride = perplexity(embedded.model, ids, "stride-64")
    windows = (len(ids) - 256) // 64 + 1
    assert stride.windows == windows
    assert stride.tokens_scored == 255 + 64 * (windows - 1)
    # More context per scored token: a trained model predicts better than with cut windows.
    assert stride.value < perplexity(embedded.model, ids, "nonoverlap-256").value
    # A stride of the full context is the non-overlapping protocol.
    full = perplexity(embedded.model, ids, "stride-256")
    assert full.value == pytest.approx(perplexity(embedded.model, ids, "nonoverlap-256").value, rel=1e-6)


def test_max_windows_limits_the_work(embedded, heldout_ids):
    assert perplexity(embedded.model, heldout_ids, "nonoverlap-128", max_windows=3).windows == 3


@pytest.mark.parametrize(
    ("protocol", "message"),
    [("nonoverlap", "unknown perplexity protocol"), ("sliding-5", "unknown perplexity protocol"),
     ("nonoverlap-1", "≥ 2"), ("nonoverlap-4096", "needs 4096 positions"), ("stride-512", "larger than")],
)
def test_bad_protocols(embedded, heldout_ids, protocol, message):
    with pytest.raises(ValueError, match=message):
        perplexity(embedded.model, heldout_ids, protocol)


def test_text_too_short(embedded):
    with pytest.raises(ValueError, match="too short"):
        perplexity(embedded.model, [1, 2, 3], "nonoverlap-256")


def test_protocol_ids_round_trip():
    assert PerplexityProtocol.parse(" stride-512 ").id == "stride-512"
