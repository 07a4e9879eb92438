"""The local multiple-choice tasks: items drawn honestly from the held-out documents, and enough of
them that the task's standard error is small against the differences between cases."""

import math

import pytest

from pytest_llmeff.measure import local_tasks
from pytest_llmeff.models import corpus
from pytest_llmeff.models.embedded import REFERENCE_DIR


@pytest.fixture(scope="module")
def heldout() -> list[str]:
    return [d.text for d in corpus.read_snapshot(REFERENCE_DIR / "corpus.jsonl.gz")["heldout"]]


@pytest.fixture(scope="module")
def items(heldout) -> list[dict]:
    return local_tasks.mc_items(heldout, local_tasks.MC_TEST, seed=0)


def test_enough_items_for_a_standard_error_of_at_most_0_03(items):
    # The binomial standard error is largest at p = 0.5.
    assert math.sqrt(0.5 * 0.5 / len(items)) <= 0.03
    assert len(items) == 327  # every sentence of the held-out split that qualifies


def test_the_answer_continues_its_own_document_and_the_distractors_do_not(items, heldout):
    flat = [" ".join(text.split()) for text in heldout]
    for item in items[:60]:
        answer = item["choices"][item["label"]]
        home = [doc for doc in flat if item["context"] + " " + answer in doc]
        assert home, item  # the context is the text right before the answer, in one document
        for wrong in (c for i, c in enumerate(item["choices"]) if i != item["label"]):
            assert wrong != answer and not any(item["context"] + " " + wrong in doc for doc in home)


def test_the_context_holds_whole_sentences_up_to_the_cap(items):
    for item in items:
        assert len(item["context"]) <= local_tasks.MC_CONTEXT_CHARS or len(local_tasks._sentences(item["context"])) == 1
    assert max(len(local_tasks._sentences(i["context"])) for i in items) > 1  # more than one sentence of context


def test_the_items_are_reproducible(heldout, items):
    assert local_tasks.mc_items(heldout, local_tasks.MC_TEST, seed=0) == items
    assert local_tasks.mc_items(heldout, local_tasks.MC_TEST, seed=1) != items


@pytest.fixture(scope="module")
def order(heldout) -> list[dict]:
    return local_tasks.order_items(heldout, local_tasks.ORDER_TEST, seed=0)


def test_the_word_order_task_has_enough_items(order):
    assert len(order) == 306 and math.sqrt(0.5 * 0.5 / len(order)) <= 0.03


def test_each_wrong_order_swaps_one_pair_of_inner_neighbours(order, heldout):
    flat = [" ".join(text.split()) for text in heldout]
    for item in order:
        answer = item["choices"][item["label"]].split()
        assert any(item["context"] + " " + " ".join(answer) in doc for doc in flat)
        wrong = [c.split() for i, c in enumerate(item["choices"]) if i != item["label"]]
        assert len({tuple(w) for w in wrong}) == 3
        for w in wrong:
            moved = [i for i, (a, b) in enumerate(zip(w, answer, strict=True)) if a != b]
            assert len(moved) == 2 and moved[1] == moved[0] + 1  # one pair of neighbours, swapped
            assert w[moved[0]] == answer[moved[1]] and w[moved[1]] == answer[moved[0]]
            assert 0 < moved[0] and moved[1] < len(answer) - 1  # first and last word stay put


def test_the_word_order_items_are_reproducible(heldout, order):
    assert local_tasks.order_items(heldout, local_tasks.ORDER_TEST, seed=0) == order
