"""How fast is the quality evaluation? Perplexity tokens/s per batch size and dtype, and on GPU the
model-FLOPs utilisation (MFU = 2 · parameters · tokens / seconds / peak FLOP/s).

    python benchmarks/eval_speed.py                                   # embedded model, CPU
    python benchmarks/eval_speed.py --device cuda --shape gpt2-xl --dtype bfloat16 --batches 1,8,32

``--shape gpt2-xl`` builds a randomly initialised GPT-2-XL-shaped model (48 layers, 1600 wide,
~1.56 B parameters): speed does not depend on the weights, and no download is needed. Its MLP
activation is ``gelu_pytorch_tanh`` — the same function as GPT-2's ``gelu_new``, computed by one
fused kernel instead of eight elementwise ones (``--activation gelu_new`` for the original). The
batch-1 row is the naive loop; the others are pytest-llmeff's batched windows. ``--compile`` adds
``torch.compile`` rows. MFU is printed for 16-bit runs only: the peaks are 16-bit tensor-core ones.
"""

from __future__ import annotations

import argparse
import time

# Dense bf16/fp16 tensor-core peaks (no sparsity), TFLOP/s, by device name; the first name found in
# torch's device name wins, so the more specific names come first.
PEAK_TFLOPS = [("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("H200", 989.0),
               ("A100", 312.0), ("L40S", 362.0), ("L40", 181.0), ("L4", 121.0)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--shape", default="embedded", choices=["embedded", "gpt2-xl", "gpt2"])
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--tokens", type=int, default=262144, help="tokens scored per configuration")
    parser.add_argument("--activation", default="gelu_pytorch_tanh", help="MLP activation of --shape models")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--peak-tflops", type=float, default=0.0, help="override the device's peak")
    args = parser.parse_args()

    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from pytest_llmeff.measure.perplexity import perplexity
    from pytest_llmeff.models.loading import load_model, resolve_model

    dtype = getattr(torch, args.dtype)
    if args.shape == "embedded":
        model = load_model(resolve_model("embedded"), args.device, args.dtype).model
    else:
        layers, width, heads = (48, 1600, 25) if args.shape == "gpt2-xl" else (12, 768, 12)
        config = GPT2Config(n_layer=layers, n_embd=width, n_head=heads, n_positions=1024,
                            activation_function=args.activation)
        with torch.device(args.device):
            model = GPT2LMHeadModel(config).to(dtype).eval()
    ctx = model.config.n_positions
    params = sum(p.numel() for p in model.parameters())
    ids = torch.randint(0, model.config.vocab_size, (args.tokens + ctx,), generator=torch.Generator().manual_seed(0))
    peak = args.peak_tflops
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    if not peak and args.device.startswith("cuda") and dtype in (torch.float16, torch.bfloat16):
        peak = next((v for k, v in PEAK_TFLOPS if k in name), 0.0)
    activation = getattr(model.config, "activation_function", "?")
    print(f"{args.shape}: {params / 1e6:.1f} M parameters, {args.dtype}, context {ctx}, {activation}, on {name}"
          + (f", peak {peak:g} TFLOP/s" if peak else ""))
    print(f"{'batch':>6} {'compiled':>9} {'tokens/s':>12} {'MFU':>8}")
    variants = [(False, model)] + ([(True, torch.compile(model))] if args.compile else [])
    for compiled, m in variants:
        for batch in (int(b) for b in args.batches.split(",")):
            stream = ids[: max(batch, args.tokens // ctx) * ctx].tolist()
            perplexity(m, stream[: batch * ctx * 2], f"nonoverlap-{ctx}", batch_size=batch)  # warm-up
            if args.device.startswith("cuda"):
                torch.cuda.synchronize(args.device)
            started = time.perf_counter()
            result = perplexity(m, stream, f"nonoverlap-{ctx}", batch_size=batch)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize(args.device)
            seconds = time.perf_counter() - started
            tokens = result.windows * ctx
            mfu = f"{2 * params * tokens / seconds / (peak * 1e12):.1%}" if peak else "–"
            print(f"{batch:>6} {str(compiled):>9} {tokens / seconds:>12,.0f} {mfu:>8}")


if __name__ == "__main__":
    main()
