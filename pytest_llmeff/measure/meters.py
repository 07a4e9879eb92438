"""The energy backends: NVML's GPU energy counter, RAPL, CodeCarbon's estimate, and the process-time
estimate of last resort (see :mod:`pytest_llmeff.measure.energy` for how they are chosen)."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from pytest_llmeff.measure.energy_base import (
    RAM_W_PER_DIMM,
    RAPL_ROOT,
    EnergyInconclusive,
    MeterUnavailable,
    counter_delta,
)


# --------------------------------------------------------------------------- NVML (GPU, measured)
class NvmlMeter:
    """GPU energy from NVML's total-energy counter, read at counter updates.

    The counter moves in steps (about every 100 ms): a plain read at the window's start counts
    energy from before it, and one at the end misses the last step's, up to ±8 % of a 1.25 s window
    at full power. So ``start`` waits for the counter's next step and the window begins right after
    it, and ``stop`` (after the GPU's queued work has finished) waits for the step that covers the
    window's end: the error left is idle power over part of one step, counted in.
    """

    components = ("gpu",)
    method = "nvml-counter"
    estimated = False
    min_window_s = 1.0  # the counter updates about every 100 ms: ≥ 10 updates per window
    step_wait_s = 0.5  # longest wait for a counter step (a counter that never steps: no alignment)

    def __init__(self, indices: list[int]) -> None:
        """``indices``: torch's CUDA device numbers (``cuda:<i>``), matched to NVML devices by UUID."""
        try:
            import pynvml

            from pytest_llmeff.devices import nvml_handle

            pynvml.nvmlInit()
            self._nvml = pynvml
            self._indices = indices
            self._handles = [nvml_handle(i) for i in indices]
            for h in self._handles:
                pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
        except Exception as exc:  # ImportError, NVMLError_*: all mean "no counter here"
            raise MeterUnavailable(f"NVML total-energy counter unavailable: {exc}") from None
        self._start: list[int] = []

    def read_mj(self) -> list[int]:
        try:
            return [self._nvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self._handles]
        except self._nvml.NVMLError as exc:  # e.g. the GPU fell off the bus: no figure, not a crash
            raise EnergyInconclusive(f"NVML energy read failed: {exc}") from None

    def _next_step(self) -> list[int]:
        """The counters just after the first of them moves (or after ``step_wait_s``)."""
        first = self.read_mj()
        deadline = time.perf_counter() + self.step_wait_s
        while time.perf_counter() < deadline:
            now = self.read_mj()
            if now != first:
                return now
            time.sleep(0.0005)
        return first

    def _synchronize(self) -> None:
        import torch

        for i in self._indices:
            torch.cuda.synchronize(i)  # queued kernels belong inside the window

    def start(self) -> None:
        self._synchronize()
        self._start = self._next_step()

    def stop(self) -> dict[str, float]:
        self._synchronize()
        end = self._next_step()
        # The counter is an unsigned 64-bit number of millijoules.
        joules = sum(counter_delta(a, b, 2 ** 64) for a, b in zip(self._start, end, strict=True)) / 1000
        return {"gpu": joules}


# --------------------------------------------------------------------------- RAPL (CPU/DRAM, measured)
@dataclass(frozen=True)
class RaplDomain:
    path: Path
    component: str  # "cpu" for a package, "ram" for dram
    max_range_uj: float

    def read_uj(self) -> float:
        return float((self.path / "energy_uj").read_text())


def rapl_domains(root: Path = RAPL_ROOT) -> list[RaplDomain]:
    """Readable RAPL package and DRAM domains (top-level packages and their ``dram`` children)."""
    domains = []
    # Zones are intel-rapl:<pkg> and their sub-zones intel-rapl:<pkg>:<n> (AMD CPUs use the same names).
    for zone in sorted(root.glob("intel-rapl:*"), key=lambda p: (p.name.count(":"), p.name)):
        try:
            name = (zone / "name").read_text().strip()
            max_range = float((zone / "max_energy_range_uj").read_text())
            float((zone / "energy_uj").read_text())
        except (OSError, ValueError):
            continue
        if name.startswith("package"):
            domains.append(RaplDomain(zone, "cpu", max_range))
        elif name == "dram":
            domains.append(RaplDomain(zone, "ram", max_range))
    return domains


class RaplMeter:
    method = "rapl"
    estimated = False
    min_window_s = 0.1

    def __init__(self, root: Path = RAPL_ROOT) -> None:
        self.domains = rapl_domains(root)
        if not self.domains:
            raise MeterUnavailable(f"no readable RAPL counters under {root}")
        self.components = tuple(sorted({d.component for d in self.domains}))
        self._start: list[float] = []

    def start(self) -> None:
        self._start = [d.read_uj() for d in self.domains]

    def stop(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for domain, start in zip(self.domains, self._start, strict=True):
            delta = counter_delta(start, domain.read_uj(), domain.max_range_uj) / 1e6
            out[domain.component] = out.get(domain.component, 0.0) + delta
        return out


# --------------------------------------------------------------------------- CodeCarbon (estimates)
class CodeCarbonMeter:
    method = "codecarbon-estimate"
    estimated = True
    min_window_s = 0.5

    def __init__(self, components: tuple[str, ...] = ("cpu", "ram"), ram_dimms: int | None = None) -> None:
        try:
            from codecarbon import OfflineEmissionsTracker
        except ImportError as exc:
            raise MeterUnavailable(f"codecarbon is not installed ({exc})") from None
        self.components = components
        extra = {}
        if ram_dimms:
            # CodeCarbon guesses the DIMM count from the memory size (5 W per x86 DIMM); a known
            # count replaces the guess (the GPTQ energy study scaled RAM ×7 for 16-DIMM nodes).
            extra["force_ram_power"] = RAM_W_PER_DIMM * ram_dimms
            self.method = f"codecarbon-estimate (RAM: {ram_dimms} DIMMs × {RAM_W_PER_DIMM:g} W)"
        # Offline mode needs a country for its carbon figure; llmeff takes only the energy from
        # CodeCarbon and computes carbon itself, so this choice does not reach any result.
        self._tracker = OfflineEmissionsTracker(
            country_iso_code="USA", measure_power_secs=1, output_methods=[], log_level="error",
            tracking_mode="process", allow_multiple_runs=True, gpu_ids=[], **extra,
        )
        self._tracker.start_task("llmeff-warmup")  # hardware detection takes ~1 s: not in a window
        self._tracker.stop_task()

    def start(self) -> None:
        self._tracker.start_task("llmeff")

    def stop(self) -> dict[str, float]:
        data = self._tracker.stop_task()
        kwh = {"cpu": data.cpu_energy, "ram": data.ram_energy, "gpu": data.gpu_energy}
        return {c: float(kwh[c]) * 3.6e6 for c in self.components}

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._tracker.stop()


# --------------------------------------------------------------------------- last resort (estimate)
class EstimateMeter:
    """Process CPU time × watts per busy core, and installed memory × watts per GiB.

    The documented last resort when neither counters nor CodeCarbon are available. The constants
    are CodeCarbon's defaults: 4 W per busy thread for a CPU it does not know, and 3 W per 8 GB
    of DDR memory (its older RAM model), i.e. 0.375 W per GiB.
    """

    method = "process-time-estimate"
    estimated = True
    min_window_s = 0.5
    W_PER_BUSY_CORE = 4.0
    W_PER_GIB = 0.375

    def __init__(self, components: tuple[str, ...] = ("cpu", "ram")) -> None:
        self.components = components
        self._ram_w = self.W_PER_GIB * _installed_gib()
        self._start = (0.0, 0.0)

    @staticmethod
    def _cpu_seconds() -> float:
        t = os.times()
        return t.user + t.system

    def start(self) -> None:
        self._start = (self._cpu_seconds(), time.perf_counter())

    def stop(self) -> dict[str, float]:
        cpu_s, wall = self._cpu_seconds() - self._start[0], time.perf_counter() - self._start[1]
        out = {"cpu": cpu_s * self.W_PER_BUSY_CORE, "ram": wall * self._ram_w}
        return {c: out[c] for c in self.components}


def _installed_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8.0
