"""Knowledge distillation: train a smaller student to match the teacher on the run's train text.

Losses (``T`` the temperature, ``α`` the weight of the distillation term):

- ``forward_kl``: ``α·T²·KL(p_teacher^T ‖ p_student^T) + (1−α)·CE(student, next token)`` (Hinton et al.);
- ``reverse_kl``: the same with ``KL(p_student^T ‖ p_teacher^T)``, mode-seeking (MiniLLM);
- ``seqkd``: cross-entropy on text the teacher generated from prompts of the train split
  (sequence-level KD, Kim & Rush), sampled with a fixed seed.

The default student keeps every other teacher layer, initialised from those layers (as DistilBERT
did); ``student=<folder>`` distils into a model of your own with the same tokenizer. A trained
student is cached on disk under a key made of the teacher's weights, the recipe, the training
text, the library versions and the CPU threads it trained on (training is untimed, so it uses every
usable core), so suites and pipelines reuse it instead of training again.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from pytest_llmeff.compress import disk_cache, structure
from pytest_llmeff.compress.base import Candidate, CompressContext, CompressError, Compressor
from pytest_llmeff.compress.calibration import train_token_stream
from pytest_llmeff.fingerprint import library_version

LOSSES = ("forward_kl", "reverse_kl", "seqkd")


@dataclass(frozen=True)
class TrainRecipe:
    """Everything that determines a distilled student (part of its cache key)."""

    loss: str = "forward_kl"
    temperature: float = 2.0
    alpha: float = 0.5
    steps: int = 300
    batch_size: int = 8
    seq_len: int = 256
    lr: float = 1e-3
    seed: int = 0
    seqkd_samples: int = 128
    seqkd_new_tokens: int = 64


def every_other_layer(n_layers: int, keep_fraction: float) -> list[int]:
    """Evenly spaced layer indices starting at 0: 6 layers at 0.5 → [0, 2, 4]."""
    k = max(1, round(n_layers * keep_fraction))
    return [int(i * n_layers / k) for i in range(k)]


def distillation_loss(student_logits: Any, teacher_logits: Any, labels: Any, recipe: TrainRecipe) -> Any:
    """The mixed loss of the module docstring for one batch of (B, T, V) logits."""
    import torch.nn.functional as F

    vocab = student_logits.shape[-1]
    s = student_logits[:, :-1].reshape(-1, vocab).float()
    hard = F.cross_entropy(s, labels[:, 1:].reshape(-1))
    if recipe.loss == "seqkd" or recipe.alpha == 0:
        return hard
    t = teacher_logits[:, :-1].reshape(-1, vocab).float()
    T = recipe.temperature
    log_ps, log_pt = F.log_softmax(s / T, dim=-1), F.log_softmax(t / T, dim=-1)
    if recipe.loss == "forward_kl":  # KL(teacher ‖ student)
        kl = F.kl_div(log_ps, log_pt, log_target=True, reduction="batchmean")
    else:  # KL(student ‖ teacher)
        kl = F.kl_div(log_pt, log_ps, log_target=True, reduction="batchmean")
    return recipe.alpha * T * T * kl + (1 - recipe.alpha) * hard


def _seqkd_data(teacher: Any, ctx: CompressContext, recipe: TrainRecipe) -> Any:
    """Teacher-generated sequences: prompts of 16 train tokens, sampled continuations (seeded)."""
    import torch

    prompt_len = 16
    stream = torch.tensor(train_token_stream(ctx, recipe.seqkd_samples * recipe.seq_len))
    starts = torch.arange(recipe.seqkd_samples) * (len(stream) // max(recipe.seqkd_samples, 1))
    prompts = torch.stack([stream[s:s + prompt_len] for s in starts.tolist()])
    device = next(teacher.parameters()).device
    new = min(recipe.seqkd_new_tokens, recipe.seq_len - prompt_len)
    out = []
    torch.manual_seed(recipe.seed)
    pad = getattr(teacher.config, "eos_token_id", None)
    with torch.inference_mode():
        for b in range(0, len(prompts), 32):
            batch = prompts[b:b + 32].to(device)
            gen = teacher.generate(input_ids=batch, attention_mask=torch.ones_like(batch), do_sample=True,
                                   top_k=50, max_new_tokens=new, min_new_tokens=new, pad_token_id=pad)
            out.append(gen.cpu())
        ctx.progress(f"seqkd: {len(prompts)} teacher sequences of {prompt_len}+{new} tokens generated")
    return torch.cat(out)


def train_student(student: Any, teacher: Any, ctx: CompressContext, recipe: TrainRecipe,
                  label: str) -> list[dict[str, float]]:
    """Distil ``teacher`` into ``student`` in place; returns the loss curve."""
    import torch

    torch.manual_seed(recipe.seed)
    device = next(teacher.parameters()).device
    gen = torch.Generator().manual_seed(recipe.seed)
    if recipe.loss == "seqkd":
        data = _seqkd_data(teacher, ctx, recipe)
    else:
        data = torch.tensor(train_token_stream(ctx, recipe.steps * recipe.batch_size * recipe.seq_len))
    if data.ndim == 1 and data.numel() <= recipe.seq_len:
        raise CompressError(f"{label}: the train text is too short to distil on")
    # 16-bit students train on fp32 master weights under autocast: AdamW's update in fp16 rounds
    # its epsilon to 0 and turns small-gradient weights into inf / NaN.
    dtype = next(student.parameters()).dtype
    low_precision = dtype in (torch.float16, torch.bfloat16)
    if low_precision:
        student.float()
    autocast = (torch.autocast(device.type, dtype=dtype) if low_precision
                else contextlib.nullcontext())
    opt = torch.optim.AdamW(student.parameters(), lr=recipe.lr, weight_decay=0.0)
    student.train()
    teacher.eval()
    curve, started = [], time.perf_counter()
    report_every = max(1, recipe.steps // 5)
    for step in range(recipe.steps):
        if data.ndim == 2:  # seqkd: whole generated sequences
            batch = data[torch.randint(0, len(data), (recipe.batch_size,), generator=gen)]
        else:
            starts = torch.randint(0, data.numel() - recipe.seq_len, (recipe.batch_size,), generator=gen)
            batch = torch.stack([data[s:s + recipe.seq_len] for s in starts.tolist()])
        batch = batch.to(device)
        for group in opt.param_groups:  # linear decay: short runs need no warm-up on a warm start
            group["lr"] = recipe.lr * (1 - step / recipe.steps)
        teacher_logits = None
        with autocast:
            if recipe.loss != "seqkd" and recipe.alpha > 0:
                with torch.no_grad():
                    teacher_logits = teacher(input_ids=batch, use_cache=False).logits
            logits = student(input_ids=batch, use_cache=False).logits
        loss = distillation_loss(logits, teacher_logits, batch, recipe)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if (step + 1) % report_every == 0 or step + 1 == recipe.steps:
            curve.append({"step": step + 1, "loss": round(loss.item(), 4),
                          "seconds": round(time.perf_counter() - started, 1)})
            ctx.progress(f"{label}: step {step + 1}/{recipe.steps}, loss {loss.item():.3f}")
    student.eval()
    if low_precision:
        student.to(dtype)
    return curve


def _versions() -> dict[str, str | None]:
    return {key: library_version(dist) for key, dist in
            (("torch", "torch"), ("transformers", "transformers"), ("pytest_llmeff", "pytest-llmeff"))}


def training_threads() -> int:
    """Training is untimed: it runs on every usable core. The thread count is part of the cache
    key, as a student's last bits depend on it (the order of the sums in each matrix product)."""
    from pytest_llmeff.measure.threads import usable_cores

    return usable_cores()


