"""Quantization and casts: base, 16-bit casts, bitsandbytes LLM.int8 / nf4 / fp4, GPTQ 4-bit."""

import pytest


@pytest.mark.llmeff(
    compressors=["base", "fp16", "bf16", "int8", "nf4", "fp4", "gptq4"],
    # Against the stored baseline: perplexity is deterministic, so its gate is tight; the opt score
    # (time and energy paired with the base model) drifts between runs on a shared 2-core CPU by
    # up to a third (docs/BENCHMARKS.md), so its gate catches gross regressions only there.
    budgets={
        "*": ["perplexity:+5%", "perplexity<=baseline+0.5%", "opt<=baseline+50%"],
    },
)
def test_quantization(llmeff, compressor):
    llmeff.run(compressor)
