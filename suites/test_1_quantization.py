"""Quantization and casts: base, 16-bit casts, bitsandbytes LLM.int8 / nf4 / fp4, GPTQ 4-bit."""

import pytest


@pytest.mark.llmeff(
    compressors=["base", "fp16", "bf16", "int8", "nf4", "fp4", "gptq4"],
    budgets={
        "*": ["perplexity:+5%", "opt<=baseline+15%"],
    },
)
def test_quantization(llmeff, compressor):
    llmeff.run(compressor)
