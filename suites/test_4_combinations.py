"""The first study's twelve combinations: structural steps first, quantization last."""

import pytest

TWELVE = [
    "kd+ah90", "kd+ah80", "kd+int8", "kd+nf4",
    "ah90+int8", "ah80+int8", "ah90+nf4", "ah80+nf4",
    "kd+ah90+int8", "kd+ah80+int8", "kd+ah90+nf4", "kd+ah80+nf4",
]


@pytest.mark.llmeff(compressors=TWELVE, budgets=["perplexity:+100%", "perplexity<=baseline+0.5%", "opt<=baseline+10%"])
def test_combination(llmeff, compressor):
    llmeff.run(compressor)
