"""Can the energy figures be trusted? Three checks on the run's device, printed as one table.

    python benchmarks/energy_accuracy.py                 # CPU: repeatability and overhead only
    python benchmarks/energy_accuracy.py --device cuda   # GPU: all three (cuda:N for another card)

1. Agreement (GPU): over each window, the plugin's GPU energy against independent reads of
   ``nvmlDeviceGetTotalEnergyConsumption`` taken by this script around the same window, with its
   own NVML handle (goal: within 2 %). For a second, differently obtained figure it also integrates
   ``nvmlDeviceGetPowerUsage`` sampled every 10 ms over the window (informational: on Ampere and
   newer that reading is itself a 1 s average, so it lags).
2. Repeatability: the coefficient of variation of per-call energy over ``--repeats`` windows of the
   same case (goal: ≤ 3 %).
3. Overhead: median per-call time of the instrumented measurement (pytest-llmeff's plan, meter
   running) against a bare loop timed with CUDA events on GPU or perf_counter on CPU (goal: ≤ 1 %).
   The two are interleaved, so the machine's drift over the run falls on both alike.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from typing import Any


class PowerIntegral:
    """Integrates NVML power samples (milliwatts) taken every ``period_s`` in a thread."""

    def __init__(self, pynvml: Any, handle: Any, period_s: float = 0.01) -> None:
        self.pynvml, self.handle, self.period_s = pynvml, handle, period_s
        self.joules = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last_t, last_w = time.perf_counter(), self.pynvml.nvmlDeviceGetPowerUsage(self.handle) / 1000
        while not self._stop.is_set():
            time.sleep(self.period_s)
            t, w = time.perf_counter(), self.pynvml.nvmlDeviceGetPowerUsage(self.handle) / 1000
            self.joules += (t - last_t) * (w + last_w) / 2  # trapezoid rule
            last_t, last_w = t, w

    def __enter__(self) -> PowerIntegral:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _nvml_handle(index: int) -> tuple[Any, Any]:
    """This script's own NVML handle for torch's cuda:<index>, matched by UUID (not the plugin's code)."""
    import pynvml
    import torch

    pynvml.nvmlInit()
    uuid = str(torch.cuda.get_device_properties(index).uuid)
    return pynvml, pynvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")


def _bare_median(job: Any, plan: Any, on_gpu: bool) -> float:
    import torch

    samples = []
    for _ in range(plan.rounds):
        if on_gpu:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(plan.iterations):
                job.call()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end) / 1000 / plan.iterations)
        else:
            t0 = time.perf_counter()
            for _ in range(plan.iterations):
                job.call()
            samples.append((time.perf_counter() - t0) / plan.iterations)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-seconds", type=float, default=3.0)
    args = parser.parse_args()

    import torch

    from pytest_llmeff.devices import resolve_device
    from pytest_llmeff.measure import latency
    from pytest_llmeff.measure.energy import build_meter
    from pytest_llmeff.measure.stats import summarize
    from pytest_llmeff.measure.workloads import Forward
    from pytest_llmeff.models.datasets import load_text_data
    from pytest_llmeff.models.loading import load_model, resolve_model

    device, _ = resolve_device(args.device)  # on CUDA this also makes the card the current device
    on_gpu = device.startswith("cuda")
    index = int(device.split(":")[1]) if on_gpu else 0
    dtype = "bfloat16" if on_gpu else "float32"
    base = load_model(resolve_model(args.model), device, dtype)
    ids = base.tokenizer(load_text_data("embedded").eval_text)["input_ids"]
    job = Forward(batch=args.batch).build(base.model, ids, device, base.context_length)
    meter = build_meter(device, gpu_indices=[index])
    print(f"model {args.model} ({base.parameters:,} parameters, {dtype}) on {device}; meter: {meter.description}")
    plan = latency.plan(job.call, min_window_s=max(args.min_seconds, meter.min_window_s))

    # 1 + 2: repeated windows, each with independent NVML reads around it on GPU.
    per_call, agreement, integral_gap, errors = [], [], [], []
    nvml, handle = _nvml_handle(index) if on_gpu else (None, None)
    estimated = False
    for _ in range(args.repeats):
        if on_gpu:
            torch.cuda.synchronize(device)
            before = nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            with PowerIntegral(nvml, handle) as power, meter.measure() as window:
                timing = latency.run_plain(job.call, plan)
            after = nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        else:
            with meter.measure() as window:
                timing = latency.run_plain(job.call, plan)
        if window.reading is None:
            errors.append(window.error or "no reading")
            continue
        estimated = window.reading.estimated
        if on_gpu:
            inside = window.reading.components["gpu"].joules
            outside = (after - before) / 1000
            agreement.append(abs(inside - outside) / outside)
            integral_gap.append(abs(inside - power.joules) / power.joules)
        per_call.append(window.reading.joules / timing.calls_made)
    if len(per_call) < 2:
        raise SystemExit(f"fewer than two energy windows could be read: {errors}")
    energy = summarize(per_call)

    # 3: overhead of the instrumented path against a bare loop, interleaved.
    instrumented, bare = [], []
    for _ in range(3):
        with meter.measure():
            instrumented.append(latency.run_plain(job.call, plan).median_s)
        bare.append(_bare_median(job, plan, on_gpu))
    overhead = statistics.median(instrumented) / statistics.median(bare) - 1

    print(f"plan: {plan.rounds} rounds × {plan.iterations} calls per window, {args.repeats} windows"
          + (f"; unreadable windows: {errors}" if errors else ""))
    print(f"{'check':<46}{'value':>14}  goal")
    if agreement:
        print(f"{'GPU energy vs independent NVML counter reads':<46}{max(agreement):>13.2%}  ≤ 2 % (worst window)")
        print(f"{'GPU energy vs integrated NVML power samples':<46}{max(integral_gap):>13.2%}  "
              "(informational; power reading is a 1 s average)")
    else:
        print(f"{'GPU energy vs independent NVML counter reads':<46}{'n/a (no GPU)':>14}")
    print(f"{'energy per call, CV over windows':<46}{energy.cv:>13.2%}  ≤ 3 %  "
          f"(median {energy.median:.4g} J, {'estimated' if estimated else 'measured'})")
    print(f"{'instrumented vs bare latency':<46}{overhead:>+13.2%}  ≤ 1 %")
    meter.close()


if __name__ == "__main__":
    main()
