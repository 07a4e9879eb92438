"""The pruning scores of a model, as the head- and layer-pruning steps compute them.

    python benchmarks/pruning_scores.py                      # the embedded model, 16 calibration windows
    python benchmarks/pruning_scores.py --model gpt2 --samples 8

Prints the per-layer maximum head score (the largest share of a head's attention one token
receives), how many heads AH90, AH80 and ah(0.3) remove, and the angular distance between the
inputs of layers ℓ and ℓ + n at the last token (and, for comparison, averaged over all tokens),
with the block each n would remove. Also the stride-128 perplexity of the evaluation text.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--dataset", default="embedded")
    parser.add_argument("--samples", type=int, default=16, help="calibration windows (the compressors' default)")
    args = parser.parse_args()

    import torch

    from pytest_llmeff.compress.base import CompressContext
    from pytest_llmeff.compress.calibration import calibration_windows
    from pytest_llmeff.compress.heads import head_scores, received_attention
    from pytest_llmeff.compress.layers import distance_matrix
    from pytest_llmeff.compress.maps import PruningMaps, removed_by, summary
    from pytest_llmeff.measure.perplexity import perplexity
    from pytest_llmeff.models.datasets import load_text_data
    from pytest_llmeff.models.loading import load_model, resolve_model

    torch.set_num_threads(1)
    base = load_model(resolve_model(args.model), "cpu", "float32")
    text = load_text_data(args.dataset)
    ctx = CompressContext(base=base, text=lambda: text, workdir=Path(tempfile.gettempdir()),
                          cache_dir=Path(tempfile.gettempdir()))
    windows = calibration_windows(ctx, args.samples)
    scores = head_scores(received_attention(base.model, windows))
    maps = PruningMaps([s.tolist() for s in scores], "head", distance_matrix(base.model, windows),
                       int(windows.shape[0]), int(windows.shape[1]), thresholds=(0.9, 0.8, 0.3))
    for line in summary(maps):
        print(line)
    print("heads removed:", {t: removed_by(maps, t) for t in maps.thresholds})
    for n, row in enumerate(distance_matrix(base.model, windows, position="all"), start=1):
        print(f"all-token average n={n}: " + ", ".join(f"{d:.3f}" for d in row)
              + f" (min at ℓ={min(range(len(row)), key=row.__getitem__)})")
    ids = base.tokenizer(text.eval_text)["input_ids"]
    result = perplexity(base.model, ids, "stride-128")
    print(f"stride-128 perplexity {result.value:.4f} over {result.tokens_scored} tokens "
          f"({len(ids)} in the text), window {result.window}")


if __name__ == "__main__":
    main()
