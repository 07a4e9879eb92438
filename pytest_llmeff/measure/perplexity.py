"""Perplexity under a named protocol, so values from different protocols are never compared.

Protocols (the id is stored with every value):
- ``nonoverlap-<ctx>``: the GPTQ-paper protocol. Documents joined with ``"\\n\\n"``, tokenised once,
  cut into back-to-back windows of ``ctx`` tokens, the ragged tail dropped; each window is scored on
  its own (no context carried over), and perplexity is ``exp`` of the mean token loss.
- ``stride-<s>``: Hugging Face's sliding window ("Perplexity of fixed-length models"): windows of
  ``max_length`` tokens start every ``s`` tokens; each scores the tokens after the previous window's
  end ("trg_len = end_loc - prev_end_loc"), the rest is context, and the loop ends with the window
  that reaches the text's end — so every token but the first is scored once, the last ones too.
  ``max_length`` is the model's context capped at 1024 (the guide's GPT-2 window; a 128k-context
  model is not evaluated in 131,072-token windows); ``stride-<s>/<w>`` names the window. The
  guide's own count subtracts one token per window; here every scored token counts once.
- ``lmeval-rolling``: lm-eval's ``loglikelihood_rolling`` (its wikitext task): each document is
  scored on its own, from a prefix (end-of-text) token, in disjoint windows of the model context
  (lm-eval's own window functions), batched here. Reported as word perplexity
  ``exp(−Σ log p / words)`` with byte perplexity and bits per byte beside it. A test checks it
  against lm-eval's HFLM on the embedded model.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Any

_PROTOCOL = re.compile(r"^(nonoverlap|stride)-(\d+)(?:/(\d+))?$")
ROLLING = "lmeval-rolling"
STRIDE_WINDOW_CAP = 1024  # the stride protocol's default window: the model context, at most this


@dataclass(frozen=True)
class PerplexityProtocol:
    """A parsed protocol id such as ``nonoverlap-256``, ``stride-128`` or ``stride-512/2048``."""

    kind: str
    size: int
    window: int = 0  # stride only: the window length (0: the model context, at most 1024)

    @classmethod
    def parse(cls, text: str) -> PerplexityProtocol:
        if text.strip() == ROLLING:
            return cls(ROLLING, 0)
        match = _PROTOCOL.match(text.strip())
        window = int(match.group(3)) if match and match.group(3) else 0
        if (not match or int(match.group(2)) < 2 or (match.group(3) and match.group(1) != "stride")
                or (window and window < int(match.group(2)))):
            raise ValueError(
                f"unknown perplexity protocol {text!r}: expected 'nonoverlap-<ctx>', 'stride-<s>' or "
                f"'stride-<s>/<window>' with whole numbers of tokens ≥ 2, window ≥ s (e.g. "
                f"'nonoverlap-256'), or '{ROLLING}'"
            )
        return cls(match.group(1), int(match.group(2)), window)

    @property
    def id(self) -> str:
        if self.kind == ROLLING:
            return ROLLING
        return f"{self.kind}-{self.size}" + (f"/{self.window}" if self.window else "")


@dataclass(frozen=True)
class PerplexityResult:
    """A perplexity value and everything needed to compare it honestly."""

    value: float
    protocol: str
    tokens_scored: int
    windows: int
    dtype: str
    device: str
    seconds: float  # wall clock of the evaluation, for tokens/s
    window: int = 0  # the longest window scored (the stride protocol's window length)

    @property
    def mean_nll(self) -> float:
        return math.log(self.value)


def _model_device_dtype(model: Any) -> tuple[Any, Any]:
    import torch

    param = next(model.parameters())
    dtype = getattr(model, "dtype", param.dtype)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        dtype = param.dtype if param.dtype.is_floating_point else torch.float32
    return param.device, dtype


def _windows(ids: Any, proto: PerplexityProtocol, n_positions: int | None) -> list[tuple[Any, int]]:
    """(window, first scored position) pairs of ``proto`` over the token stream ``ids``."""
    if proto.kind != "nonoverlap":
        return stride_windows(ids, proto, n_positions)
    ctx = proto.size
    if n_positions is not None and ctx > n_positions:
        raise ValueError(f"protocol {proto.id} needs {ctx} positions; the model has {n_positions}")
    # (n_windows, ctx); every window scores ctx-1 tokens: the first has no context.
    return [(ids[i * ctx:(i + 1) * ctx], 1) for i in range(ids.numel() // ctx)]


def perplexity(
    model: Any,
    token_ids: list[int],
    protocol: str | PerplexityProtocol,
    *,
    batch_size: int = 8,
    max_windows: int | None = None,
) -> PerplexityResult:
    """Score ``token_ids`` with ``model`` (a causal LM returning ``.logits``) under ``protocol``.

    Args:
        model: a transformers causal LM (any dtype / device / quantisation).
        token_ids: the evaluation text, already tokenised as one stream.
        protocol: ``nonoverlap-<ctx>``, ``stride-<s>`` or ``stride-<s>/<window>``; ``ctx`` and
            ``window`` may not exceed the model's positions.
        batch_size: windows scored per forward pass (batched windows keep matmuls large).
        max_windows: score only the first N windows (quick runs); recorded in ``windows``.
    """
    import torch

    proto = protocol if isinstance(protocol, PerplexityProtocol) else PerplexityProtocol.parse(protocol)
    n_positions = _context_length(model)
    device, dtype = _model_device_dtype(model)
    ids = torch.tensor(token_ids, dtype=torch.long)

    windows = _windows(ids, proto, n_positions)
    if max_windows is not None:
        windows = windows[:max_windows]
    if not windows:
        raise ValueError(f"the text has {ids.numel()} tokens: too short for protocol {proto.id}")

    total_tokens = 0
    started = time.perf_counter()
    with torch.inference_mode():
        # Summed on the device: a host read per row would stall the GPU once per row.
        total = torch.zeros((), dtype=torch.float64, device=device)
        for chunk in _equal_length_batches(windows, batch_size):
            batch = torch.stack([w for w, _ in chunk]).to(device)  # (B, ctx)
            # use_cache=False: scoring needs no KV cache, and building one copies every layer's K/V.
            logits = model(input_ids=batch, use_cache=False).logits  # (B, ctx, vocab)
            for row, (_, first_scored) in enumerate(chunk):
                # Position j predicts token j+1; score tokens first_scored .. ctx-1. The loss is
                # taken in fp32 (16-bit logits lose too much in the normaliser), one row at a
                # time so a large vocabulary never needs a (B, ctx, vocab) fp32 copy.
                nll = torch.nn.functional.cross_entropy(logits[row, first_scored - 1:-1].float(),
                                                        batch[row, first_scored:], reduction="sum")
                total += nll.double()
                total_tokens += batch.shape[1] - first_scored
        total_nll = float(total)
    seconds = time.perf_counter() - started
    return PerplexityResult(
        value=math.exp(total_nll / total_tokens),
        protocol=proto.id,
        tokens_scored=total_tokens,
        windows=len(windows),
        dtype=str(dtype).replace("torch.", ""),
        device=str(device),
        seconds=seconds,
        window=max(w.numel() for w, _ in windows),
    )


@dataclass(frozen=True)
class RollingResult:
    """lm-eval's rolling log-likelihood figures over whole documents."""

    word_perplexity: float
    byte_perplexity: float
    bits_per_byte: float
    loglikelihood: float
    words: int
    bytes: int
    documents: int
    tokens_scored: int
    dtype: str
    device: str
    seconds: float


