"""What every compressor is: a small validated config plus an ``apply`` step on a candidate model."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

# Pipelines run structural steps (distillation, pruning) first, then casts, then quantisation:
# quantised weights are packed, so nothing can prune or retrain them afterwards.
STAGES = ("identity", "structural", "cast", "quantize")


class Unsupported(Exception):
    """The compressor cannot run here (no GPU, missing kernel…): the case is skipped with this reason."""


class CompressError(ValueError):
    """A compressor that is misconfigured or a pipeline that cannot be applied."""


@dataclass
class Candidate:
    """A model on its way through a pipeline.

    Attributes:
        model: the current model.
        pristine: ``True`` while the model is the untouched base, so a quantiser may reload it
            from its source with a ``quantization_config`` instead of saving a copy first.
        steps: ids of the steps applied so far.
        notes: facts a reader of the result must know ("mask only: no speed-up on dense kernels").
        info: numbers a step reports (heads removed, sparsity…), shown in the record.
    """

    model: Any
    pristine: bool = True
    steps: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    info: dict[str, float] = field(default_factory=dict)


@dataclass
class CompressContext:
    """What a compressor may use besides the model. Built by the session, one per run."""

    base: Any  # models.loading.LoadedModel
    text: Callable[[], Any]  # () -> models.datasets.TextData, loaded on first use
    workdir: Path
    cache_dir: Path
    seed: int = 0
    progress: Callable[[str], None] = print

    @property
    def device(self) -> str:
        return self.base.device

    @property
    def dtype(self) -> str:
        return self.base.dtype

    @property
    def tokenizer(self) -> Any:
        return self.base.tokenizer


@dataclass(frozen=True)
class Compressor:
    """Base class: subclasses are frozen dataclasses whose fields are the method's settings.

    Class attributes: ``stage`` (see :data:`STAGES`) and ``summary`` (one line for listings).
    ``id`` is the name the user wrote (``nf4``, ``ah(threshold=0.7)``), used in case ids.
    """

    stage: ClassVar[str] = "structural"
    summary: ClassVar[str] = ""
    id: str = field(default="", compare=False)

    def check(self, ctx: CompressContext) -> None:
        """Raise :class:`Unsupported` when this cannot run with ``ctx`` (device, libraries)."""

    def apply(self, candidate: Candidate, ctx: CompressContext) -> Candidate:
        raise NotImplementedError

    def finish(self, candidate: Candidate, ctx: CompressContext, quantized: bool) -> Candidate:
        """Called on the pipeline's finished model, for work later steps must not see (2:4 sparse
        kernels); ``quantized``: a quantisation step ran. Default: nothing."""
        return candidate

    def with_id(self, name: str) -> Compressor:
        return dataclasses.replace(self, id=name)
