"""Pruning: attention heads (AH90 / AH80), magnitude and 2:4 sparsity, angular-distance layer pruning."""

import pytest


@pytest.mark.llmeff(
    # ah(threshold=0.3): the embedded model has no head near the studies' 0.8 / 0.9 (its highest
    # score is below 0.5), so AH90 / AH80 keep every head; 0.3 shows structural removal on it.
    compressors=["ah90", "ah80", "ah(threshold=0.3)", "magnitude", "2:4", "2:4-sparsegpt", "layer20", "layer40"],
    budgets=["perplexity:+100%", "perplexity<=baseline+0.5%", "opt<=baseline+10%"],
)
def test_pruning(llmeff, compressor):
    llmeff.run(compressor)
