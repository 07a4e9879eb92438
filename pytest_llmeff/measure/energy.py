"""Energy meters behind one interface; every figure says how it was obtained.

Backends, chosen per component (CPU, GPU, RAM) in this order:
- ``nvml-counter`` (GPU, measured): ``nvmlDeviceGetTotalEnergyConsumption``, millijoules since the
  driver loaded, updated about every 100 ms — windows are aligned to its steps, and windows
  shorter than ~1 s are inconclusive.
- ``rapl`` (CPU package / DRAM, measured): ``/sys/class/powercap/intel-rapl*/energy_uj``; the counter
  wraps at ``max_energy_range_uj``, which :func:`counter_delta` handles.
- ``codecarbon-estimate`` (CPU / RAM, estimated): CodeCarbon's offline tracker in process mode.
  Without RAPL it models CPU power as TDP × this process's load (a default 4 W per thread when it
  does not know the CPU) and RAM power from installed memory.
- ``process-time-estimate`` (CPU / RAM, estimated): the last resort without CodeCarbon — this
  process's CPU seconds × 4 W, and installed memory × 0.375 W/GiB (CodeCarbon's own defaults).

A window in which a counter does not move is reported as inconclusive, never as 0 J.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

COMPONENTS = ("cpu", "gpu", "ram")
BACKENDS = ("nvml", "rapl", "codecarbon", "estimate")  # the order ``auto`` tries them in
RAM_W_PER_DIMM = 5.0  # CodeCarbon's figure for an x86 DIMM
RAPL_ROOT = Path("/sys/class/powercap")


class MeterUnavailable(RuntimeError):
    """A requested meter cannot run here; the message is the skip reason."""


class EnergyInconclusive(RuntimeError):
    """A window too short (or a counter that did not move): no figure rather than a wrong one."""


@dataclass(frozen=True)
class ComponentEnergy:
    """Joules one component used in a window, and how that was obtained."""

    component: str
    joules: float
    method: str
    estimated: bool


@dataclass(frozen=True)
class EnergyReading:
    """One measured window: per-component energy and the window's wall-clock length."""

    components: dict[str, ComponentEnergy]
    seconds: float

    @property
    def joules(self) -> float:
        return sum(c.joules for c in self.components.values())

    @property
    def estimated(self) -> bool:
        return any(c.estimated for c in self.components.values())

    @property
    def method(self) -> str:
        """``cpu+ram: codecarbon-estimate; gpu: nvml-counter`` — grouped by method."""
        by_method: dict[str, list[str]] = {}
        for c in self.components.values():
            by_method.setdefault(c.method, []).append(c.component)
        return "; ".join(f"{'+'.join(parts)}: {m}" for m, parts in by_method.items())


def counter_delta(start: float, end: float, max_range: float | None) -> float:
    """The increase of a counter that wraps to 0 after ``max_range`` (one wrap at most per window)."""
    if end >= start:
        return end - start
    if max_range is None:
        raise EnergyInconclusive(f"energy counter went backwards ({start} → {end}) and has no known range")
    return (max_range - start) + end


class Meter(Protocol):
    """One backend: it measures some components between ``start`` and ``stop``."""

    components: tuple[str, ...]
    method: str
    estimated: bool
    min_window_s: float

    def start(self) -> None: ...

    def stop(self) -> dict[str, float]:
        """Joules per component since ``start``."""
        ...


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


# --------------------------------------------------------------------------- the composite meter
@dataclass
class EnergyWindow:
    """Filled in when the ``with meter.measure()`` block ends."""

    reading: EnergyReading | None = None
    error: str | None = None


