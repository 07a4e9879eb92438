"""Shared fixtures for the plugin's own tests: the embedded model, loaded once."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def embedded():
    """The shipped reference model and tokenizer on CPU, float32."""
    import torch

    torch.manual_seed(0)
    from pytest_llmeff.models.loading import load_model, resolve_model

    return load_model(resolve_model("embedded"), "cpu", "float32")


@pytest.fixture(scope="session")
def heldout_ids(embedded):
    from pytest_llmeff.models.datasets import load_text_data

    return embedded.tokenizer(load_text_data("embedded").eval_text)["input_ids"]
