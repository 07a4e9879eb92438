"""What every energy meter shares: components, readings with their method, errors, counter arithmetic
(a leaf of the energy modules: :mod:`~pytest_llmeff.measure.meters` and
:mod:`~pytest_llmeff.measure.energy` build on it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

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
