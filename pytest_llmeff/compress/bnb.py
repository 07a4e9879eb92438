"""bitsandbytes quantisation through transformers: LLM.int8 and 4-bit (nf4 / fp4).

The model is (re)loaded with a ``BitsAndBytesConfig``: the untouched base straight from its source,
a model changed by earlier pipeline steps from a temporary safetensors copy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from pytest_llmeff.compress.base import Candidate, CompressContext, CompressError, Compressor, Unsupported

_COMPUTE_DTYPES = ("auto", "float32", "float16", "bfloat16")
CPU_4BIT_BLOCK = 64  # bitsandbytes' CPU 4-bit path packs weights in blocks of 64 input features


def save_for_reload(candidate: Candidate, ctx: CompressContext) -> tuple[str, dict[str, Any]]:
    """Where to load ``candidate`` from with ``from_pretrained``: its source while pristine, else a copy."""
    if candidate.pristine:
        return ctx.base.spec.location, dict(ctx.base.load_kwargs)
    folder = ctx.workdir / ("_".join(candidate.steps) or "model")
    candidate.model.save_pretrained(folder, safe_serialization=True)
    ctx.tokenizer.save_pretrained(folder)  # some loaders (gptqmodel) read the tokenizer too
    return str(folder), {"use_safetensors": True, "dtype": candidate.model.dtype}


@dataclass(frozen=True)
class BitsAndBytes(Compressor):
    """bitsandbytes weight quantisation.

    Attributes:
        bits: 8 (LLM.int8 with outlier decomposition) or 4.
        quant_type: 4-bit data type, ``nf4`` or ``fp4``.
        compute_dtype: 4-bit matmul dtype; ``auto`` follows the dtype of the model being quantised.
        double_quant: also quantise the 4-bit block scales (saves ~0.4 bit per weight).
        threshold: LLM.int8 outlier threshold (features above it stay in 16 bit).
    """

    stage: ClassVar[str] = "quantize"
    summary: ClassVar[str] = "bitsandbytes weight quantisation (LLM.int8 / 4-bit nf4, fp4)"
    bits: int = 8
    quant_type: str = "nf4"
    compute_dtype: str = "auto"
    double_quant: bool = False
    threshold: float = 6.0

    def __post_init__(self) -> None:
        if self.bits not in (4, 8):
            raise CompressError(f"bitsandbytes bits must be 4 or 8, got {self.bits!r}")
        if self.quant_type not in ("nf4", "fp4"):
            raise CompressError(f"4-bit quant_type must be 'nf4' or 'fp4', got {self.quant_type!r}")
        if self.compute_dtype not in _COMPUTE_DTYPES:
            raise CompressError(f"compute_dtype must be one of {', '.join(_COMPUTE_DTYPES)}, "
                                f"got {self.compute_dtype!r}")
        if not self.threshold > 0:
            raise CompressError(f"int8 outlier threshold must be > 0, got {self.threshold!r}")

    def check(self, ctx: CompressContext) -> None:
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as exc:
            raise Unsupported(f"bitsandbytes is not installed ({exc})") from None
        if not (ctx.device == "cpu" or ctx.device.startswith("cuda")):
            raise Unsupported(f"bitsandbytes does not run on device {ctx.device!r} here")

    def config(self, model_dtype: str) -> Any:
        import torch
        from transformers import BitsAndBytesConfig

        if self.bits == 8:
            return BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=self.threshold)
        compute = model_dtype if self.compute_dtype == "auto" else self.compute_dtype
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=self.quant_type,
                                  bnb_4bit_compute_dtype=getattr(torch, compute),
                                  bnb_4bit_use_double_quant=self.double_quant)

    def apply(self, candidate: Candidate, ctx: CompressContext) -> Candidate:
        from pytest_llmeff.models.loading import from_pretrained

        # On CPU, LLM.int8 logs "inputs will be cast … to float16" on every forward pass.
        logging.getLogger("bitsandbytes.autograd._functions").setLevel(logging.ERROR)
        source, kwargs = save_for_reload(candidate, ctx)
        device_map = {"": ctx.device if ctx.device == "cpu" else _cuda_index(ctx.device)}
        # "auto" compute dtype follows the model being quantised (fp16+nf4 computes in fp16), not the base.
        config = self.config(str(candidate.model.dtype).removeprefix("torch."))
        notes = list(candidate.notes)
        skip = self._cpu_4bit_skips(candidate.model) if self.bits == 4 and ctx.device == "cpu" else []
        if skip:
            config.llm_int8_skip_modules = skip + ["lm_head"]  # replaces the default, which skips lm_head
            notes.append(f"{self.id}: {len(skip)} linear layers left unquantised — their input width is not "
                         f"a multiple of {CPU_4BIT_BLOCK}, which the bitsandbytes CPU 4-bit kernel needs")
        ctx.progress(f"quantising with bitsandbytes ({self.id or self.bits}) on {ctx.device}")
        model = from_pretrained(source, **kwargs, quantization_config=config, device_map=device_map).eval()
        return Candidate(model, False, candidate.steps + [self.id], notes, candidate.info)

    @staticmethod
    def _cpu_4bit_skips(model: Any) -> list[str]:
        """Names of block linears whose input width the CPU 4-bit kernel cannot take (after head pruning)."""
        import torch

        from pytest_llmeff.compress.sparsity import _is_conv1d

        names = []
        for name, module in model.named_modules():
            width = module.in_features if isinstance(module, torch.nn.Linear) else (
                module.weight.shape[0] if _is_conv1d(module) else None)
            if width is not None and width % CPU_4BIT_BLOCK and name != "lm_head":
                names.append(name)
        return names


def _cuda_index(device: str) -> int:
    return int(device.split(":", 1)[1]) if ":" in device else 0


def int8(threshold: float = 6.0) -> Compressor:
    return BitsAndBytes(bits=8, threshold=float(threshold))


def nf4(compute_dtype: str = "auto", double_quant: bool = False) -> Compressor:
    return BitsAndBytes(bits=4, quant_type="nf4", compute_dtype=compute_dtype, double_quant=double_quant)


def fp4(compute_dtype: str = "auto", double_quant: bool = False) -> Compressor:
    return BitsAndBytes(bits=4, quant_type="fp4", compute_dtype=compute_dtype, double_quant=double_quant)