@dataclass
class EnergyMeter:
    """All backends that cover this machine's components; one window measures them together."""

    meters: list[Any]
    unavailable: dict[str, str] = field(default_factory=dict)  # backend -> why it is not used
    _idle: dict[str, float] | None = None

    def idle_power(self, seconds: float = 0.0, settle_s: float = 0.0) -> dict[str, float]:
        """Watts per component while this process sleeps (measured once, then reused): the static
        share of every window's energy. Inconclusive readings count as 0 W for that component.

        Measured after ``settle_s`` of sleep: a GPU keeps its clocks (and power) up for a moment
        after work, which would count as idle power and shrink the active share.
        """
        if self._idle is None:
            time.sleep(settle_s)
            # An idle process legitimately has a zero CPU *estimate*; counters must still move.
            with self.measure(idle=True) as window:
                time.sleep(max(seconds, self.min_window_s))
            if window.reading is None:
                self._idle = {}
            else:
                self._idle = {c: e.joules / window.reading.seconds for c, e in window.reading.components.items()}
        return self._idle

    @property
    def min_window_s(self) -> float:
        return max((m.min_window_s for m in self.meters), default=0.0)

    @property
    def description(self) -> str:
        parts = [f"{'+'.join(m.components)}: {m.method}" for m in self.meters]
        parts += [f"{name} not used: {why}" for name, why in self.unavailable.items()]
        return "; ".join(parts) or "no energy meter"

    @contextlib.contextmanager
    def measure(self, idle: bool = False) -> Iterator[EnergyWindow]:
        """Measure the block. Inconclusive windows set ``error`` instead of a zero reading."""
        window = EnergyWindow()
        if not self.meters:
            window.error = "no energy meter is available"
            yield window
            return
        try:
            for m in self.meters:
                m.start()
        except EnergyInconclusive as exc:
            window.error = str(exc)
            yield window
            return
        started = time.perf_counter()
        try:
            yield window
        finally:
            parts: dict[str, ComponentEnergy] = {}
            try:
                for m in self.meters:
                    for comp, joules in m.stop().items():
                        parts[comp] = ComponentEnergy(comp, joules, m.method, m.estimated)
            except EnergyInconclusive as exc:
                window.error = str(exc)
            # Read after every stop: NVML's stop waits for the counter's next step, and the energy
            # it (and every meter stopped after it) reports runs to that step, so the window does.
            seconds = time.perf_counter() - started
            if window.error is None:
                window.reading, window.error = _validate(parts, seconds, self.meters, idle)

    def close(self) -> None:
        for m in self.meters:
            if hasattr(m, "close"):
                m.close()


def _validate(parts: dict[str, ComponentEnergy], seconds: float, meters: list[Any],
              idle: bool = False) -> tuple[EnergyReading | None, str | None]:
    short = [m for m in meters if seconds < m.min_window_s]
    if short:
        names = ", ".join(f"{m.method} needs ≥ {m.min_window_s:g} s" for m in short)
        return None, f"window of {seconds:.3f} s is too short ({names})"
    zero = [c.component for c in parts.values() if c.joules <= 0 and not (idle and c.estimated)]
    if zero:
        return None, f"{', '.join(zero)} energy did not move over {seconds:.2f} s (counter not updating?)"
    return EnergyReading(parts, seconds), None


def build_meter(device: str, choice: str = "auto", gpu_indices: list[int] | None = None,
                ram_dimms: int | None = None) -> EnergyMeter:
    """Pick backends for ``device``. ``choice``: ``auto``, ``nvml``, ``rapl``, ``codecarbon``,
    ``estimate`` or ``none``.

    A backend named explicitly that cannot run raises :class:`MeterUnavailable`; ``auto`` takes what
    works and lists the rest in ``unavailable``.
    """
    if choice == "none":
        return EnergyMeter([], {"all": "energy measurement turned off (--llmeff-energy none)"})
    meters: list[Any] = []
    unavailable: dict[str, str] = {}
    wanted = BACKENDS if choice == "auto" else (choice,)
    if choice != "auto" and choice not in BACKENDS:
        raise ValueError(f"unknown energy meter {choice!r} (auto, {', '.join(BACKENDS)}, none)")
    covered: set[str] = set()
    on_gpu = device.startswith("cuda")
    for name in wanted:
        try:
            if name == "nvml":
                if not on_gpu:
                    raise MeterUnavailable("the run is on the CPU, so there is no GPU energy to read")
                meter: Any = NvmlMeter(gpu_indices or [0])
            elif name == "rapl":
                meter = RaplMeter()
            else:
                rest = tuple(c for c in ("cpu", "ram") if c not in covered)
                if not rest:
                    continue
                meter = CodeCarbonMeter(rest, ram_dimms) if name == "codecarbon" else EstimateMeter(rest)
        except MeterUnavailable as exc:
            if choice != "auto":
                raise
            unavailable[name] = str(exc)
            continue
        meters.append(meter)
        covered.update(meter.components)
    return EnergyMeter(meters, unavailable)
