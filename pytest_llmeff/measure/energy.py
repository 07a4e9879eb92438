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
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pytest_llmeff.measure.energy_base import (  # noqa: F401  (re-exported: the energy API in one place)
    BACKENDS,
    COMPONENTS,
    RAM_W_PER_DIMM,
    RAPL_ROOT,
    ComponentEnergy,
    EnergyInconclusive,
    EnergyReading,
    Meter,
    MeterUnavailable,
    counter_delta,
)
from pytest_llmeff.measure.meters import (  # noqa: F401
    CodeCarbonMeter,
    EstimateMeter,
    NvmlMeter,
    RaplDomain,
    RaplMeter,
    rapl_domains,
)


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
