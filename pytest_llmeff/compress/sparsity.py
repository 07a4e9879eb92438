"""Weight sparsity: unstructured magnitude pruning and 2:4 semi-structured pruning (magnitude or
SparseGPT), on the linear layers inside the decoder blocks (embeddings and LM head stay dense).

A zero in a dense weight matrix costs as much to multiply as any other number: unless the weights
are moved to sparse kernels the result is *mask only* and no speed-up is expected — every record
says which it is. On CUDA, 2:4 sparsity in float16 / bfloat16 runs on the semi-structured sparse
kernels (``torch.sparse.to_sparse_semi_structured``) where the layer shapes allow.

SparseGPT follows Frantar & Alistarh (2023): per layer, a Hessian ``H = 2XXᵀ`` of its calibration
inputs; columns are pruned in blocks, choosing the mask by ``w² / [H⁻¹]²_jj`` and updating the
remaining weights to compensate (optimal brain surgeon), layer after layer on the outputs of the
already pruned layers.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from pytest_llmeff.compress import structure
from pytest_llmeff.compress.base import Candidate, CompressContext, CompressError, Compressor
from pytest_llmeff.compress.calibration import calibration_windows


def _is_conv1d(module: Any) -> bool:
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf")


def block_linears(model: Any) -> Iterator[tuple[Any, Any]]:
    """(module, weight as (out, in) view) for every linear layer inside the decoder blocks.

    GPT-2's Conv1D stores its weight as (in, out); the view is its transpose, so both kinds are
    pruned along the input dimension ("in every 4 consecutive weights of a row keep 2").
    """
    import torch

    for block in structure.layers(model):
        for module in block.modules():
            if isinstance(module, torch.nn.Linear):
                yield module, module.weight.data
            elif _is_conv1d(module):
                yield module, module.weight.data.t()


def magnitude_mask(weight: Any, sparsity: float) -> Any:
    """True where a weight is kept: the ``1 - sparsity`` share of largest magnitudes in the matrix."""
    import torch

    k = int(weight.numel() * sparsity)
    if k == 0:
        return torch.ones_like(weight, dtype=torch.bool)
    threshold = weight.abs().flatten().float().kthvalue(k).values
    return weight.abs() > threshold.to(weight.dtype)


def two_four_mask(weight: Any, n: int = 2, m: int = 4) -> Any:
    """True where kept: in every ``m`` consecutive weights of a row, the ``n`` largest magnitudes."""
    import torch

    out_features, in_features = weight.shape
    if in_features % m:
        raise CompressError(f"{n}:{m} sparsity needs layer widths divisible by {m}, got {in_features}")
    groups = weight.abs().float().reshape(out_features, in_features // m, m)
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(2, groups.topk(n, dim=2).indices, True)
    return keep.reshape(out_features, in_features)


def sparsegpt_prune(weight: Any, hessian: Any, sparsity: float, n: int = 0, m: int = 0,
                    blocksize: int = 128, percdamp: float = 0.01) -> Any:
    """Prune ``weight`` (out, in) with SparseGPT given the input Hessian (in, in); returns the new
    weight in float32. ``n:m`` > 0 selects the semi-structured pattern, else ``sparsity``."""
    import torch

    W = weight.float().clone()
    H = hessian.float().clone()
    columns = W.shape[1]
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    H += percdamp * torch.mean(torch.diag(H)) * torch.eye(columns, device=H.device)
    # Upper Cholesky factor of H⁻¹: its rows give the OBS updates column after column.
    Hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    for i1 in range(0, columns, blocksize):
        i2 = min(i1 + blocksize, columns)
        W1, Hinv1 = W[:, i1:i2].clone(), Hinv[i1:i2, i1:i2]
        Q1, Err1 = torch.zeros_like(W1), torch.zeros_like(W1)
        if n == 0:
            score = W1 ** 2 / torch.diag(Hinv1).reshape(1, -1) ** 2
            cut = torch.sort(score.flatten())[0][int(score.numel() * sparsity)]
            pruned = score <= cut
        else:
            pruned = torch.zeros_like(W1, dtype=torch.bool)
        for i in range(i2 - i1):
            if n and i % m == 0:
                score = W1[:, i:i + m] ** 2 / torch.diag(Hinv1)[i:i + m].reshape(1, -1) ** 2
                pruned.scatter_(1, i + torch.topk(score, n, dim=1, largest=False)[1], True)
            w, d = W1[:, i], Hinv1[i, i]
            q = w.clone()
            q[pruned[:, i]] = 0
            Q1[:, i] = q
            err = (w - q) / d
            W1[:, i:] -= err.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err
        W[:, i1:i2] = Q1
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
    return W


class _Stop(Exception):
    """Raised by a hook to end a calibration forward pass once the block of interest has run."""


def _hessians(model: Any, block: Any, windows: Any, batch_size: int = 4) -> dict[Any, Any]:
    """``2XXᵀ / tokens`` of the inputs of each linear layer in ``block`` over the calibration windows."""
    import torch

    linears = [mod for mod in block.modules() if isinstance(mod, torch.nn.Linear) or _is_conv1d(mod)]
    sums = {mod: None for mod in linears}
    count = {"tokens": 0}

    def collect(mod: Any, inputs: tuple[Any, ...], _out: Any) -> None:
        x = inputs[0].reshape(-1, inputs[0].shape[-1]).float()  # (tokens, in)
        h = 2 * x.t() @ x
        sums[mod] = h if sums[mod] is None else sums[mod] + h

    def stop(*_: Any) -> None:
        raise _Stop

    hooks = [mod.register_forward_hook(collect) for mod in linears]
    hooks.append(block.register_forward_hook(stop))
    device = next(model.parameters()).device
    try:
        with torch.inference_mode():
            for b in range(0, windows.shape[0], batch_size):
                batch = windows[b:b + batch_size].to(device)
                count["tokens"] += batch.numel()
                try:
                    model(input_ids=batch)
                except _Stop:
                    pass
    finally:
        for h in hooks:
            h.remove()
    return {mod: h / count["tokens"] for mod, h in sums.items() if h is not None}


@dataclass(frozen=True)
class Sparsify(Compressor):
    """Zero weights inside the decoder blocks.

    Attributes:
        pattern: ``unstructured`` (``sparsity`` of each matrix) or ``2:4``.
        method: ``magnitude`` (|w|) or ``sparsegpt`` (second order, calibration Hessian).
        sparsity: share of zeros for the unstructured pattern, in (0, 1).
        samples: calibration windows for SparseGPT.
        kernels: ``auto`` uses 2:4 sparse kernels where available (CUDA, 16-bit); ``dense`` never.
    """

    stage: ClassVar[str] = "structural"
    summary: ClassVar[str] = "weight sparsity: unstructured / 2:4, magnitude / SparseGPT"
    pattern: str = "unstructured"
    method: str = "magnitude"
    sparsity: float = 0.5
    samples: int = 16
    kernels: str = "auto"

    def __post_init__(self) -> None:
        if self.pattern not in ("unstructured", "2:4"):
            raise CompressError(f"sparsity pattern must be 'unstructured' or '2:4', got {self.pattern!r}")
        if self.method not in ("magnitude", "sparsegpt"):
            raise CompressError(f"sparsity method must be 'magnitude' or 'sparsegpt', got {self.method!r}")
        if not 0 < self.sparsity < 1:
            raise CompressError(f"sparsity must lie in (0, 1), got {self.sparsity!r}")
        if self.kernels not in ("auto", "dense"):
            raise CompressError(f"kernels must be 'auto' or 'dense', got {self.kernels!r}")

    def check(self, ctx: CompressContext) -> None:
        structure.family(ctx.base.model)

    def apply(self, candidate: Candidate, ctx: CompressContext) -> Candidate:
        import torch

        model = copy.deepcopy(candidate.model) if candidate.pristine else candidate.model
        n, m = (2, 4) if self.pattern == "2:4" else (0, 0)
        if self.method == "sparsegpt":
            windows = calibration_windows(ctx, self.samples)
            blocks = structure.layers(model)
            for i, block in enumerate(blocks):
                ctx.progress(f"{self.id}: SparseGPT block {i + 1}/{len(blocks)}")
                for mod, h in _hessians(model, block, windows).items():
                    weight = mod.weight.data.t() if _is_conv1d(mod) else mod.weight.data
                    new = sparsegpt_prune(weight, h, self.sparsity, n, m).to(weight.dtype)
                    weight.copy_(new)
        else:
            with torch.no_grad():
                for _, weight in block_linears(model):
                    mask = two_four_mask(weight) if n else magnitude_mask(weight, self.sparsity)
                    weight.mul_(mask.to(weight.dtype))
        zeros = total = 0
        for _, weight in block_linears(model):
            zeros += int((weight == 0).sum())
            total += weight.numel()
        notes = list(candidate.notes)
        if not n:  # 2:4 says whether it runs on sparse kernels when the pipeline finishes (below)
            notes.append(_MASK_ONLY.format(self.id))
        info = dict(candidate.info, sparsity=zeros / total)
        return Candidate(model, False, candidate.steps + [self.id], notes, info)

    def finish(self, candidate: Candidate, ctx: CompressContext, quantized: bool) -> Candidate:
        """Last, on the pipeline's finished model: move 2:4 weights to sparse kernels.

        Not in ``apply``: a later step would copy, cast, save or quantise the packed weights, which
        the sparse format does not support — and quantisation stores them dense again anyway.
        """
        if self.pattern != "2:4":
            return candidate
        if quantized:
            note = (f"{self.id}: mask only — the weights were quantised afterwards, which stores them "
                    "densely; no 2:4 speed-up expected")
        else:
            note = self._to_sparse_kernels(candidate.model, ctx) or _MASK_ONLY.format(self.id)
        candidate.notes.append(note)
        return candidate

    def _to_sparse_kernels(self, model: Any, ctx: CompressContext) -> str | None:
        """Move 2:4 weights to semi-structured sparse kernels (CUDA, 16-bit); None if not possible."""
        import torch

        if self.kernels == "dense" or not ctx.device.startswith("cuda"):
            return None
        if model.dtype not in (torch.float16, torch.bfloat16):
            return (f"{self.id}: mask only — the 2:4 sparse kernels need float16/bfloat16 weights "
                    f"(model is {str(model.dtype).replace('torch.', '')}); no speed-up expected")
        moved = skipped = 0
        for mod, _ in list(block_linears(model)):
            if _sparse_kernel_layer(mod):
                moved += 1
            else:
                skipped += 1  # shape, dtype or GPU the kernels do not support, or outputs disagree
        if not moved:
            return f"{self.id}: mask only — no layer could move to the 2:4 sparse kernels here"
        return (f"{self.id}: {moved} layers on 2:4 sparse kernels (to_sparse_semi_structured)"
                + (f", {skipped} left dense" if skipped else ""))


_MASK_ONLY = ("{}: mask only — zeros stored in dense matrices; dense kernels run at the same speed, so "
              "no speed-up is expected")


def _sparse_kernel_layer(mod: Any) -> bool:
    """Swap a 2:4-masked layer's weight for its compressed form, if the kernel runs here and gives
    the dense layer's output on a test input; otherwise leave it dense.

    ``nn.Linear`` takes the compressed weight directly. GPT-2's ``Conv1D`` computes
    ``addmm(bias, x, W)`` with ``W`` stored (in, out): it gets the transpose of the compressed
    ``Wᵀ``, which the sparse format serves as addmm's second operand (the mask runs along the
    input dimension in both layouts).
    """
    import torch
    from torch.sparse import to_sparse_semi_structured

    dense, trainable = mod.weight.data, mod.weight.requires_grad
    conv = _is_conv1d(mod)
    x = torch.randn(64, dense.shape[0] if conv else dense.shape[1], dtype=dense.dtype, device=dense.device)
    with torch.no_grad():
        expected = mod(x)
        try:
            packed = to_sparse_semi_structured(dense.t().contiguous() if conv else dense)
            mod.weight = torch.nn.Parameter(packed.t() if conv else packed, requires_grad=False)
            got = mod(x)
        except (RuntimeError, ValueError, NotImplementedError, AssertionError, TypeError):
            got = None
        # 16-bit products summed in another order: agree to a fraction of the output's scale.
        if got is None or not bool((got - expected).abs().max() <= 1e-2 * expected.abs().max() + 1e-3):
            mod.weight = torch.nn.Parameter(dense, requires_grad=trainable)
            return False
    return True


def magnitude(sparsity: float = 0.5) -> Compressor:
    return Sparsify(pattern="unstructured", method="magnitude", sparsity=float(sparsity))


def sparsegpt(sparsity: float = 0.5, samples: int = 16) -> Compressor:
    return Sparsify(pattern="unstructured", method="sparsegpt", sparsity=float(sparsity), samples=int(samples))


def semi24(kernels: str = "auto") -> Compressor:
    return Sparsify(pattern="2:4", method="magnitude", kernels=kernels)


def semi24_sparsegpt(samples: int = 16, kernels: str = "auto") -> Compressor:
    return Sparsify(pattern="2:4", method="sparsegpt", samples=int(samples), kernels=kernels)
