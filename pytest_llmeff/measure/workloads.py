"""Workloads: what one timed call does, so latency and energy are per call of a stated job.

- ``forward(batch=1, ctx=0)``: one forward pass over ``batch`` × ``ctx`` tokens of the evaluation
  text (``ctx=0``: the model's context, at most 1024). The default.
- ``generate(prompt=32, new_tokens=32, batch=1)``: greedy decoding of exactly ``new_tokens`` tokens.
- ``perplexity``: the whole perplexity evaluation, as the first study timed it.
- ``deployment(period=30, gap=6, new_tokens=32, prompt=32)``: prompts on a fixed arrival schedule,
  energy per prompt including idle time (:mod:`pytest_llmeff.measure.deployment`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_llmeff.registry import Registry


class WorkloadError(ValueError):
    """A workload that is unknown or misconfigured."""


@dataclass(frozen=True)
class Job:
    """A built workload: the callable, and what one call processes (for per-token figures)."""

    call: Callable[[], Any]
    tokens: int
    samples: int
    prefill: Callable[[], Any] | None = None  # generation: the prompt pass alone (prefill vs decode split)
    prompt_tokens: int = 0


def _sync(device: str) -> Callable[[], None]:
    if device.startswith("cuda"):
        import torch

        return functools.partial(torch.cuda.synchronize, device)  # wall-clock timing needs the kernels finished
    return lambda: None


@dataclass(frozen=True)
class Forward:
    batch: int = 1
    ctx: int = 0

    def __post_init__(self) -> None:
        if self.batch < 1 or self.ctx < 0:
            raise WorkloadError(f"forward workload needs batch ≥ 1 and ctx ≥ 0, got {self.batch}, {self.ctx}")

    def id(self, context_length: int) -> str:
        return f"forward-{self.batch}x{self.ctx or min(context_length, 1024)}"

    def build(self, model: Any, token_ids: list[int], device: str, context_length: int) -> Job:
        import torch

        ctx = self.ctx or min(context_length, 1024)
        if ctx > context_length:
            raise WorkloadError(f"forward ctx {ctx} exceeds the model's {context_length} positions")
        if len(token_ids) < self.batch * ctx:
            raise WorkloadError(f"the evaluation text has {len(token_ids)} tokens; forward needs "
                                f"{self.batch * ctx}")
        batch = torch.tensor(token_ids[: self.batch * ctx]).view(self.batch, ctx).to(device)
        sync = _sync(device)

        def call() -> None:
            with torch.inference_mode():
                model(input_ids=batch, use_cache=False)  # a scoring pass: no KV cache to build
            sync()

        return Job(call, self.batch * ctx, self.batch)


@dataclass(frozen=True)
class Generate:
    prompt: int = 32
    new_tokens: int = 32
    batch: int = 1

    def __post_init__(self) -> None:
        if min(self.prompt, self.new_tokens, self.batch) < 1:
            raise WorkloadError("generate workload needs prompt, new_tokens and batch ≥ 1")

    def id(self, context_length: int) -> str:
        return f"generate-{self.batch}x{self.prompt}+{self.new_tokens}"

    def build(self, model: Any, token_ids: list[int], device: str, context_length: int) -> Job:
        import torch

        if self.prompt + self.new_tokens > context_length:
            raise WorkloadError(f"prompt + new_tokens = {self.prompt + self.new_tokens} exceeds the "
                                f"model's {context_length} positions")
        ids = torch.tensor(token_ids[: self.batch * self.prompt]).view(self.batch, self.prompt).to(device)
        mask = torch.ones_like(ids)
        sync = _sync(device)
        pad = getattr(model.config, "eos_token_id", None)

        def call() -> None:
            with torch.inference_mode():
                model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                               max_new_tokens=self.new_tokens, min_new_tokens=self.new_tokens,
                               pad_token_id=pad)
            sync()

        def prefill() -> None:
            with torch.inference_mode():
                model(input_ids=ids, attention_mask=mask, use_cache=True)
            sync()

        return Job(call, self.batch * self.new_tokens, self.batch, prefill, self.batch * self.prompt)


@dataclass(frozen=True)
class PerplexityPass:
    protocol: str = ""  # empty: the run's protocol

    def id(self, context_length: int) -> str:
        return f"perplexity-{self.protocol}" if self.protocol else "perplexity"

    def build(self, model: Any, token_ids: list[int], device: str, context_length: int,
              protocol: str = "") -> Job:
        from pytest_llmeff.measure.perplexity import PerplexityProtocol, perplexity

        proto = PerplexityProtocol.parse(self.protocol or protocol or f"nonoverlap-{context_length}")
        windows = max(1, len(token_ids) // proto.size) if proto.kind == "nonoverlap" else 1

        def call() -> None:
            perplexity(model, token_ids, proto)

        return Job(call, len(token_ids), windows)


WORKLOADS: Registry[Callable[..., Any]] = Registry("workload", entry_point_group="pytest_llmeff.workloads")
WORKLOADS.register("forward", Forward)
WORKLOADS.register("generate", Generate)
WORKLOADS.register("perplexity", PerplexityPass)
WORKLOADS.register("deployment", "pytest_llmeff.measure.deployment:Deployment")


def parse_workload(text: str) -> Any:
    """``forward``, ``forward(batch=4, ctx=128)``, ``generate(new_tokens=64)``, ``perplexity``."""
    try:
        return WORKLOADS.create(text)
    except (TypeError, ValueError) as exc:
        raise WorkloadError(str(exc)) from None
