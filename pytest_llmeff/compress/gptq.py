"""GPTQ weight quantisation through gptqmodel (calibration texts from the run's train split).

The quantised model is saved and loaded back with ``GPTQModel.load`` — GPT-2 GPTQ checkpoints do
not load through transformers — and measured as the transformers model inside it. The checkpoint is
kept in the cache folder under a key of the source weights, the settings, the calibration texts,
the device and the library versions (see :mod:`pytest_llmeff.compress.disk_cache`): quantising takes
minutes on a CPU, and a later run loads the same files instead. A named kernel
backend is used (``gptq_torch`` on CPU, ``gptq_triton`` on CUDA): gptqmodel's ``auto`` picks the
Hopper "machete" kernel on an H100, whose build needs the network.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pytest_llmeff.compress import disk_cache
from pytest_llmeff.compress.base import Candidate, CompressContext, CompressError, Compressor, Unsupported
from pytest_llmeff.compress.basic import emulated_on_cpu
from pytest_llmeff.compress.bnb import save_for_reload
from pytest_llmeff.compress.calibration import calibration_texts
from pytest_llmeff.fingerprint import library_version

GROUP_SIZES = (128, 64, 32, 16)


def quantizable_widths(model: Any) -> set[int]:
    """Input widths of the linear layers gptqmodel quantises (inside the decoder blocks)."""
    from pytest_llmeff.compress.sparsity import block_linears

    return {w.shape[1] for _, w in block_linears(model)}


def fitting_group_size(requested: int, widths: set[int]) -> int:
    """``requested`` if it divides every width, else the largest smaller standard size that does."""
    for size in (requested, *[g for g in GROUP_SIZES if g < requested]):
        if all(w % size == 0 for w in widths):
            return size
    raise CompressError(f"no GPTQ group size ≤ {requested} divides the layer widths {sorted(widths)}")


@dataclass(frozen=True)
class Gptq(Compressor):
    """GPTQ (second-order, one-shot) weight quantisation.

    Attributes:
        bits: weight bits (2, 3, 4 or 8).
        group_size: weights sharing one scale; reduced (with a note) where layer widths do not divide.
        samples: calibration documents from the train split.
        desc_act: quantise columns in order of decreasing activation (act-order).
        backend: gptqmodel kernel; ``auto`` = ``gptq_torch`` on CPU, ``gptq_triton`` on CUDA.
        allow_emulated: measure on a CPU without native bfloat16 arithmetic anyway (gptqmodel's CPU
            kernel computes in bfloat16, which torch then emulates: ~40× slower per matmul on AVX2).
    """

    stage: ClassVar[str] = "quantize"
    summary: ClassVar[str] = "GPTQ weight quantisation (gptqmodel)"
    bits: int = 4
    group_size: int = 128
    samples: int = 128
    desc_act: bool = False
    backend: str = "auto"
    allow_emulated: bool = False

    def __post_init__(self) -> None:
        if self.bits not in (2, 3, 4, 8):
            raise CompressError(f"GPTQ bits must be 2, 3, 4 or 8, got {self.bits!r}")
        if self.group_size not in GROUP_SIZES:
            raise CompressError(f"GPTQ group_size must be one of {GROUP_SIZES}, got {self.group_size!r}")
        if self.samples < 1:
            raise CompressError("GPTQ needs at least one calibration sample")

    def check(self, ctx: CompressContext) -> None:
        try:
            import gptqmodel  # noqa: F401
        except ImportError as exc:
            raise Unsupported(f"gptqmodel is not installed ({exc}); pip install gptqmodel") from None
        if not ctx.device.startswith("cuda") and not self.allow_emulated and (why := emulated_on_cpu("bfloat16")):
            raise Unsupported(f"gptqmodel's CPU kernel computes in bfloat16, and {why}"
                              f" — run it on a GPU, or use {self.id.split('(')[0]}(allow_emulated=true) to "
                              "measure the emulation anyway")

    def _backend(self, device: str) -> str:
        if self.backend != "auto":
            return self.backend
        # gptqmodel's triton kernel packs 2, 4 and 8 bits only (TritonV2Linear.SUPPORTS_BITS).
        return "gptq_triton" if device.startswith("cuda") and self.bits in (2, 4, 8) else "gptq_torch"

    def apply(self, candidate: Candidate, ctx: CompressContext) -> Candidate:
        from pytest_llmeff.compress.structure import STRUCTURE_KEY

        if (getattr(candidate.model.config, STRUCTURE_KEY, None) or {}).get("heads"):
            raise Unsupported("gptqmodel rebuilds the model from its config, which cannot hold per-layer "
                              "head counts: GPTQ after head pruning is not possible (use nf4 or int8)")
        group = fitting_group_size(self.group_size, quantizable_widths(candidate.model))
        notes = list(candidate.notes)
        if group != self.group_size:
            notes.append(f"{self.id}: group size {group} (layer widths do not divide into {self.group_size})")
        cal = calibration_texts(ctx, self.samples)
        job = {"bits": self.bits, "group_size": group, "desc_act": self.desc_act, "device": ctx.device,
               "calibration": cal, "trust_remote_code": ctx.base.spec.trust_remote_code}
        folder = ctx.cache_dir / "gptq" / disk_cache.key_of(
            {**job, "source": disk_cache.model_digest(candidate.model), "versions": _versions()})
        meta = disk_cache.cached(folder)
        if meta is None:
            ctx.progress(f"{self.id}: GPTQ {self.bits}-bit, group {group}, {len(cal)} calibration texts "
                         f"on {ctx.device} (cached afterwards; the first run on a machine also compiles a kernel)")
            source, _ = save_for_reload(candidate, ctx)
            meta = disk_cache.build(folder, lambda tmp: quantize_in_subprocess(
                {**job, "source": source, "out": str(tmp)}, ctx.workdir))
            notes.append(f"{self.id}: quantised in {meta['minutes']} min; cached")
        else:
            ctx.progress(f"{self.id}: reusing the cached GPTQ checkpoint {folder}")
            notes.append(f"{self.id}: checkpoint from cache ({meta['minutes']} min of quantising when built)")
        from gptqmodel import GPTQModel

        loaded = GPTQModel.load(str(folder), device=ctx.device, backend=self._backend(ctx.device))
        notes.append(f"{self.id}: kernel backend {self._backend(ctx.device)}")
        source_dtype, loaded_dtype = candidate.model.dtype, loaded.model.dtype
        if loaded_dtype != source_dtype:  # gptqmodel may change the activation dtype (fp32 → bf16)
            notes.append(f"{self.id}: gptqmodel runs in {str(loaded_dtype).removeprefix('torch.')}, the "
                         f"source was {str(source_dtype).removeprefix('torch.')}: the comparison includes "
                         "that precision change")
        return Candidate(loaded.model.eval(), False, candidate.steps + [self.id], notes, dict(candidate.info))


def _versions() -> dict[str, str | None]:
    return {dist: library_version(dist) for dist in ("gptqmodel", "torch", "transformers", "pytest-llmeff")}


def quantize_in_subprocess(job: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Quantise in a fresh interpreter: gptqmodel's quantisation leaves worker threads and allocator
    state behind that slowed every later forward pass in the same process by ~50 % (measured on
    2 CPU cores), which would corrupt every later case's timing. Its log goes to a file.
    Returns the build record kept with the cached checkpoint."""
    import json
    import subprocess
    import sys
    import time

    name = f"gptq-{len(list(workdir.glob('gptq-*.json')))}"
    spec = workdir / f"{name}.json"
    log = workdir / f"{name}.log"
    spec.write_text(json.dumps(job))
    started = time.perf_counter()
    env = dict(os.environ)
    # gptqmodel sizes a CPU worker pool at import; on a 2-core machine its default fails.
    env.setdefault("GPTQMODEL_CPU_WORKERS", "2")
    with open(log, "w") as fh:
        done = subprocess.run([sys.executable, "-m", "pytest_llmeff.compress.gptq", str(spec)],
                              cwd=workdir, env=env, stdout=fh, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-15:]
        raise CompressError("GPTQ quantisation failed (gptqmodel):\n  " + "\n  ".join(tail))
    return {"minutes": round((time.perf_counter() - started) / 60, 2), "versions": _versions(),
            "settings": {k: job[k] for k in ("bits", "group_size", "desc_act", "device")},
            "calibration_texts": len(job["calibration"])}


def _worker(spec_path: str) -> None:
    """The subprocess: quantise and save (``python -m pytest_llmeff.compress.gptq job.json``)."""
    import json

    from gptqmodel import GPTQModel, QuantizeConfig

    job = json.loads(Path(spec_path).read_text())
    qcfg = QuantizeConfig(bits=job["bits"], group_size=job["group_size"], desc_act=job["desc_act"])
    model = GPTQModel.load(job["source"], qcfg, device=job["device"], trust_remote_code=job["trust_remote_code"])
    model.quantize(job["calibration"], batch_size=1)
    model.save(job["out"])


def gptq(bits: int = 4, group_size: int = 128, samples: int = 128, desc_act: bool = False,
         backend: str = "auto", allow_emulated: bool = False) -> Compressor:
    return Gptq(bits=int(bits), group_size=int(group_size), samples=int(samples), desc_act=bool(desc_act),
                backend=str(backend), allow_emulated=bool(allow_emulated))


def gptq4(group_size: int = 128, samples: int = 128, backend: str = "auto", allow_emulated: bool = False) -> Compressor:
    return gptq(4, group_size, samples, False, backend, allow_emulated)


if __name__ == "__main__":
    import sys

    _worker(sys.argv[1])
