"""Pruning: attention heads (AH90 / AH80), magnitude and 2:4 sparsity, angular-distance layer pruning."""

import pytest


@pytest.mark.llmeff(
    # No head of the embedded model gives more than 0.031 of its attention to one token (the first
    # study's definition; docs/BENCHMARKS.md), so AH90, AH80 and ah(threshold=0.3) keep every head
    # and say why in the summary's notes; a model with attention sinks is the subject of its own work.
    compressors=["ah90", "ah80", "ah(threshold=0.3)", "magnitude", "2:4", "2:4-sparsegpt", "layer20", "layer40"],
    budgets=["perplexity:+100%", "perplexity<=baseline+0.5%", "opt<=baseline+10%"],
)
def test_pruning(llmeff, compressor):
    llmeff.run(compressor)