def cache_key(teacher: Any, recipe: TrainRecipe, student_spec: str, ctx: CompressContext) -> str:
    text = ctx.text()
    data = hashlib.sha256("\x1e".join(text.train_texts[:2000]).encode()).hexdigest()
    return disk_cache.key_of({"teacher": disk_cache.model_digest(teacher), "recipe": asdict(recipe),
                              "student": student_spec, "data": [text.name, data], "versions": _versions(),
                              "threads": training_threads()})


@dataclass(frozen=True)
class Distill(Compressor):
    """Knowledge distillation into a smaller student (see the module docstring).

    Attributes:
        loss: ``forward_kl``, ``reverse_kl`` or ``seqkd``.
        temperature: softening temperature T > 0 (KL losses).
        alpha: weight of the KL term against the hard-label cross-entropy, in [0, 1].
        keep: share of teacher layers the derived student keeps (0.5: every other layer).
        student: a folder with a student model of your own (same tokenizer); empty: derived.
        steps, batch_size, seq_len, lr: training; ``seq_len`` 0 = the model context (at most 256).
    """

    stage: ClassVar[str] = "structural"
    summary: ClassVar[str] = "knowledge distillation into a smaller student (forward / reverse KL, SeqKD)"
    loss: str = "forward_kl"
    temperature: float = 2.0
    alpha: float = 0.5
    keep: float = 0.5
    student: str = ""
    steps: int = 300
    batch_size: int = 8
    seq_len: int = 0
    lr: float = 1e-3

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise CompressError(f"distillation loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if not self.temperature > 0:
            raise CompressError(f"distillation temperature must be > 0, got {self.temperature!r}")
        if not 0 <= self.alpha <= 1:
            raise CompressError(f"distillation alpha must lie in [0, 1], got {self.alpha!r}")
        if not 0 < self.keep < 1:
            raise CompressError(f"the student must keep a share of layers in (0, 1), got {self.keep!r}")
        if self.steps < 1 or self.batch_size < 1 or self.seq_len < 0 or not self.lr > 0:
            raise CompressError("distillation needs steps ≥ 1, batch_size ≥ 1, seq_len ≥ 0 and lr > 0")

    def check(self, ctx: CompressContext) -> None:
        if not self.student:
            structure.family(ctx.base.model)

    def recipe(self, ctx: CompressContext) -> TrainRecipe:
        seq = self.seq_len or min(ctx.base.context_length, 256)
        return TrainRecipe(self.loss, self.temperature, self.alpha, self.steps, self.batch_size, seq,
                           self.lr, ctx.seed)

    def _derive(self, teacher: Any) -> tuple[Any, str]:
        if self.student:
            from pytest_llmeff.models.loading import from_pretrained

            student = from_pretrained(self.student, use_safetensors=True, dtype=teacher.dtype)
            if student.config.vocab_size != teacher.config.vocab_size:
                raise CompressError(f"student {self.student} has a vocabulary of {student.config.vocab_size}, "
                                    f"the teacher {teacher.config.vocab_size}: they must share the tokenizer")
            return student.to(next(teacher.parameters()).device), f"folder:{Path(self.student).resolve()}"
        n = len(structure.layers(teacher))
        keep = every_other_layer(n, self.keep)
        if len(keep) >= n:
            raise CompressError(f"a {n}-layer teacher leaves no layer to drop at keep={self.keep}")
        student = copy.deepcopy(teacher)
        structure.keep_layers(student, keep)
        return student, f"layers:{keep}"

    def apply(self, candidate: Candidate, ctx: CompressContext) -> Candidate:
        from pytest_llmeff.models.loading import from_pretrained

        teacher = candidate.model
        recipe = self.recipe(ctx)
        student, spec = self._derive(teacher)
        key = cache_key(teacher, recipe, spec, ctx)
        folder = ctx.cache_dir / "students" / key
        notes = list(candidate.notes)
        meta = disk_cache.cached(folder)
        if meta is not None:
            ctx.progress(f"{self.id}: reusing the cached student {folder}")
            notes.append(f"{self.id}: student from cache ({meta['minutes']} min of training when built)")
        else:
            threads = training_threads()
            ctx.progress(f"{self.id}: distilling into a student ({spec}), {recipe.steps} steps of "
                         f"{recipe.batch_size}×{recipe.seq_len} tokens on {ctx.device}"
                         + (f" ({threads} CPU threads)" if ctx.device == "cpu" else ""))

            def make(tmp: Path) -> dict[str, Any]:
                from pytest_llmeff.measure.threads import using

                started = time.perf_counter()
                with using(threads):
                    curve = train_student(student, teacher, ctx, recipe, self.id)
                minutes = round((time.perf_counter() - started) / 60, 2)
                student.save_pretrained(tmp, safe_serialization=True)
                return {"recipe": asdict(recipe), "student": spec, "curve": curve, "minutes": minutes,
                        "versions": _versions(), "threads": threads}

            meta = disk_cache.build(folder, make)
            notes.append(f"{self.id}: trained {recipe.steps} steps in {meta['minutes']} min ({self.loss}); cached")
        # Loaded back from the cache in both cases, so a fresh and a cached run measure the same files.
        student = from_pretrained(str(folder), use_safetensors=True, dtype=teacher.dtype)
        student = student.to(next(teacher.parameters()).device).eval()
        info = dict(candidate.info, layers=float(len(structure.layers(student))))
        return Candidate(student, False, candidate.steps + [self.id], notes, info)


def _distill(loss: str, temperature: float, alpha: float, keep: float, student: str, steps: int,
             batch_size: int, seq_len: int, lr: float) -> Compressor:
    return Distill(loss=loss, temperature=float(temperature), alpha=float(alpha), keep=float(keep),
                   student=str(student), steps=int(steps), batch_size=int(batch_size), seq_len=int(seq_len),
                   lr=float(lr))


def kd(temperature: float = 2.0, alpha: float = 0.5, keep: float = 0.5, student: str = "", steps: int = 300,
       batch_size: int = 8, seq_len: int = 0, lr: float = 1e-3) -> Compressor:
    """Forward-KL distillation (the classic)."""
    return _distill("forward_kl", temperature, alpha, keep, student, steps, batch_size, seq_len, lr)


def kd_rkl(temperature: float = 2.0, alpha: float = 0.5, keep: float = 0.5, student: str = "",
           steps: int = 300, batch_size: int = 8, seq_len: int = 0, lr: float = 1e-3) -> Compressor:
    """Reverse-KL distillation (MiniLLM-style, mode-seeking)."""
    return _distill("reverse_kl", temperature, alpha, keep, student, steps, batch_size, seq_len, lr)


def seqkd(keep: float = 0.5, student: str = "", steps: int = 300, batch_size: int = 8, seq_len: int = 0,
          lr: float = 1e-3) -> Compressor:
    """Sequence-level distillation on teacher-generated text."""
    return _distill("seqkd", 1.0, 0.0, keep, student, steps, batch_size, seq_len, lr)
