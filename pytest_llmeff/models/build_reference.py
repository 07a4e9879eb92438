"""Rebuild the embedded reference model: corpus snapshot → BPE tokenizer → small GPT-2 → recipe.

    python -m pytest_llmeff.models.build_reference            # everything, into the package
    python -m pytest_llmeff.models.build_reference --reuse-corpus --device cuda

The recipe (``RECIPE.json``) records the seed, every hyper-parameter, library versions, the
training curve and the sha256 of the corpus, tokenizer and weights, so a rebuild can be checked.
Training keeps the checkpoint with the best held-out perplexity (early stopping): the corpus is
small (~0.5 M tokens) and a model trained past that point overfits.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pytest_llmeff.models import corpus as corpus_mod
from pytest_llmeff.models.embedded import REFERENCE_DIR, sha256_file


@dataclass(frozen=True)
class Recipe:
    """Everything that determines the reference model."""

    seed: int = 1234
    vocab_size: int = 4096
    n_positions: int = 256
    n_embd: int = 192
    n_layer: int = 6
    n_head: int = 6  # 32-dim heads: enough heads for head pruning to have a choice
    dropout: float = 0.1  # embeddings and residual stream
    attn_dropout: float = 0.1
    bos_share: float = 0.0  # share of training windows that begin with the BOS token (_training_batch)
    package_text: bool = False  # also train on the docstrings of corpus.PACKAGE_LICENCES (_extra_training_text)
    train_split_repeats: int = 1  # with package_text: the shipped train split's weight in the mix
    init_from: str = ""  # a model folder to continue training from (its weights' sha256 goes in the recipe)
    batch_size: int = 16
    steps: int = 2400
    lr: float = 1.5e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.1
    eval_every: int = 250
    eval_protocol: str = "nonoverlap-256"
    save_dtype: str = "float16"  # halves the shipped file; loaded back as float32 on CPU


def _log(msg: str) -> None:
    print(f"[build-reference {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def train_tokenizer(texts: list[str], recipe: Recipe, out: Path) -> Any:
    """Byte-level BPE (GPT-2 style) trained on the train split; saved as a transformers tokenizer."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=recipe.vocab_size, min_frequency=2,
                            special_tokens=["<|endoftext|>"], show_progress=False)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|endoftext|>",
                                  eos_token="<|endoftext|>", unk_token="<|endoftext|>",
                                  model_max_length=recipe.n_positions)
    tok.save_pretrained(out)
    return tok