def rolling_perplexity(model: Any, tokenizer: Any, documents: list[str] | tuple[str, ...], *,
                       batch_size: int = 8, max_length: int | None = None,
                       max_documents: int | None = None) -> RollingResult:
    """The ``lmeval-rolling`` protocol: lm-eval's windows, scored in batches of equal-length windows.

    Words and bytes are counted as lm-eval's wikitext task counts them (``re.split(r"\\s+")`` and
    UTF-8 bytes of the document).
    """
    import torch
    from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

    device, dtype = _model_device_dtype(model)
    max_length = max_length or _context_length(model) or 2048
    prefix = tokenizer.eos_token_id if tokenizer.bos_token_id is None else tokenizer.bos_token_id
    docs = list(documents)[:max_documents] if max_documents else list(documents)
    # (input tokens, number of scored tokens at the end): lm-eval feeds context + continuation, cut
    # to the last max_length + 1 tokens, minus the final one.
    windows: list[tuple[list[int], list[int]]] = []
    for doc in docs:
        tokens = tokenizer.encode(doc, add_special_tokens=False)
        for context, continuation in map(make_disjoint_window, get_rolling_token_windows(
                token_list=tokens, prefix_token=prefix, max_seq_len=max_length, context_len=1)):
            inp = (context + continuation)[-(max_length + 1):][:-1]
            windows.append((inp, continuation))
    scored = 0
    started = time.perf_counter()
    order = sorted(range(len(windows)), key=lambda i: -len(windows[i][0]))  # similar lengths together
    with torch.inference_mode():
        total_t = torch.zeros((), dtype=torch.float64, device=device)  # on the device, as in perplexity()
        for b in range(0, len(order), batch_size):
            chunk = [windows[i] for i in order[b:b + batch_size]]
            width = max(len(inp) for inp, _ in chunk)
            # Right padding: a causal model's earlier positions never see the pad tokens.
            batch = torch.tensor([inp + [prefix] * (width - len(inp)) for inp, _ in chunk], device=device)
            logprobs = torch.log_softmax(model(input_ids=batch, use_cache=False).logits.float(), dim=-1)
            for row, (inp, cont) in enumerate(chunk):
                start = len(inp) - len(cont)
                target = torch.tensor(cont, device=device)
                total_t += logprobs[row, start:len(inp)].gather(-1, target.unsqueeze(-1)).double().sum()
                scored += len(cont)
        total = float(total_t)
    words = sum(len(re.split(r"\s+", d)) for d in docs)
    nbytes = sum(len(d.encode("utf-8")) for d in docs)
    return RollingResult(
        word_perplexity=math.exp(-total / words), byte_perplexity=math.exp(-total / nbytes),
        bits_per_byte=-total / nbytes / math.log(2), loglikelihood=total, words=words, bytes=nbytes,
        documents=len(docs), tokens_scored=scored, dtype=str(dtype).replace("torch.", ""), device=str(device),
        seconds=time.perf_counter() - started,
    )


