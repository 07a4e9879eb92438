"""Knowledge distillation into a half-depth student: forward KL, reverse KL (MiniLLM), SeqKD."""

import pytest


@pytest.mark.llmeff(
    compressors=["kd"],
    heavy=["kd-rkl", "seqkd"],  # each trains its own student: minutes on a 2-core CPU
    budgets=["perplexity:+100%", "perplexity<=baseline+0.5%", "opt<=baseline+10%"],
)
def test_distillation(llmeff, compressor):
    llmeff.run(compressor)
