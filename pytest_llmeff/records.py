"""Frozen value types: every figure carries its unit and the method that produced it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


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
        detail: free-form protocol details (dtype, device, windows, rounds) for reports.
    """

    value: float
    unit: str
    method: str
    estimated: bool = False
    detail: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.value, (int, float)) or math.isnan(self.value):
            raise ValueError(f"a measurement needs a number, got {self.value!r} ({self.method})")

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"detail": dict(self.detail)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Measurement:
        return cls(float(data["value"]), str(data["unit"]), str(data["method"]),
                   bool(data.get("estimated", False)), dict(data.get("detail", {})))


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
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CaseRecord:
        return cls(
            case_id=str(data["case_id"]), method=str(data["method"]), model=str(data["model"]),
            device=str(data["device"]), dtype=str(data["dtype"]), workload=str(data["workload"]),
            values={k: Measurement.from_json(v) for k, v in data["values"].items()},
            opt={k: float(v) for k, v in data.get("opt", {}).items()},
            notes=tuple(data.get("notes", ())),
            history={k: tuple(float(x) for x in v) for k, v in data.get("history", {}).items()},
        )