def stride_windows(ids: Any, proto: PerplexityProtocol, n_positions: int | None) -> list[tuple[Any, int]]:
    """The sliding-window loop of Hugging Face's perplexity guide, as (window, first scored index):

        for begin_loc in range(0, seq_len, stride):
            end_loc = min(begin_loc + max_length, seq_len)
            trg_len = end_loc - prev_end_loc  # may be different from stride on last loop
            ...
            if end_loc == seq_len: break

    A window's first token has no context and is never scored (the labels shift by one).
    """
    stride = proto.size
    window = proto.window or min(n_positions or 0, STRIDE_WINDOW_CAP)
    if not window:
        raise ValueError("the stride protocol needs the model's context length (n_positions) "
                         "or an explicit window: stride-<s>/<window>")
    if n_positions is not None and window > n_positions:
        raise ValueError(f"protocol {proto.id} needs {window} positions; the model has {n_positions}")
    if stride > window:
        raise ValueError(f"stride {stride} is larger than the model context {window}")
    out, prev_end, seq_len = [], 0, ids.numel()
    for begin in range(0, seq_len, stride):
        end = min(begin + window, seq_len)
        first_scored = max(1, prev_end - begin)  # tokens before prev_end were scored already
        if end - begin > first_scored:
            out.append((ids[begin:end], first_scored))
        prev_end = end
        if end == seq_len:
            break
    return out


def _equal_length_batches(windows: list[tuple[Any, int]], batch_size: int) -> list[list[tuple[Any, int]]]:
    """Consecutive windows in batches of at most ``batch_size``, a batch never mixing lengths (the
    stride protocol's last window is shorter)."""
    out: list[list[tuple[Any, int]]] = []
    for w in windows:
        if out and len(out[-1]) < batch_size and out[-1][0][0].numel() == w[0].numel():
            out[-1].append(w)
        else:
            out.append([w])
    return out


def _context_length(model: Any) -> int | None:
    config = getattr(model, "config", None)
    for name in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    return None
