"""Caching cases: the same model answering a replayed list of prompts with and without a cache.

Strategies (``none`` is the reference every other one is compared with):

- ``static``: exact prompt → stored KV cache of its prefill; a repeated prompt skips the prefill.
- ``semantic(threshold=0.95)``: a prompt whose embedding — the mean of the model's own input-token
  embeddings, no extra model — has cosine similarity ≥ threshold with a cached prompt reuses that
  prompt's KV cache and is answered *as that prompt*. Faster on near-duplicates; the answer can
  differ, which the quality figures show.
- ``kv-quantized(backend=hqq, nbits=4, residual=16)``: transformers' ``QuantizedCache`` (KIVI-style,
  backends ``hqq``, ``quanto`` or ``fp8``); tokens beyond the ``residual`` window are stored quantised.

The replay list holds every distinct prompt ``repeats`` times plus, per prompt, a near-duplicate
(its first token replaced), in a seeded order. One call answers the whole list with an empty cache,
greedily, ``new_tokens`` tokens each; time and energy are per answered prompt, and each strategy's
replays are timed in turn with no-cache replays (:func:`pytest_llmeff.measure.case.measure_cache`). Quality is measured
against the ``none`` answers of the same prompts: ``exact_match`` (identical token sequences) and
``rouge_l`` (ROUGE-L F1 of the decoded texts, ``rouge_score``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_llmeff.registry import Registry


class CacheError(ValueError):
    """An unknown or misconfigured cache strategy."""


@dataclass(frozen=True)
class Replay:
    """The prompt list every strategy answers (identical for all)."""

    prompts: int = 4
    repeats: int = 2
    prompt_tokens: int = 192
    new_tokens: int = 8
    seed: int = 0

    def build(self, eval_ids: list[int]) -> list[list[int]]:
        need = self.prompts * self.prompt_tokens
        if len(eval_ids) < need:
            raise CacheError(f"the evaluation text has {len(eval_ids)} tokens; the replay needs {need}")
        distinct = [eval_ids[i * self.prompt_tokens:(i + 1) * self.prompt_tokens] for i in range(self.prompts)]
        # Near-duplicate: the first token swapped for the second one's (a small edit, a new exact key).
        variants = [[p[1]] + p[1:] for p in distinct]
        items = [p for p in distinct for _ in range(self.repeats)] + variants
        random.Random(self.seed).shuffle(items)
        return items


class Strategy:
    """Answers prompts one by one; ``reset`` empties the cache (once per replayed list)."""

    hits = 0

    def reset(self) -> None:
        self.hits = 0

    def answer(self, model: Any, ids: list[int], new_tokens: int) -> list[int]:
        raise NotImplementedError


def _generate(model: Any, ids: list[int], new_tokens: int, **kwargs: Any) -> list[int]:
    import torch

    device = next(model.parameters()).device
    x = torch.tensor([ids], device=device)
    with torch.inference_mode():
        out = model.generate(input_ids=x, attention_mask=torch.ones_like(x), do_sample=False,
                             max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                             pad_token_id=getattr(model.config, "eos_token_id", None), **kwargs)
    return out[0, len(ids):].tolist()


def _cache_kwarg(model: Any) -> str:
    """The keyword a model's forward and generate() take a KV cache by: ``cache`` since
    transformers 5.24, which deprecates ``past_key_values`` (a FutureWarning, removed in 5.40)."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _with_cache(model: Any, cache: Any) -> dict[str, Any]:
    return {_cache_kwarg(model): cache}


def _prefill(model: Any, ids: list[int]) -> Any:
    """The KV cache of all prompt tokens but the last (generate then feeds the last one)."""
    import torch
    from transformers import DynamicCache

    device = next(model.parameters()).device
    key = _cache_kwarg(model)
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([ids[:-1]], device=device), use_cache=True, **{key: DynamicCache()})
    return out[key]


def _reuse(model: Any, ids: list[int], new_tokens: int, cache: Any) -> list[int]:
    """Generate from a stored prefill; generate() extends the cache, so crop it back afterwards
    (cheaper than copying it first)."""
    try:
        return _generate(model, ids, new_tokens, **_with_cache(model, cache))
    finally:
        extra = cache.get_seq_length() - (len(ids) - 1)
        if extra > 0:
            cache.crop(-extra)  # transformers 5: a negative count removes that many tokens


class NoCache(Strategy):
    def answer(self, model: Any, ids: list[int], new_tokens: int) -> list[int]:
        return _generate(model, ids, new_tokens)


