"""Thread count against timing noise: a candidate and the base model called in turn, in one process.

    python benchmarks/thread_probe.py --threads 1 --compressor int8
    python benchmarks/thread_probe.py --threads 2 --compressor int8   # compare; add a busy core beside:
    python -c "while True: pass" & python benchmarks/thread_probe.py --threads 2; kill %1

Prints the base model's median call, the candidate / base ratio of medians, the median of the
per-pair ratios, and each side's per-call CV (docs/BENCHMARKS.md, "Threads").
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compressor", default="int8")
    parser.add_argument("--pairs", type=int, default=60)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from pytest_llmeff.compress import Candidate, parse_pipeline
    from pytest_llmeff.compress.base import CompressContext
    from pytest_llmeff.measure.workloads import parse_workload
    from pytest_llmeff.models.datasets import load_text_data
    from pytest_llmeff.models.loading import load_model, resolve_model
    from pytest_llmeff.options import DEFAULT_CACHE_DIR

    base = load_model(resolve_model("embedded"), "cpu", "float32")
    text = load_text_data("embedded")
    ids = list(base.tokenizer(text.eval_text)["input_ids"])
    ctx = CompressContext(base=base, text=lambda: text, workdir=Path(tempfile.mkdtemp()),
                          cache_dir=DEFAULT_CACHE_DIR, seed=0, progress=lambda m: None)
    cand = parse_pipeline(args.compressor).apply(Candidate(base.model), ctx, {})
    workload = parse_workload("forward")
    a = workload.build(cand.model, ids, "cpu", base.context_length).call
    b = workload.build(base.model, ids, "cpu", base.context_length).call

    def timed(fn) -> float:
        started = time.perf_counter()
        fn()
        return time.perf_counter() - started

    for _ in range(10):
        a(), b()
    cand_s, base_s = [], []
    for _ in range(args.pairs):
        cand_s.append(timed(a))
        base_s.append(timed(b))
    cv = lambda v: statistics.stdev(v) / statistics.fmean(v)  # noqa: E731
    print(f"threads={args.threads} {args.compressor}: base {statistics.median(base_s) * 1e3:.2f} ms, "
          f"ratio of medians {statistics.median(cand_s) / statistics.median(base_s):.4f}, "
          f"median pair ratio {statistics.median(x / y for x, y in zip(cand_s, base_s, strict=True)):.4f}, "
          f"CV {cv(cand_s):.3f} / {cv(base_s):.3f}")


if __name__ == "__main__":
    main()
