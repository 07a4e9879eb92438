"""Quantization and casts: base, 16-bit casts, bitsandbytes LLM.int8 / nf4 / fp4, GPTQ 4-bit."""

import pytest


@pytest.mark.llmeff(
    compressors=["base", "fp16", "bf16", "int8", "nf4", "fp4", "gptq4"],
    # Against the stored baseline: perplexity is deterministic, so its gate is tight; the opt score
    # (time and energy measured interleaved with the base model) gets 10 %, and fails only where the
    # distance from the baseline is also beyond the measured run-to-run noise (docs/BENCHMARKS.md,
    # "Gate calibration").
    budgets={
        "*": ["perplexity:+5%", "perplexity<=baseline+0.5%", "opt<=baseline+10%"],
    },
)
def test_quantization(llmeff, compressor):
    llmeff.run(compressor)
