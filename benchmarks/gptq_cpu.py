"""Why GPTQ is skipped on a CPU without native bfloat16: what gptqmodel's CPU path costs there.

    python benchmarks/gptq_cpu.py            # the embedded model, 1 thread

Prints the time of one matrix product of the embedded model's shape in float32, bfloat16 and
float16, the CPU's 16-bit instruction flags, then quantises the embedded model with
``gptq4(allow_emulated=true)`` (cached in ~/.cache/pytest-llmeff like the suites' checkpoint) and
times its forward pass over 256 tokens against the base model's, with the share of ``aten::mm``
in it (torch profiler).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path


def _ms(fn, calls: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def main() -> None:
    import torch

    from pytest_llmeff.compress import Candidate, parse_pipeline
    from pytest_llmeff.compress.base import CompressContext
    from pytest_llmeff.compress.basic import NATIVE_16BIT, _cpu_flags
    from pytest_llmeff.models.datasets import load_text_data
    from pytest_llmeff.models.loading import load_model, resolve_model
    from pytest_llmeff.options import DEFAULT_CACHE_DIR

    torch.set_num_threads(1)
    flags = _cpu_flags() or set()
    native = sorted(flags & set().union(*NATIVE_16BIT.values()))
    print(f"16-bit instructions on this CPU: {', '.join(native) or 'none'}")
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        a, b = torch.randn(256, 192, dtype=dtype), torch.randn(192, 576, dtype=dtype)
        ms = _ms(lambda a=a, b=b: a @ b, 20)
        print(f"matmul 256×192 · 192×576 {str(dtype).removeprefix('torch.'):9} {ms:7.2f} ms")

    base = load_model(resolve_model("embedded"), "cpu", "float32")
    text = load_text_data("embedded")
    with tempfile.TemporaryDirectory() as work:
        ctx = CompressContext(base=base, text=lambda: text, workdir=Path(work), cache_dir=DEFAULT_CACHE_DIR,
                              seed=0, progress=print)
        started = time.perf_counter()
        quantised = parse_pipeline("gptq4(allow_emulated=true)").apply(Candidate(base.model), ctx)
        print(f"gptq4: ready in {time.perf_counter() - started:.0f} s ({'; '.join(quantised.notes)})")
        ids = torch.randint(0, base.model.config.vocab_size, (1, 256))
        with torch.inference_mode():
            for name, model in (("base", base.model), ("gptq4", quantised.model)):
                print(f"forward 1×256 {name:6} {_ms(lambda m=model: m(input_ids=ids, use_cache=False), 10):8.1f} ms")
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CPU]) as prof:
                quantised.model(input_ids=ids, use_cache=False)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    mm = sum(e.self_cpu_time_total for e in events if e.key == "aten::mm")
    print(f"gptq4 forward: aten::mm {mm / total:.1%} of the CPU time")


if __name__ == "__main__":
    main()
