"""Typed details of the sampled figures: how a time or an energy figure was taken.

A ``Measurement`` of ``time`` carries a :class:`TimeDetail`, one of ``energy`` an
:class:`EnergyDetail`; the verdicts read their per-call ``samples``, the reports their statistic,
and a baseline is only compared with a run that used the same torch ``threads``. Other figures
(perplexity, task scores) keep free-form protocol details, which reports print as they are.

Both serialise to the flat JSON objects baselines and run files have always held
(``{"workload": …, "samples": […], …}``): unset optional fields are left out, and keys this
version does not know are kept in ``extra`` and written back unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class WarmUpDetail:
    """What warming up before the timed calls took (see ``measure.steady``)."""

    calls: int
    seconds: float
    compiles: int
    steady: bool

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WarmUpDetail:
        return cls(int(data["calls"]), float(data["seconds"]), int(data["compiles"]), bool(data["steady"]))


@dataclass(frozen=True)
class TimeDetail:
    """How a time figure (seconds per workload call) was taken.

    Attributes:
        workload: the workload id the calls ran (``lm-forward-4x128`` …).
        statistic: which statistic the figure is (``median per call`` …).
        rounds, iterations: pytest-benchmark's rounds, and calls per round.
        device: where the calls ran.
        threads: torch's intra-op threads during the calls (None: not recorded).
        tokens_per_call: tokens one call processes.
        mean_s, stddev_s, min_s: the other statistics over the rounds.
        samples: seconds per call of every round, in order (the verdicts resample them).
        reruns: how often an undecided verdict had the case timed again (samples pooled).
        warmup: what warming up took.
        extra: workload-specific details (the deployment replay's prompts and lateness …).
    """

    workload: str = ""
    statistic: str = ""
    rounds: int | None = None
    iterations: int | None = None
    device: str = ""
    threads: int | None = None
    tokens_per_call: int | None = None
    mean_s: float | None = None
    stddev_s: float | None = None
    min_s: float | None = None
    samples: tuple[float, ...] = ()
    reruns: int = 0
    warmup: WarmUpDetail | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return _flat(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TimeDetail:
        known = _known(cls, data)
        if "warmup" in known:
            known["warmup"] = WarmUpDetail.from_json(known["warmup"])
        return cls(**known, extra=_unknown(cls, data))


@dataclass(frozen=True)
class EnergyDetail:
    """How an energy figure (joules per workload call) was taken.

    Attributes:
        statistic: which statistic the figure is (``median over 2 window(s) …``).
        windows: energy windows read.
        calls: calls inside the first window.
        window_s: the first window's length in seconds.
        cv: coefficient of variation over the windows (None: one window).
        ci95: a 95 % interval of the median over the windows.
        samples: joules per call of every window (the verdicts resample them).
        reruns: how often an undecided verdict had the case measured again (samples pooled).
        extra: keys this version does not know, kept as read.
    """

    statistic: str = ""
    windows: int = 1
    calls: int | None = None
    window_s: float | None = None
    cv: float | None = None
    ci95: tuple[float, float] | None = None
    samples: tuple[float, ...] = ()
    reruns: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return _flat(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EnergyDetail:
        known = _known(cls, data)
        if known.get("ci95") is not None:
            known["ci95"] = tuple(known["ci95"])
        return cls(**known, extra=_unknown(cls, data))


Detail = TimeDetail | EnergyDetail | Mapping[str, Any]
TYPED: dict[str, type[TimeDetail] | type[EnergyDetail]] = {"time": TimeDetail, "energy": EnergyDetail}


def detail_from_json(metric: str, data: Mapping[str, Any]) -> Detail:
    """The detail of ``metric`` as read from JSON: typed for time and energy, else as it is."""
    kind = TYPED.get(metric)
    return kind.from_json(data) if kind is not None else dict(data)


def detail_to_json(detail: Detail) -> dict[str, Any]:
    return detail.to_json() if isinstance(detail, (TimeDetail, EnergyDetail)) else dict(detail)


def with_samples(detail: TimeDetail | EnergyDetail, samples: list[float]) -> TimeDetail | EnergyDetail:
    """``detail`` after a rerun: all samples pooled, one more rerun counted."""
    changes: dict[str, Any] = {"samples": tuple(samples), "reruns": detail.reruns + 1}
    if isinstance(detail, TimeDetail):
        changes["rounds"] = len(samples)
    return dataclasses.replace(detail, **changes)


_OMITTED_EMPTY = ("reruns", "samples")  # written only once they hold something


def _flat(detail: TimeDetail | EnergyDetail) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(detail):
        value = getattr(detail, f.name)
        if f.name == "extra" or value is None or (f.name in _OMITTED_EMPTY and not value):
            continue
        if isinstance(value, WarmUpDetail):
            value = dataclasses.asdict(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out | dict(detail.extra)


def _known(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
    out = {k: v for k, v in data.items() if k in names}
    if "samples" in out:
        out["samples"] = tuple(float(x) for x in out["samples"])
    return out


def _unknown(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k not in names}
