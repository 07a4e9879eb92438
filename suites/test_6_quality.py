"""Quality beyond one number: perplexity and task scores side by side (the project's own offline
lm-eval tasks; add arc_challenge, hellaswag, mmlu … where lm-eval can fetch them), and generation
speed split into prefill and decode."""

import pytest


@pytest.mark.llmeff(
    compressors=["base", "nf4", "kd+nf4", "layer40"],
    # Every item of the two multiple-choice tasks (327 and 306): standard error ≤ 0.03.
    tasks=["llmeff_docs_mc", "llmeff_docs_order", "llmeff_docs_gen(limit=60)"],
    workload="generate(prompt=64, new_tokens=32)",
    budgets={"*": ["perplexity:+5%", "llmeff_docs_mc:-3pt", "llmeff_docs_order:-3pt", "perplexity<=baseline+0.5%",
                   "opt<=baseline+10%"],
             "kd+nf4": ["perplexity:+25%", "llmeff_docs_mc:-10pt", "llmeff_docs_order:-10pt"],
             "layer40": ["perplexity:+70%", "llmeff_docs_mc:-15pt", "llmeff_docs_order:-15pt"]},
)
def test_quality(llmeff, compressor):
    llmeff.run(compressor)
