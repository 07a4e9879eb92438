"""What CodeCarbon's estimate is made of on this machine: watts per component over each window.

    python benchmarks/energy_watts.py [--windows 16] [--window-s 0.13]

Times the embedded model's ``forward-1x256`` on one thread inside ``CodeCarbonMeter`` windows
(the meter the plugin uses) and prints, per window, wall seconds per call, process CPU time over
wall time, and each component's energy divided by the window's wall seconds. Where those watts are
constant (no RAPL: CPU = CodeCarbon's watts per busy thread × load, RAM = its DIMM model), energy
is wall time times a constant, and its ratios between cases say no more than the windows' timing
(docs/BENCHMARKS.md, "A second machine of the same kind").
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=16)
    parser.add_argument("--window-s", type=float, default=0.13, help="target seconds per window")
    args = parser.parse_args()

    import torch

    from pytest_llmeff.measure.meters import CodeCarbonMeter
    from pytest_llmeff.models.loading import load_model, resolve_model

    torch.set_num_threads(1)
    model = load_model(resolve_model("embedded"), "cpu", "float32").model
    x = torch.randint(0, model.config.vocab_size, (1, 256))
    with torch.inference_mode():
        for _ in range(10):
            model(x)
        t0 = time.perf_counter()
        for _ in range(10):
            model(x)
        calls = max(1, round(args.window_s / ((time.perf_counter() - t0) / 10)))
        meter = CodeCarbonMeter()
        watts: dict[str, list[float]] = {"cpu": [], "ram": []}
        for _ in range(args.windows):
            meter.start()
            t0, cpu0 = time.perf_counter(), time.process_time()
            for _ in range(calls):
                model(x)
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            joules = meter.stop()
            for k in watts:
                watts[k].append(joules[k] / wall)
            print(f"{calls} calls  {wall / calls * 1e3:6.1f} ms/call  cpu/wall {cpu / wall:.2f}  "
                  f"cpu {joules['cpu'] / wall:5.2f} W  ram {joules['ram'] / wall:5.2f} W")
        meter.close()
    for k, w in watts.items():
        print(f"{k}: {statistics.median(w):.2f} W median, {min(w):.2f} … {max(w):.2f} W")


if __name__ == "__main__":
    main()