class StaticCache(Strategy):
    def reset(self) -> None:
        super().reset()
        self.store: dict[tuple[int, ...], Any] = {}

    def answer(self, model: Any, ids: list[int], new_tokens: int) -> list[int]:
        key = tuple(ids)
        if key in self.store:
            self.hits += 1
        else:
            self.store[key] = _prefill(model, ids)
        return _reuse(model, ids, new_tokens, self.store[key])


class SemanticCache(Strategy):
    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def reset(self) -> None:
        super().reset()
        self.store: list[tuple[Any, list[int], Any]] = []

    def answer(self, model: Any, ids: list[int], new_tokens: int) -> list[int]:
        import torch

        with torch.inference_mode():
            emb = model.get_input_embeddings()(torch.tensor(ids, device=next(model.parameters()).device))
            vec = torch.nn.functional.normalize(emb.float().mean(dim=0), dim=0)
        best, best_sim = None, -1.0
        for other, other_ids, cache in self.store:
            sim = float(vec @ other)
            if sim > best_sim:
                best, best_sim = (other_ids, cache), sim
        if best is not None and best_sim >= self.threshold:
            self.hits += 1
            cached_ids, cache = best
            return _reuse(model, cached_ids, new_tokens, cache)
        cache = _prefill(model, ids)
        self.store.append((vec, list(ids), cache))
        return _reuse(model, ids, new_tokens, cache)


class QuantizedKV(Strategy):
    def __init__(self, backend: str, nbits: int, residual: int) -> None:
        self.backend, self.nbits, self.residual = backend, nbits, residual

    def answer(self, model: Any, ids: list[int], new_tokens: int) -> list[int]:
        from transformers import QuantizedCache

        if self.backend == "fp8":
            cache = QuantizedCache("fp8", model.config)
        else:
            cache = QuantizedCache(self.backend, model.config, nbits=self.nbits, residual_length=self.residual)
        return _generate(model, ids, new_tokens, **_with_cache(model, cache))


def none() -> Strategy:
    return NoCache()


def static() -> Strategy:
    return StaticCache()


def semantic(threshold: float = 0.95) -> Strategy:
    if not 0 < threshold <= 1:
        raise CacheError(f"semantic-cache threshold must lie in (0, 1], got {threshold!r}")
    return SemanticCache(float(threshold))


def kv_quantized(backend: str = "hqq", nbits: int = 4, residual: int = 16) -> Strategy:
    if backend not in ("hqq", "quanto", "fp8"):
        raise CacheError(f"quantized KV backend must be hqq, quanto or fp8, got {backend!r}")
    if nbits not in (2, 4, 8):
        raise CacheError(f"quantized KV nbits must be 2, 4 or 8, got {nbits!r}")
    return QuantizedKV(backend, int(nbits), int(residual))


STRATEGIES: Registry[Callable[..., Strategy]] = Registry("cache strategy",
                                                         entry_point_group="pytest_llmeff.caches")
for _name, _factory in {"none": none, "static": static, "semantic": semantic, "kv-quantized": kv_quantized}.items():
    STRATEGIES.register(_name, _factory)


def parse_strategy(text: str) -> Strategy:
    try:
        return STRATEGIES.create(text)
    except (TypeError, ValueError) as exc:
        raise CacheError(str(exc)) from None


def strategy_unavailable(strategy: Strategy) -> str | None:
    """Why ``strategy`` cannot run here (a missing backend package), or None."""
    if isinstance(strategy, QuantizedKV) and strategy.backend != "fp8":
        module = {"hqq": "hqq", "quanto": "optimum.quanto"}[strategy.backend]
        try:
            __import__(module)
        except ImportError as exc:
            return f"the {strategy.backend} backend needs `{module}` ({exc})"
    return None


def rouge_l(references: list[str], candidates: list[str]) -> float:
    """Mean ROUGE-L F1 of candidate texts against references (``rouge_score``)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    scores = [scorer.score(r, c)["rougeL"].fmeasure for r, c in zip(references, candidates, strict=True)]
    return sum(scores) / len(scores)


def answer_all(strategy: Strategy, model: Any, replay: list[list[int]], new_tokens: int) -> list[list[int]]:
    """One call of the caching workload: every replayed prompt, starting from an empty cache."""
    strategy.reset()
    return [strategy.answer(model, ids, new_tokens) for ids in replay]