def _lr_at(step: int, recipe: Recipe) -> float:
    if step < recipe.warmup_steps:
        return recipe.lr * (step + 1) / recipe.warmup_steps
    progress = (step - recipe.warmup_steps) / max(1, recipe.steps - recipe.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return recipe.lr * (recipe.min_lr_ratio + (1 - recipe.min_lr_ratio) * cosine)


def _training_batch(data: Any, recipe: Recipe, gen: Any) -> Any:
    """``batch_size`` windows of ``n_positions`` tokens at random offsets of the token stream.

    A ``bos_share`` of them begin with the BOS token followed by ``n_positions - 1`` text tokens.
    A fixed first token gives every head the same key to park its attention on when it has
    nothing to do (an attention sink, as real LMs have); the other windows begin mid-text, as
    ``nonoverlap`` evaluation windows do, so the model works with and without the BOS token.
    """
    import torch

    ctx = recipe.n_positions
    starts = torch.randint(0, data.numel() - ctx, (recipe.batch_size,), generator=gen).tolist()
    # No draw at all without BOS windows: the random stream stays the one the shipped model was built with.
    with_bos = ((torch.rand(recipe.batch_size, generator=gen) < recipe.bos_share).tolist() if recipe.bos_share
                else [False] * recipe.batch_size)
    bos = torch.zeros(1, dtype=torch.long)  # token 0 is <|endoftext|>, the tokenizer's BOS
    rows = [torch.cat([bos, data[s:s + ctx - 1]]) if b else data[s:s + ctx]
            for s, b in zip(starts, with_bos, strict=True)]
    return torch.stack(rows)


def sink_scores(model: Any, heldout_ids: list[int], recipe: Recipe, windows: int = 8) -> dict[str, Any]:
    """The five highest head scores (AH90's measure: the share of a head's attention one token
    receives) on held-out windows as they are and with BOS in front, logged in the curve."""
    import torch

    from pytest_llmeff.compress.heads import head_scores, received_attention

    ctx = recipe.n_positions
    ids = torch.tensor(heldout_ids[:windows * ctx], dtype=torch.long)
    raw = ids.view(windows, ctx)
    bos = torch.cat([torch.zeros(windows, 1, dtype=torch.long), ids[:windows * (ctx - 1)].view(windows, ctx - 1)], 1)
    was_training = model.training
    model.eval()
    out = {}
    for key, batch in (("head_scores_top", raw), ("head_scores_top_bos", bos)):
        scores = torch.cat(head_scores(received_attention(model, batch.to(next(model.parameters()).device))))
        out[key] = [round(float(v), 3) for v in scores.sort(descending=True).values[:5]]
    model.train(was_training)
    return out


def train_model(train_ids: list[int], heldout_ids: list[int], recipe: Recipe, device: str,
                max_minutes: float) -> tuple[Any, list[dict[str, float]]]:
    """Train from scratch (or on from ``recipe.init_from``); return the best checkpoint (by held-out
    perplexity) and the curve."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from pytest_llmeff.measure.perplexity import perplexity

    torch.manual_seed(recipe.seed)
    config = GPT2Config(vocab_size=recipe.vocab_size, n_positions=recipe.n_positions,
                        n_embd=recipe.n_embd, n_layer=recipe.n_layer, n_head=recipe.n_head,
                        resid_pdrop=recipe.dropout, embd_pdrop=recipe.dropout,
                        attn_pdrop=recipe.attn_dropout, bos_token_id=0, eos_token_id=0)
    if recipe.init_from:
        model = GPT2LMHeadModel.from_pretrained(recipe.init_from, dtype=torch.float32).to(device)
        keys = ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "resid_pdrop", "embd_pdrop", "attn_pdrop")
        differ = [k for k in keys if getattr(model.config, k) != getattr(config, k)]
        if differ:
            raise ValueError(f"--set init_from={recipe.init_from}: its {', '.join(differ)} differ from the recipe's")
    else:
        model = GPT2LMHeadModel(config).to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=recipe.lr)
    data = torch.tensor(train_ids, dtype=torch.long)
    gen = torch.Generator().manual_seed(recipe.seed)
    best_ppl, best_state, curve = float("inf"), None, []
    started = time.perf_counter()
    for step in range(recipe.steps):
        batch = _training_batch(data, recipe, gen).to(device)
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, recipe)
        model.train()
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        elapsed = time.perf_counter() - started
        last = step + 1 == recipe.steps or elapsed > max_minutes * 60
        if (step + 1) % recipe.eval_every == 0 or last:
            model.eval()
            ppl = perplexity(model, heldout_ids, recipe.eval_protocol).value
            sinks = sink_scores(model, heldout_ids, recipe)
            curve.append({"step": step + 1, "train_loss": loss.item(), "heldout_ppl": ppl,
                          **sinks, "seconds": round(elapsed, 1)})
            _log(f"step {step + 1}/{recipe.steps}  train loss {loss.item():.3f}  "
                 f"held-out ppl {ppl:.2f}  top head scores {sinks['head_scores_top']} "
                 f"(BOS windows {sinks['head_scores_top_bos']})  ({elapsed / 60:.1f} min)")
            if ppl < best_ppl:
                best_ppl = ppl
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if last:
            if elapsed > max_minutes * 60 and step + 1 < recipe.steps:
                _log(f"stopping at step {step + 1}: --max-minutes {max_minutes} reached")
            break
    assert best_state is not None
    model.load_state_dict(best_state)
    model.eval()
    return model, curve


def _corpus_snapshot(snapshot: Path, reuse: bool) -> dict[str, Any]:
    """Write (or, with ``reuse``, keep) the corpus snapshot; returns how it was collected."""
    provenance = corpus_mod.snapshot_provenance()
    if reuse and snapshot.exists():
        _log(f"reusing corpus snapshot {snapshot}")
        old = snapshot.parent / "RECIPE.json"
        if old.exists():
            provenance = json.loads(old.read_text())["corpus"]["collected_with"]
    else:
        _log("collecting documentation text from this interpreter's standard library")
        corpus_mod.write_snapshot(corpus_mod.collect_documents(), snapshot)
    return provenance


def _extra_training_text(splits: dict[str, Any], path: Path) -> tuple[list[str], dict[str, Any]]:
    """The package docstrings (decontaminated against the held-out split), written to ``path``;
    returns their texts and the recipe's record of them (hash, count, packages, versions, licences)."""
    import importlib.metadata

    _log("collecting the docstrings of " + ", ".join(sorted(corpus_mod.PACKAGE_LICENCES)))
    docs = corpus_mod.collect_package_documents()
    kept = corpus_mod.decontaminate(docs, splits["heldout"])
    digest = corpus_mod.write_documents(kept, path)
    dists = importlib.metadata.packages_distributions()  # import name -> distributions ("sklearn" -> scikit-learn)
    versions = {name: importlib.metadata.version(dists[name][0])
                for name in sorted(corpus_mod.PACKAGE_LICENCES) if name in dists}
    _log(f"package text: {len(kept):,} documents ({len(docs) - len(kept)} dropped as overlapping the "
         f"held-out split), {sum(len(d.text) for d in kept) / 1e6:.1f} M characters -> {path}")
    return [d.text for d in kept], {
        "file": str(path), "sha256": digest, "documents": len(kept),
        "dropped_overlapping_heldout": len(docs) - len(kept),
        "packages": {n: {"version": v, "licence": corpus_mod.PACKAGE_LICENCES[n]} for n, v in versions.items()},
        "shipped": False,
    }


def _training_ids(tok: Any, train_texts: list[str], extra_texts: list[str], recipe: Recipe) -> list[int]:
    """The training token stream: the train split alone (joined as the held-out text is), or mixed
    with the package text — documents shuffled with the seed, the train split ``train_split_repeats``
    times, each document followed by the separator."""
    import random

    if not extra_texts:
        return tok(corpus_mod.DOC_SEPARATOR.join(train_texts))["input_ids"]
    texts = train_texts * recipe.train_split_repeats + extra_texts
    random.Random(recipe.seed).shuffle(texts)
    sep = tok(corpus_mod.DOC_SEPARATOR, add_special_tokens=False)["input_ids"]
    ids: list[int] = []
    for encoded in tok(texts, add_special_tokens=False)["input_ids"]:
        ids.extend(encoded)
        ids.extend(sep)
    return ids


def _recipe_record(recipe: Recipe, n_params: int, snapshot: Path, provenance: Any, splits: dict[str, Any],
                   train_texts: list[str], train_ids: list[int], heldout_ids: list[int], final: Any, device: str,
                   minutes: float, curve: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """RECIPE.json: the recipe, corpus hashes, the shipped weights' figure, the curve and versions."""
    import tokenizers
    import torch
    import transformers

    return {
        "recipe": asdict(recipe),
        "parameters": n_params,
        "corpus": {"file": snapshot.name, "sha256": sha256_file(snapshot),
                   "train_documents": len(train_texts), "heldout_documents": len(splits["heldout"]),
                   "train_tokens": len(train_ids), "heldout_tokens": len(heldout_ids),
                   "collected_with": provenance},
        "heldout_perplexity": {"value": round(final.value, 3), "protocol": final.protocol,
                               "tokens_scored": final.tokens_scored, "dtype": final.dtype,
                               "device": final.device},
        "training": {"device": device, "minutes": round(minutes, 1),
                     "steps_run": curve[-1]["step"], "curve": curve,
                     "machine": platform.processor() or platform.machine()},
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                     "transformers": transformers.__version__, "tokenizers": tokenizers.__version__},
        "sha256": {name: sha256_file(out / name)
                   for name in ("model.safetensors", "tokenizer.json", "config.json")},
        "built": time.strftime("%Y-%m-%d"),
    }


def _as_bool(value: str) -> bool:
    if value.lower() not in ("true", "false", "1", "0"):
        raise ValueError(value)
    return value.lower() in ("true", "1")


def _with_overrides(recipe: Recipe, overrides: list[str], parser: argparse.ArgumentParser) -> Recipe:
    """``Recipe`` with ``FIELD=VALUE`` overrides, each value converted to the field's type."""
    from dataclasses import fields, replace

    types: dict[str, Any] = {f.name: type(getattr(recipe, f.name)) for f in fields(recipe)}
    changes: dict[str, Any] = {}
    for item in overrides:
        name, _, value = item.partition("=")
        if name not in types or not value:
            parser.error(f"--set {item!r}: expected FIELD=VALUE with FIELD one of {', '.join(types)}")
        try:
            changes[name] = (_as_bool if types[name] is bool else types[name])(value)
        except ValueError:
            parser.error(f"--set {item!r}: {value!r} is not a {types[name].__name__}")
    out = replace(recipe, **changes)
    if not 0 <= out.bos_share <= 1 or out.n_embd % out.n_head:
        parser.error(f"--set: bos_share must lie in [0, 1] (got {out.bos_share}) and n_embd ({out.n_embd}) "
                     f"must divide into n_head ({out.n_head}) heads")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--out", type=Path, default=REFERENCE_DIR, help="output folder")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--steps", type=int, default=Recipe.steps)
    parser.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="change recipe fields, e.g. --set n_head=12 bos_share=0.5 attn_dropout=0")
    parser.add_argument("--max-minutes", type=float, default=180.0,
                        help="stop training after this long (the best checkpoint so far is kept)")
    parser.add_argument("--package-text-file", type=Path, default=Path("scratch/package-text.jsonl.gz"),
                        help="where the extra training text goes with --set package_text=True (not shipped)")
    parser.add_argument("--reuse-corpus", action="store_true",
                        help="keep the corpus snapshot in --out instead of re-reading the stdlib")
    args = parser.parse_args(argv)

    import torch

    recipe = _with_overrides(Recipe(steps=args.steps), args.overrides, parser)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.device == "cpu":
        torch.set_num_threads(max(1, torch.get_num_threads()))
    # Hashed first: the continued model may be written over the folder it starts from.
    init = ({"folder": recipe.init_from, "sha256": sha256_file(Path(recipe.init_from) / "model.safetensors")}
            if recipe.init_from else None)
    snapshot = out / "corpus.jsonl.gz"
    provenance = _corpus_snapshot(snapshot, args.reuse_corpus)
    splits = corpus_mod.read_snapshot(snapshot)
    train_texts = [d.text for d in splits["train"]]
    heldout_text = corpus_mod.DOC_SEPARATOR.join(d.text for d in splits["heldout"])

    _log(f"training a {recipe.vocab_size}-token byte-level BPE on {len(train_texts)} documents")
    tok = train_tokenizer(train_texts, recipe, out)
    extra_texts, extra_record = [], None
    if recipe.package_text:
        args.package_text_file.parent.mkdir(parents=True, exist_ok=True)
        extra_texts, extra_record = _extra_training_text(splits, args.package_text_file)
    train_ids = _training_ids(tok, train_texts, extra_texts, recipe)
    heldout_ids = tok(heldout_text)["input_ids"]
    _log(f"corpus: {len(train_ids):,} train tokens, {len(heldout_ids):,} held-out tokens")

    started = time.perf_counter()
    model, curve = train_model(train_ids, heldout_ids, recipe, args.device, args.max_minutes)
    minutes = (time.perf_counter() - started) / 60
    model = model.to("cpu").to(getattr(torch, recipe.save_dtype))
    model.save_pretrained(out, safe_serialization=True)

    # The figure users see is the one of the shipped (fp16-stored) weights, loaded back in fp32.
    from transformers import GPT2LMHeadModel

    from pytest_llmeff.measure.perplexity import perplexity

    shipped = GPT2LMHeadModel.from_pretrained(out, dtype=torch.float32).eval()
    final = perplexity(shipped, heldout_ids, recipe.eval_protocol)
    n_params = sum(p.numel() for p in shipped.parameters())
    record = _recipe_record(recipe, n_params, snapshot, provenance, splits, train_texts, train_ids, heldout_ids,
                            final, args.device, minutes, curve, out)
    if init is not None:
        record["training"]["init_from"] = init
    if extra_record is not None:
        record["corpus"]["package_text"] = {**extra_record, "tokens_in_mix": len(train_ids)}
    (out / "RECIPE.json").write_text(json.dumps(record, indent=2) + "\n")
    _log(f"done: {n_params:,} parameters, held-out perplexity {final.value:.2f} "
         f"({final.protocol}, {final.tokens_scored:,} tokens) after {minutes:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
