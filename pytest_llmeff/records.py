"""Frozen value types: every figure carries its unit and the method that produced it."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_llmeff.details import TYPED, Detail, EnergyDetail, TimeDetail, detail_from_json, detail_to_json


@dataclass(frozen=True)
class Measurement:
    """One figure and how it was obtained.

    Attributes:
        value: the number, in ``unit``.
        unit: ``"s"``, ``"J"``, ``"B"``, ``""`` (ratios, perplexity) …
        method: how it was obtained: a perplexity protocol id (``nonoverlap-256``), a timer
            (``pytest-benchmark wall clock``), an energy method (``nvml-counter``, ``rapl``,
            ``codecarbon-estimate``) …
        estimated: ``True`` when the figure is modelled rather than read from a counter.
        detail: how the figure was taken: a :class:`TimeDetail` for ``time``, an
            :class:`EnergyDetail` for ``energy``, free-form protocol details (dataset, windows,
            dtype …) for other figures.
    """

    value: float
    unit: str
    method: str
    estimated: bool = False
    detail: Detail = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.value, (int, float)) or math.isnan(self.value):
            raise ValueError(f"a measurement needs a number, got {self.value!r} ({self.method})")

    @property
    def samples(self) -> tuple[float, ...]:
        """The per-round (time) or per-window (energy) samples behind the figure; () for others."""
        return self.detail.samples if isinstance(self.detail, (TimeDetail, EnergyDetail)) else ()

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "unit": self.unit, "method": self.method, "estimated": self.estimated,
                "detail": detail_to_json(self.detail)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], metric: str = "") -> Measurement:
        """``metric`` (the name the figure is stored under) picks the typed detail to read."""
        return cls(float(data["value"]), str(data["unit"]), str(data["method"]),
                   bool(data.get("estimated", False)), detail_from_json(metric, data.get("detail", {})))


@dataclass(frozen=True)
class CaseRecord:
    """Everything one benchmark case measured.

    ``values`` is keyed by metric name (see :mod:`pytest_llmeff.metrics`): ``perplexity``,
    ``time`` (seconds per workload call), ``energy`` (joules per workload call), ``energy.cpu`` /
    ``energy.gpu`` / ``energy.ram`` (the split), ``weight_bytes``, task scores …
    """

    case_id: str
    method: str  # the compressor pipeline id: "base", "int8", "kd+nf4" …
    model: str
    device: str
    dtype: str
    workload: str
    values: Mapping[str, Measurement]
    opt: Mapping[str, float] = field(default_factory=dict)  # preset name → opt score
    notes: tuple[str, ...] = ()
    # Stored baselines only: values of timing-based figures (opt …) from earlier baseline updates of
    # the same model, oldest first: the machine's run-to-run spread (see verdicts.run_spread).
    history: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    # Time and energy taken in turn with the reference this record is scored against, in windows
    # A B B A of equal call counts (verdicts then resample both with one draw of call indices).
    interleaved: bool = False

    def __post_init__(self) -> None:
        # Time and energy figures always carry their typed detail, however the record was built.
        typed = {name: dataclasses.replace(m, detail=detail_from_json(name, m.detail))
                 for name, m in self.values.items()
                 if name in TYPED and not isinstance(m.detail, (TimeDetail, EnergyDetail))}
        if typed:
            object.__setattr__(self, "values", {**self.values, **typed})

    @property
    def timing(self) -> TimeDetail | None:
        """How the time figure was taken (None: the record has none)."""
        detail = self.values["time"].detail if "time" in self.values else None
        return detail if isinstance(detail, TimeDetail) else None

    def numbers(self) -> dict[str, float]:
        """Plain metric → value (with ``opt`` / ``opt.<preset>``), as score and budgets take them."""
        out = {name: m.value for name, m in self.values.items()}
        out.update({f"opt.{preset}": v for preset, v in self.opt.items()})
        if "run" in self.opt:
            out["opt"] = self.opt["run"]
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id, "method": self.method, "model": self.model,
            "device": self.device, "dtype": self.dtype, "workload": self.workload,
            "values": {k: v.to_json() for k, v in self.values.items()},
            "opt": dict(self.opt), "notes": list(self.notes),
            **({"history": {k: list(v) for k, v in self.history.items()}} if self.history else {}),
            **({"interleaved": True} if self.interleaved else {}),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CaseRecord:
        return cls(
            case_id=str(data["case_id"]), method=str(data["method"]), model=str(data["model"]),
            device=str(data["device"]), dtype=str(data["dtype"]), workload=str(data["workload"]),
            values={k: Measurement.from_json(v, k) for k, v in data["values"].items()},
            opt={k: float(v) for k, v in data.get("opt", {}).items()},
            notes=tuple(data.get("notes", ())),
            history={k: tuple(float(x) for x in v) for k, v in data.get("history", {}).items()},
            interleaved=data.get("interleaved") is True,
        )


# Larger than any figure a measurement here gives (a petabyte, thirty million years): a stored
# number beyond it is a hand edit or a broken writer, and would make budget arithmetic overflow.
LARGEST = 1e15


def _number(value: Any, entry: str, low: float = -LARGEST, low_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{entry} is {value!r}, not a number")
    if not math.isfinite(value):
        raise ValueError(f"{entry} is {value!r}, not a finite number")
    if abs(value) > LARGEST:
        raise ValueError(f"{entry} is {value!r}, beyond any measured figure (|x| ≤ {LARGEST:g})")
    if value < low or (low_open and value == low):
        raise ValueError(f"{entry} is {value!r}; it must be {'>' if low_open else '≥'} {low:g}")


def check_record_json(data: Any) -> None:
    """Check a stored record (a baseline entry, a run file's case) before anything uses it: every
    number finite and of the right kind, every name a string.

    Raises:
        ValueError: naming the offending entry, e.g. ``values.perplexity.value is inf``.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"the entry is {type(data).__name__}, not a JSON object")
    for key in ("case_id", "method", "model", "device", "dtype", "workload"):
        if key in data and not isinstance(data[key], str):
            raise ValueError(f"{key} is {data[key]!r}, not a string")
    values = data.get("values")
    if not isinstance(values, Mapping):
        raise ValueError(f"values is {values!r}, not a table of measurements")
    for name, m in values.items():
        if not isinstance(m, Mapping):
            raise ValueError(f"values.{name} is {m!r}, not a measurement")
        low, open_ = (1.0, False) if "perplexity" in name else (0.0, True) if name == "time" else (-LARGEST, False)
        _number(m.get("value"), f"values.{name}.value", low, open_)
        detail = m.get("detail") if isinstance(m.get("detail"), Mapping) else {}
        samples = m.get("samples", detail.get("samples"))
        if samples is not None:
            if not isinstance(samples, list):
                raise ValueError(f"values.{name}.samples is {samples!r}, not a list")
            for i, x in enumerate(samples):
                _number(x, f"values.{name}.samples[{i}]", 0.0)
    opt = data.get("opt", {})
    if not isinstance(opt, Mapping):
        raise ValueError(f"opt is {opt!r}, not a table of scores")
    for preset, v in opt.items():
        _number(v, f"opt.{preset}", 0.0, True)
    notes = data.get("notes", [])
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise ValueError(f"notes is {notes!r}, not a list of strings")
