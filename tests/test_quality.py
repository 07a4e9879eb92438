"""Quality beyond one number: lm-eval's own figures against the plugin's, the local tasks offline."""

from __future__ import annotations

import pytest

from pytest_llmeff.measure.perplexity import rolling_perplexity
from pytest_llmeff.measure.tasks import TaskError, parse_tasks, run_tasks
from pytest_llmeff.models.datasets import load_text_data

DOCS = 40  # of the 208 held-out documents: enough to compare, quick on 2 cores


@pytest.fixture(scope="module")
def lmeval_run(embedded, tmp_path_factory):
    """lm-eval's rolling log-likelihood on the held-out documents (its HFLM, its windows)."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from pytest_llmeff.measure.local_tasks import write_local_tasks

    folder = write_local_tasks(tmp_path_factory.mktemp("tasks"))
    lm = HFLM(pretrained=embedded.model, tokenizer=embedded.tokenizer, batch_size=8)
    manager = TaskManager(include_path=str(folder), include_defaults=False)  # lm-eval's own ~15 000: 8 s to index
    result = simple_evaluate(model=lm, tasks=["llmeff_docs_rolling"], limit=DOCS, task_manager=manager,
                             bootstrap_iters=0)
    return result["results"]["llmeff_docs_rolling"]


def test_lmeval_rolling_protocol_equals_lmeval(embedded, lmeval_run):
    docs = load_text_data("embedded").documents[:DOCS]
    ours = rolling_perplexity(embedded.model, embedded.tokenizer, docs)
    assert ours.word_perplexity == pytest.approx(lmeval_run["word_perplexity,none"], rel=1e-4)
    assert ours.byte_perplexity == pytest.approx(lmeval_run["byte_perplexity,none"], rel=1e-4)
    assert ours.bits_per_byte == pytest.approx(lmeval_run["bits_per_byte,none"], rel=1e-4)
    assert ours.documents == DOCS


@pytest.fixture(scope="module")
def local_rows(embedded, tmp_path_factory):
    """The local tasks through the plugin's lm-eval path, in one call (each call indexes lm-eval's
    own tasks as well: 8 s on 2 cores); the multiple-choice task with two shots."""
    return run_tasks(embedded.model, embedded.tokenizer,
                     parse_tasks("llmeff_docs_mc(fewshot=2, limit=24), llmeff_docs_order(limit=40), "
                                 "llmeff_docs_gen(limit=8)"),
                     tmp_path_factory.mktemp("local-tasks"))


def test_local_tasks_run_offline_through_lmeval(local_rows):
    mc, gen = local_rows["llmeff_docs_mc"], local_rows["llmeff_docs_gen"]
    assert 0 <= mc["value"] <= 1 and mc["metric"] == "acc_norm" and "acc" in mc["extra"]
    assert 0 <= gen["value"] <= 1 and gen["metric"] == "rouge_l" and "exact_match" in gen["extra"]


def test_the_word_order_task_is_answered_well_above_chance(local_rows):
    # The sentence as written against three with two neighbours swapped: the reference model knows
    # word order (0.85 on all 306 items), so 40 items sit far above chance (0.25) even at their spread.
    order = local_rows["llmeff_docs_order"]
    assert order["metric"] == "acc" and order["value"] - 3 * order["stderr"] > 0.25


def test_fewshot_examples_come_from_the_train_split(local_rows):
    assert local_rows["llmeff_docs_mc"]["fewshot"] == 2


@pytest.mark.parametrize(("text", "message"), [
    ("arc_chalenge", "did you mean 'arc_challenge'"),
    ("llmeff_docs_mc(fewshot=500)", "takes at most 100 shots"),
    ("ifeval(fewshot=1)", "takes at most 0 shots"),
    ("mmlu(shots=5)", "has no setting shots"),
])
def test_bad_tasks(text, message):
    with pytest.raises(TaskError, match=message):
        parse_tasks(text)


def test_study_shot_counts():
    specs = {s.name: (s.fewshot, s.metric) for s in parse_tasks(
        "arc_challenge, hellaswag, mmlu, truthfulqa_mc2, winogrande, ifeval")}
    assert specs == {"arc_challenge": (25, "acc_norm"), "hellaswag": (10, "acc_norm"), "mmlu": (5, "acc"),
                     "truthfulqa_mc2": (0, "acc"), "winogrande": (5, "acc"), "ifeval": (0, "prompt_level_strict_acc")}
