"""The project's own lm-eval tasks, built from the embedded corpus so task scoring runs offline.

- ``llmeff_docs_mc`` (multiple choice, 4 options, chance 0.25): the text of a held-out document up to
  a sentence (the whole sentences before it that fit in ``MC_CONTEXT_CHARS`` characters, and at least
  the one right before it, however long); which of four sentences comes next? The three wrong
  options are next-sentences from other documents. Every such sentence of the held-out split is an
  item (327), so the standard error stays below 0.03 at any accuracy.
  Scored by lm-eval as ``acc`` / ``acc_norm``; few-shot examples come from the train split.
- ``llmeff_docs_order`` (multiple choice, 4 options, chance 0.25): the same contexts; which of four
  versions of the next sentence is the one as written? The three wrong ones each swap one pair of
  neighbouring words (never the first or last word, so capitals and the final stop give nothing
  away) — minimal pairs in the manner of BLiMP. The options share their words, so ``acc`` needs no
  length normalisation. It asks for syntax and word-level fluency, which a small model has and a
  compression can take away; the next-sentence task asks for topic, which a small model barely has.
- ``llmeff_docs_gen`` (generation): the first words of a held-out sentence; the model continues it
  greedily, scored on its next three words: ``rouge_l`` (ROUGE-L F1, the headline: a small
  model rarely gets three words exactly) and ``exact_match``.
- ``llmeff_docs_rolling`` (``loglikelihood_rolling``, like lm-eval's wikitext): the held-out
  documents, for word / byte perplexity and bits per byte computed by lm-eval itself — the
  reference the ``lmeval-rolling`` protocol is checked against.

The data is made deterministically from the shipped corpus snapshot (fixed seed), written as JSON
lines with lm-eval task YAMLs into a folder lm-eval's ``TaskManager(include_path=…)`` reads.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

MC_TEST, MC_TRAIN = 400, 100  # MC_TEST caps the items; the held-out split has 327
ORDER_TEST, ORDER_TRAIN = 400, 100  # ORDER_TEST caps the items; the held-out split has 306
MC_CONTEXT_CHARS = 500  # the context: as many whole preceding sentences as fit (at least one)
GEN_TEST, GEN_TRAIN = 200, 50
GEN_PROMPT_WORDS, GEN_TARGET_WORDS = 10, 3
LOCAL_PREFIX = "llmeff_docs_"  # every task this module writes is named so
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def _sentences(text: str) -> list[str]:
    return [" ".join(s.split()) for s in _SENTENCE.split(text) if s.strip()]


def _context(before: list[str]) -> str:
    """The last sentences of ``before`` that fit in ``MC_CONTEXT_CHARS`` (always the last one)."""
    kept = [before[-1]]
    for sent in reversed(before[:-1]):
        if len(sent) + 1 + sum(len(k) + 1 for k in kept) > MC_CONTEXT_CHARS:
            break
        kept.insert(0, sent)
    return " ".join(kept)


def _pairs(docs: list[str]) -> list[tuple[int, str, str]]:
    """(document index, the text before a sentence, the sentence) for sentences of a readable length.

    More than one sentence of context: one sentence rarely says what the document is about, and a
    small model can then only guess.
    """
    out = []
    for d, text in enumerate(docs):
        sents = _sentences(text)
        for i in range(1, len(sents)):
            context = _context(sents[:i])
            if len(context) >= 30 and 20 <= len(sents[i]) <= 200:
                out.append((d, context, sents[i]))
    return out


def mc_items(docs: list[str], n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    pairs = _pairs(docs)
    rng.shuffle(pairs)
    items = []
    for doc, context, answer in pairs[:n]:
        others = [b for d, _, b in pairs if d != doc and b != answer]
        choices = rng.sample(others, 3) + [answer]
        rng.shuffle(choices)
        items.append({"context": context, "choices": choices, "label": choices.index(answer)})
    return items


def _swapped(words: list[str], i: int) -> str:
    out = words[:]
    out[i], out[i + 1] = out[i + 1], out[i]
    return " ".join(out)


def order_items(docs: list[str], n: int, seed: int) -> list[dict[str, Any]]:
    """Word-order items: the context and next sentence of :func:`_pairs`; the distractors swap
    three different pairs of neighbouring inner words (sentences with fewer such pairs are skipped)."""
    rng = random.Random(seed)
    pairs = _pairs(docs)
    rng.shuffle(pairs)
    items = []
    for _, context, answer in pairs:
        words = answer.split()
        inner = [i for i in range(1, len(words) - 2) if words[i] != words[i + 1]]
        if len(inner) < 3:
            continue
        choices = [_swapped(words, i) for i in sorted(rng.sample(inner, 3))] + [answer]
        if len(set(choices)) < 4:
            continue
        rng.shuffle(choices)
        items.append({"context": context, "choices": choices, "label": choices.index(answer)})
        if len(items) == n:
            break
    return items


def gen_items(docs: list[str], n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    items = []
    for text in docs:
        for sent in _sentences(text):
            words = sent.split()
            if len(words) >= GEN_PROMPT_WORDS + GEN_TARGET_WORDS:
                items.append({"prompt": " ".join(words[:GEN_PROMPT_WORDS]),
                              "target": " ".join(words[GEN_PROMPT_WORDS:GEN_PROMPT_WORDS + GEN_TARGET_WORDS])})
    rng.shuffle(items)
    return items[:n]


def process_gen(doc: dict[str, str], results: list[str]) -> dict[str, float]:
    """lm-eval ``process_results`` for the generation task: first words against the target."""
    from rouge_score import rouge_scorer

    predicted = " ".join(results[0].split()[:GEN_TARGET_WORDS])
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    return {"exact_match": float(predicted == doc["target"]),
            "rouge_l": scorer.score(doc["target"], predicted)["rougeL"].fmeasure}


_CHOICE_YAML = """task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    train: {train}
    test: {test}
