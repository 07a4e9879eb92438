"""The trivial optimisations: the identity (the base model) and 16-bit casts."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

from pytest_llmeff.compress.base import Candidate, CompressContext, CompressError, Compressor, Unsupported


@dataclass(frozen=True)
class Identity(Compressor):
    """The base model itself: the reference every other case is compared with."""

    stage: ClassVar[str] = "identity"
    summary: ClassVar[str] = "the unmodified base model"

    def apply(self, candidate: Candidate, ctx: CompressContext) -> Candidate:
        return candidate


@dataclass(frozen=True)
class Cast(Compressor):
    """Cast all floating-point weights to a 16-bit type (``float16`` or ``bfloat16``)."""

    stage: ClassVar[str] = "cast"
    summary: ClassVar[str] = "cast weights and compute to a 16-bit float type"
    dtype: str = "float16"
    allow_emulated: bool = False

    def __post_init__(self) -> None:
        if self.dtype not in ("float16", "bfloat16"):
            raise CompressError(f"cast dtype must be 'float16' or 'bfloat16', got {self.dtype!r}")

    def check(self, ctx: CompressContext) -> None:
        import torch

        if ctx.device.startswith("cuda"):
            if self.dtype == "bfloat16" and not torch.cuda.is_bf16_supported():
                raise Unsupported("this GPU has no bfloat16 support")
            return
        short = {"float16": "fp16", "bfloat16": "bf16"}[self.dtype]
        if not self.allow_emulated and (why := emulated_on_cpu(self.dtype)):
            raise Unsupported(f"{why} — run it on a GPU, or use {short}(allow_emulated=true) to measure "
                              "the emulation anyway")

    def apply(self, candidate: Candidate, ctx: CompressContext) -> Candidate:
        import torch

        model = candidate.model if not candidate.pristine else copy.deepcopy(candidate.model)
        model = model.to(getattr(torch, self.dtype))
        return Candidate(model, False, candidate.steps + [self.id], candidate.notes, candidate.info)


def identity() -> Compressor:
    return Identity()


NATIVE_16BIT = {"float16": {"avx512_fp16", "amx_fp16"}, "bfloat16": {"avx512_bf16", "amx_bf16"}}


def emulated_on_cpu(dtype: str) -> str | None:
    """Why 16-bit ``dtype`` arithmetic would be emulated on this CPU (None if it is native, or unknown).

    Without these instructions torch emulates 16-bit matmuls, many times slower than float32
    (bf16 18 ms against fp32 0.8 ms for a 256×192×576 product on a 2-core AVX2 machine): a
    measurement of the emulation, not of the optimisation."""
    flags = _cpu_flags()
    native = NATIVE_16BIT[dtype]
    if flags is None or flags & native:
        return None
    return f"this CPU has no native {dtype} arithmetic ({' / '.join(sorted(native))}); torch would emulate it"


def _cpu_flags() -> set[str] | None:
    """The CPU feature flags from /proc/cpuinfo (None where that file does not exist)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        return None
    return None


def fp16(allow_emulated: bool = False) -> Compressor:
    return Cast(dtype="float16", allow_emulated=allow_emulated)


def bf16(allow_emulated: bool = False) -> Compressor:
    return Cast(dtype="bfloat16", allow_emulated=allow_emulated)
