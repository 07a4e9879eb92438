"""Quantization and casts on the run's model: base, fp16, bf16, bitsandbytes LLM.int8, nf4 and fp4."""

import pytest


@pytest.mark.llmeff(
    compressors=["base", "fp16", "bf16", "int8", "nf4", "fp4"],
    budgets={
        "*": ["perplexity:+5%", "opt<=baseline+15%"],
    },
)
def test_quantization(llmeff, compressor):
    llmeff.run(compressor)
