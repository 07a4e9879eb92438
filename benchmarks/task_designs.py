"""Which 4-way local-task designs a model answers: a probe behind the word-order task.

    python benchmarks/task_designs.py                                  # the embedded model
    python benchmarks/task_designs.py --model scratch/ref-v4

Each design takes the held-out contexts of ``llmeff_docs_mc`` and four options; every option is
scored by its summed log-likelihood after its context (cut to the model's last 256 positions),
0-shot, float32 on the CPU, one thread. ``acc_norm`` divides by the option's characters, as
lm-eval's does by bytes. Designs: the next-sentence task as shipped; the same with a 900-character
context; word order with three copies of the sentence, each with one or two swaps of neighbouring
words anywhere in it (the shipped ``llmeff_docs_order`` never moves the first or last word; lm-eval
scores it in the quality suite).
"""

from __future__ import annotations

import argparse
import math
import random
from typing import Any


def _loglik(model: Any, tok: Any, context: str, option: str) -> float:
    import torch

    ctx = tok(context, add_special_tokens=False)["input_ids"]
    cont = tok(" " + option, add_special_tokens=False)["input_ids"]
    ids = (ctx + cont)[-256:]
    with torch.inference_mode():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0, :-1].float(), -1)
    target = torch.tensor(ids[1:])[-len(cont):, None]
    return float(logp[-len(cont):].gather(1, target).sum())


def _score(model: Any, tok: Any, items: list[dict[str, Any]], name: str) -> None:
    hits = hits_norm = 0
    for item in items:
        ll = [_loglik(model, tok, item["context"], o) for o in item["choices"]]
        norm = [v / len(" " + o) for v, o in zip(ll, item["choices"], strict=True)]
        hits += max(range(4), key=ll.__getitem__) == item["label"]
        hits_norm += max(range(4), key=norm.__getitem__) == item["label"]
    n, p = len(items), hits_norm / len(items)
    print(f"{name:60s} n={n}  acc {hits / n:.3f}  acc_norm {p:.3f} ± {math.sqrt(p * (1 - p) / (n - 1)):.3f}",
          flush=True)


def _swap_items(held: list[str], swaps: int) -> list[dict[str, Any]]:
    from pytest_llmeff.measure import local_tasks

    rng, items = random.Random(0), []
    for _, context, sentence in local_tasks._pairs(held):
        words = sentence.split()
        if len(words) < 6:
            continue
        options, tries = {sentence}, 0
        while len(options) < 4 and tries < 50:
            variant, tries = words[:], tries + 1
            for _ in range(swaps):
                i = rng.randrange(len(variant) - 1)
                variant[i], variant[i + 1] = variant[i + 1], variant[i]
            options.add(" ".join(variant))
        if len(options) == 4:
            choices = sorted(options)
            rng.shuffle(choices)
            items.append({"context": context, "choices": choices, "label": choices.index(sentence)})
    return items[:400]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a model folder (default: the embedded model)")
    args = parser.parse_args()

    import torch
    from transformers import AutoTokenizer, GPT2LMHeadModel

    from pytest_llmeff.measure import local_tasks
    from pytest_llmeff.models import corpus
    from pytest_llmeff.models.embedded import REFERENCE_DIR

    torch.set_num_threads(1)
    folder = args.model or str(REFERENCE_DIR)
    model = GPT2LMHeadModel.from_pretrained(folder, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    held = [d.text for d in corpus.read_snapshot(REFERENCE_DIR / "corpus.jsonl.gz")["heldout"]]

    _score(model, tok, local_tasks.mc_items(held, local_tasks.MC_TEST, 0), "next sentence, 500-character context")
    shipped_chars = local_tasks.MC_CONTEXT_CHARS
    local_tasks.MC_CONTEXT_CHARS = 900
    try:
        _score(model, tok, local_tasks.mc_items(held, local_tasks.MC_TEST, 0), "next sentence, 900-character context")
    finally:
        local_tasks.MC_CONTEXT_CHARS = shipped_chars
    _score(model, tok, _swap_items(held, 2), "word order, two neighbour swaps per option")
    _score(model, tok, _swap_items(held, 1), "word order, one neighbour swap per option")


if __name__ == "__main__":
    main()
