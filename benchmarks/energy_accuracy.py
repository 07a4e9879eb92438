"""Can the energy figures be trusted? Three checks on the run's device, printed as one table.

    python benchmarks/energy_accuracy.py                 # CPU: repeatability and overhead only
    python benchmarks/energy_accuracy.py --device cuda   # GPU: all three

1. Agreement (GPU): over one window, the plugin's GPU energy against an independent pair of
   ``nvmlDeviceGetTotalEnergyConsumption`` reads taken around the same window (goal: within 2 %).
2. Repeatability: the coefficient of variation of per-call energy over ``--repeats`` windows of the
   same case (goal: ≤ 3 %).
3. Overhead: median per-call time of the instrumented measurement (pytest-llmeff's plan, meter
   running) against a bare loop timed with CUDA events on GPU or perf_counter on CPU (goal: ≤ 1 %).
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-seconds", type=float, default=3.0)
    args = parser.parse_args()

    import torch

    from pytest_llmeff.measure import latency
    from pytest_llmeff.measure.energy import NvmlMeter, build_meter
    from pytest_llmeff.measure.stats import summarize
    from pytest_llmeff.measure.workloads import Forward
    from pytest_llmeff.models.datasets import load_text_data
    from pytest_llmeff.models.loading import load_model, resolve_model

    dtype = "bfloat16" if args.device.startswith("cuda") else "float32"
    base = load_model(resolve_model(args.model), args.device, dtype)
    ids = base.tokenizer(load_text_data("embedded").eval_text)["input_ids"]
    job = Forward(batch=args.batch).build(base.model, ids, args.device, base.context_length)
    meter = build_meter(args.device)
    print(f"model {args.model} ({base.parameters:,} parameters, {dtype}) on {args.device}; meter: {meter.description}")
    plan = latency.plan(job.call, min_window_s=max(args.min_seconds, meter.min_window_s))

    # 1 + 2: repeated windows, each with an independent NVML read around it on GPU.
    per_call, agreement = [], []
    independent = NvmlMeter([0]) if args.device.startswith("cuda") else None
    for _ in range(args.repeats):
        if independent is not None:
            independent.start()
        with meter.measure() as window:
            timing = latency.run_plain(job.call, plan)
        if independent is not None:
            outside = independent.stop()["gpu"]
            inside = window.reading.components["gpu"].joules
            agreement.append(abs(inside - outside) / outside)
        per_call.append(window.reading.joules / timing.calls_made)
    energy = summarize(per_call)

    # 3: overhead of the instrumented path against a bare loop.
    instrumented = []
    for _ in range(3):
        with meter.measure():
            instrumented.append(latency.run_plain(job.call, plan).median_s)
    bare = []
    for _ in range(3):
        if args.device.startswith("cuda"):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            samples = []
            for _ in range(plan.rounds):
                start.record()
                for _ in range(plan.iterations):
                    job.call()
                end.record()
                torch.cuda.synchronize()
                samples.append(start.elapsed_time(end) / 1000 / plan.iterations)
        else:
            samples = []
            for _ in range(plan.rounds):
                t0 = time.perf_counter()
                for _ in range(plan.iterations):
                    job.call()
                samples.append((time.perf_counter() - t0) / plan.iterations)
        bare.append(statistics.median(samples))
    overhead = statistics.median(instrumented) / statistics.median(bare) - 1

    print(f"plan: {plan.rounds} rounds × {plan.iterations} calls per window, {args.repeats} windows")
    print(f"{'check':<44}{'value':>14}  goal")
    if agreement:
        print(f"{'GPU energy vs independent NVML read':<44}{max(agreement):>13.2%}  ≤ 2 % (worst window)")
    else:
        print(f"{'GPU energy vs independent NVML read':<44}{'n/a (no GPU)':>14}")
    print(f"{'energy per call, CV over windows':<44}{energy.cv:>13.2%}  ≤ 3 %  "
          f"(median {energy.median:.4g} J, {'estimated' if window.reading.estimated else 'measured'})")
    print(f"{'instrumented vs bare latency':<44}{overhead:>+13.2%}  ≤ 1 %")
    meter.close()


if __name__ == "__main__":
    main()
