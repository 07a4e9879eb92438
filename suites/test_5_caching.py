"""Caching (third study): static and semantic prompt caches, quantized KV cache — generation latency
on a replayed prompt list, with answers checked against the no-cache answers."""

import pytest


# Caching cases time whole replays (18 prompts) without per-call samples, and the no-cache answers
# again after each, not interleaved call by call: their gate stays wider than the other suites'.
@pytest.mark.llmeff(budgets={
    "cache:static": ["exact_match>=1", "opt<=baseline+25%"],  # an exact cache must not change answers
    "*": ["opt<=baseline+25%"],
})
@pytest.mark.parametrize("strategy", ["none", "static", "semantic", "kv-quantized(backend=hqq)",
                                      "kv-quantized(backend=quanto)", "kv-quantized(backend=fp8)"])
def test_caching(llmeff, strategy):
    llmeff.run_cache(strategy)