output_type: multiple_choice
training_split: train
fewshot_split: train
test_split: test
doc_to_text: "{{{{context}}}}"
doc_to_target: "{{{{label}}}}"
doc_to_choice: "{{{{choices}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: {version}
"""

_GEN_YAML = """task: llmeff_docs_gen
dataset_path: json
dataset_kwargs:
  data_files:
    train: {train}
    test: {test}
output_type: generate_until
training_split: train
fewshot_split: train
test_split: test
doc_to_text: "{{{{prompt}}}}"
doc_to_target: " {{{{target}}}}"
target_delimiter: ""
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: 12
  do_sample: false
process_results: !function utils.process_gen
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
  - metric: rouge_l
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


_ROLLING_YAML = """task: llmeff_docs_rolling
dataset_path: json
dataset_kwargs:
  data_files:
    test: {test}
output_type: loglikelihood_rolling
test_split: test
doc_to_text: ""
doc_to_target: "{{{{page}}}}"
metric_list:
  - metric: word_perplexity
  - metric: byte_perplexity
  - metric: bits_per_byte
metadata:
  version: 1.0
"""


def write_local_tasks(folder: Path, seed: int = 0) -> Path:
    """Write the tasks' data and YAMLs into ``folder`` (once) and return it."""
    from pytest_llmeff.models import corpus
    from pytest_llmeff.models.embedded import REFERENCE_DIR

    if (folder / "llmeff_docs_gen.yaml").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    splits = corpus.read_snapshot(REFERENCE_DIR / "corpus.jsonl.gz")
    held, train = [d.text for d in splits["heldout"]], [d.text for d in splits["train"]]
    data = {
        "mc_test": mc_items(held, MC_TEST, seed), "mc_train": mc_items(train, MC_TRAIN, seed + 1),
        "order_test": order_items(held, ORDER_TEST, seed), "order_train": order_items(train, ORDER_TRAIN, seed + 1),
        "gen_test": gen_items(held, GEN_TEST, seed), "gen_train": gen_items(train, GEN_TRAIN, seed + 1),
    }
    for name, rows in data.items():
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    for task, prefix, version in (
        ("llmeff_docs_mc", "mc", "2.0  # 2.0: the preceding sentences as context, every qualifying item"),
        ("llmeff_docs_order", "order", "1.0"),
    ):
        (folder / f"{task}.yaml").write_text(_CHOICE_YAML.format(
            task=task, version=version, train=folder / f"{prefix}_train.jsonl", test=folder / f"{prefix}_test.jsonl"))
    # lm-eval resolves `!function utils.x` next to the YAML file.
    (folder / "utils.py").write_text("from pytest_llmeff.measure.local_tasks import process_gen  # noqa: F401\n")
    (folder / "rolling_test.jsonl").write_text("".join(json.dumps({"page": t}) + "\n" for t in held),
                                               encoding="utf-8")
    (folder / "llmeff_docs_rolling.yaml").write_text(_ROLLING_YAML.format(test=folder / "rolling_test.jsonl"))
    # Written last: its presence means the folder is complete.
    (folder / "llmeff_docs_gen.yaml").write_text(
        _GEN_YAML.format(train=folder / "gen_train.jsonl", test=folder / "gen_test.jsonl"))
    return folder
