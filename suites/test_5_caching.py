"""Caching (third study): static and semantic prompt caches, quantized KV cache — generation latency
on a replayed prompt list, with answers checked against the no-cache answers."""

import pytest


# Each case's replays are timed in turn with the no-cache replays (paired, like every other case):
# the same +10 % gate as the other suites.
@pytest.mark.llmeff(budgets={
    "cache:static": ["exact_match>=1", "opt<=baseline+10%"],  # an exact cache must not change answers
    "*": ["opt<=baseline+10%"],
})
@pytest.mark.parametrize("strategy", ["none", "static", "semantic", "kv-quantized(backend=hqq)",
                                      "kv-quantized(backend=quanto)", "kv-quantized(backend=fp8)"])
def test_caching(llmeff, strategy):
    llmeff.run_cache(strategy)
