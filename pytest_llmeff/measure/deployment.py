"""Deployment replay: prompts arriving on a fixed, pre-drawn schedule, idle time included.

Serving energy is not inference energy: between requests the machine idles, and accelerators draw a
large share of their power doing nothing. The replay draws arrival times once (exponential gaps,
mean ``gap`` seconds, seeded — identical for every model), answers each prompt greedily with
``new_tokens`` tokens when it arrives (or as soon as the previous answer is done), and measures
energy over the whole ``period``, so the energy per prompt includes the idle time between prompts.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass
from typing import Any

from pytest_llmeff.details import EnergyDetail, TimeDetail
from pytest_llmeff.records import Measurement


@dataclass(frozen=True)
class Deployment:
    """``deployment(period=30, gap=6, new_tokens=32, prompt=32)``: the replay workload."""

    period: float = 30.0
    gap: float = 6.0
    new_tokens: int = 32
    prompt: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        from pytest_llmeff.measure.workloads import WorkloadError

        if not (self.period > 0 and self.gap > 0 and self.new_tokens >= 1 and self.prompt >= 1):
            raise WorkloadError("deployment needs period > 0, gap > 0, new_tokens ≥ 1 and prompt ≥ 1")

    def id(self, context_length: int) -> str:
        return f"deployment-{self.period:g}s-gap{self.gap:g}-{self.prompt}+{self.new_tokens}"

    def schedule(self) -> list[float]:
        """Arrival times in [0, period): the first at 0, then exponential gaps (seeded)."""
        rng, t, times = random.Random(self.seed), 0.0, []
        while t < self.period:
            times.append(t)
            t += rng.expovariate(1 / self.gap)
        return times

    def prompts(self, eval_ids: list[int], n: int) -> list[list[int]]:
        chunks = max(1, len(eval_ids) // self.prompt)
        return [eval_ids[(i % chunks) * self.prompt:(i % chunks + 1) * self.prompt] for i in range(n)]


def replay(model: Any, workload: Deployment, eval_ids: list[int], device: str) -> dict[str, Any]:
    """Serve the schedule in real time; returns per-prompt latencies, lateness and busy seconds."""
    import torch

    from pytest_llmeff.measure.workloads import _sync

    arrivals = workload.schedule()
    prompts = workload.prompts(eval_ids, len(arrivals))
    sync, pad = _sync(device), getattr(model.config, "eos_token_id", None)
    latencies, late, busy = [], [], 0.0
    start = time.perf_counter()
    for arrival, ids in zip(arrivals, prompts, strict=True):
        wait = arrival - (time.perf_counter() - start)
        if wait > 0:
            time.sleep(wait)
        late.append(max(0.0, -wait))
        x = torch.tensor([ids], device=device)
        t0 = time.perf_counter()
        with torch.inference_mode():
            model.generate(input_ids=x, attention_mask=torch.ones_like(x), do_sample=False, pad_token_id=pad,
                           max_new_tokens=workload.new_tokens, min_new_tokens=workload.new_tokens)
        sync()
        latencies.append(time.perf_counter() - t0)
        busy += latencies[-1]
    remaining = workload.period - (time.perf_counter() - start)
    if remaining > 0:
        time.sleep(remaining)  # the period is fixed: idle time after the last prompt counts too
    return {"latencies": latencies, "late": late, "busy_s": busy, "seconds": time.perf_counter() - start}


def measure_deployment(model: Any, workload: Deployment, eval_ids: list[int], context_length: int,
                       device: str, meter: Any, benchmark: Any = None) -> tuple[dict[str, Measurement], list[str]]:
    """Time and energy of one replayed period (see the module docstring)."""
    result: dict[str, Any] = {}

    def run() -> None:
        result.update(replay(model, workload, eval_ids, device))

    with meter.measure() as window:
        if benchmark is not None:
            benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
        else:
            run()
    if not result:  # pytest-benchmark disabled and did not call it
        with meter.measure() as window:
            run()
    n = len(result["latencies"])
    wid = workload.id(context_length)
    values = {
        "time": Measurement(statistics.median(result["latencies"]), "s", "perf_counter wall clock", detail=TimeDetail(
            workload=wid, statistic="median latency per prompt", device=device,
            extra={"prompts": n, "busy_fraction": round(result["busy_s"] / result["seconds"], 4),
                   "max_late_s": round(max(result["late"]), 3)})),
    }
    notes = []
    if window.reading is None:
        notes.append(f"energy not measured: {window.error}")
    else:
        r = window.reading
        values["energy"] = Measurement(r.joules / n, "J", r.method, r.estimated, detail=EnergyDetail(
            statistic="period total / prompts (idle time included)", windows=1, calls=n,
            window_s=round(r.seconds, 3)))
        for comp, part in r.components.items():
            values[f"energy.{comp}"] = Measurement(part.joules / n, "J", part.method, part.estimated)
        values["energy_per_token"] = Measurement(r.joules / n / workload.new_tokens, "J",
                                                 "energy per prompt / new tokens", r.estimated)
    return values, notes
