"""What a run measures and with what: the settings every case shares (a leaf module: no imports
from the rest of the package, so the options, the cost and the quality code can all use it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class EnergySettings:
    """How energy windows are repeated and turned into derived figures.

    Attributes:
        repeats: measured windows per case (median reported, with CV and a 95 % interval).
        cooldown_s: pause before each extra window (lets clocks and temperatures settle).
        idle: measure the idle power once and split each figure into idle (static) and active.
        region: grid intensity for CO2e (``carbon.Intensity``); None: no carbon figure.
        pue: facility overhead applied to the carbon figure.
        embodied: (chip kg CO2e, lifetime years) for an embodied share; None: operational only.
    """

    repeats: int = 1
    cooldown_s: float = 0.0
    idle: bool = True
    region: Any = None
    pue: float = 1.0
    embodied: tuple[float, float] | None = None


@dataclass(frozen=True)
class MeasureSpec:
    """How a model is measured in this run (the same for the base and every candidate)."""

    workload: str
    protocol: str
    eval_windows: int | None
    min_seconds: float
    device: str
    dataset: str
    energy: EnergySettings = EnergySettings()
    tasks: tuple[Any, ...] = ()  # measure.tasks.TaskSpec
    compile: bool = False  # torch.compile the model for the perplexity evaluation
    threads: int = 0  # torch CPU threads the run uses (0: left as torch set them); recorded with every time


@dataclass(frozen=True)
class EvalInputs:
    """The run's evaluation material, shared by every case."""

    eval_ids: list[int]  # the evaluation text as one token stream
    documents: tuple[str, ...]  # the same text as documents (document-level protocols)
    tokenizer: Any
    context_length: int
    workdir: Path  # where lm-eval's local task files are written
