"""Cases the gate-calibration benchmark runs again and again: unchanged compressors (their
baselines are their own earlier runs) and three injected cost regressions of 5, 10 and 20 %."""

import pytest

UNCHANGED = ["base", "int8", "nf4", "magnitude"]
INJECTED = ["inject(pct=5)", "inject(pct=10)", "inject(pct=20)"]


@pytest.mark.llmeff(compressors=UNCHANGED + INJECTED,
                    budgets=["perplexity<=baseline+0.5%", "opt<=baseline+10%"])
def test_gate(llmeff, compressor):
    llmeff.run(compressor)
