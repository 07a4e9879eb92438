"""Write a randomly initialised GPT-2-shaped model folder (safetensors + the embedded tokenizer).

    python benchmarks/make_model.py --shape gpt2 --out /tmp/gpt2-shaped
    pytest --llmeff --llmeff-device cuda --llmeff-model=/tmp/gpt2-shaped --llmeff-dtype float16

For latency, memory and energy on a real model size where no hub is reachable: speed does not
depend on the weights. Its perplexity is meaningless (random weights ≈ vocabulary size), so quality
budgets do not apply; the tokenizer is the embedded 4,096-token one, the vocabulary resized to it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

SHAPES = {"gpt2": (12, 768, 12), "gpt2-medium": (24, 1024, 16), "gpt2-large": (36, 1280, 20),
          "gpt2-xl": (48, 1600, 25)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="gpt2")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from pytest_llmeff.models.embedded import REFERENCE_DIR

    torch.manual_seed(args.seed)
    layers, width, heads = SHAPES[args.shape]
    tokenizer = AutoTokenizer.from_pretrained(REFERENCE_DIR)
    config = GPT2Config(n_layer=layers, n_embd=width, n_head=heads, n_positions=1024,
                        vocab_size=len(tokenizer), bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel(config)
    tokenizer.model_max_length = config.n_positions  # the embedded tokenizer says 256
    model.save_pretrained(args.out, safe_serialization=True)
    tokenizer.save_pretrained(args.out)
    print(f"{args.out}: {args.shape}-shaped, {sum(p.numel() for p in model.parameters()) / 1e6:.0f} M parameters")


if __name__ == "__main__":
    main()
