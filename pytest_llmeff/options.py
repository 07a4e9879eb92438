"""Command-line options and ini settings, read and validated once into :class:`Options`.

Every ``--llmeff-x`` option has an ini twin ``llmeff_x``; the command line wins. Validation here
imports nothing heavy, so a bad value fails fast with a one-line message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llmeff.budgets import Budget, BudgetError, parse_budgets
from pytest_llmeff.carbon import CarbonError, check_pue, embodied_grams, intensity
from pytest_llmeff.compress import CompressError, parse_pipeline
from pytest_llmeff.errors import OptionError
from pytest_llmeff.measure.perplexity import PerplexityProtocol
from pytest_llmeff.measure.tasks import TaskError, parse_tasks
from pytest_llmeff.measure.workloads import WorkloadError, parse_workload
from pytest_llmeff.metrics import get_metric
from pytest_llmeff.models.datasets import DatasetError, check_dataset
from pytest_llmeff.models.loading import ModelLoadError, ModelSpec, resolve_model
from pytest_llmeff.option_list import _FLAGS, DTYPES, ENERGY, _flag, add_options  # noqa: F401
from pytest_llmeff.registry import UnknownNameError, did_you_mean
from pytest_llmeff.score import OptWeights

MISSING = ("warn", "fail")
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "pytest-llmeff"  # students, GPTQ checkpoints

@dataclass(frozen=True)
class Options:
    """All llmeff settings of one run, validated."""

    enabled: bool
    model: ModelSpec
    device: str
    dtype: str
    dataset: str
    protocol: str | None
    eval_windows: int | None
    workload: str
    baselines: Path
    missing_baseline: str
    weights: OptWeights
    energy: str
    min_seconds: float
    compressors: tuple[str, ...]
    tasks: tuple[Any, ...]
    opt_metrics: tuple[str, ...] | None
    energy_settings: Any
    ram_dimms: int | None
    what_if: tuple[str, ...]
    budgets: tuple[Budget, ...]
    seed: int
    cache_dir: Path
    update_baselines: bool
    allow_reorder: bool
    heavy: bool
    compile: bool
    noise_aware: bool
    inconclusive: str
    reruns: int
    json_path: Path | None
    report_dir: Path | None
    markdown_path: Path | None
    baseline_machine: str | None
    force_compare: bool
    paired: bool
    threads: int = 1
    compressor_registry: Any = None  # the run's copy of COMPRESSORS (hooks may have added to it)

    @classmethod
    def from_config(cls, config: Any, compressor_registry: Any = None) -> Options:
        """Read CLI (first) and ini values; raise :class:`OptionError` naming the bad option."""
        def get(name: str) -> Any:
            cli = config.getoption(f"llmeff_{name}")
            return cli if cli is not None else config.getini(f"llmeff_{name}")

        enabled = bool(config.getoption("llmeff") or config.getini("llmeff"))
        try:
            flags = {name: bool(get(name)) for name, _ in _FLAGS}
            model = resolve_model(str(get("model")), trust_remote_code=flags["trust_remote_code"],
                                  allow_pickle=flags["allow_pickle"])
            device = _choice("device", str(get("device")).strip(), None)
            dtype = _choice("dtype", str(get("dtype")).strip(), DTYPES)
            dataset = str(get("dataset")).strip()
            check_dataset(dataset)
            protocol = str(get("protocol")).strip() or None
            if protocol:
                PerplexityProtocol.parse(protocol)
            workload = str(get("workload")).strip()
            parse_workload(workload)
            compressors = tuple(c.strip() for c in str(get("compressors")).split(",") if c.strip())
            for c in compressors:
                parse_pipeline(c, allow_reorder=flags["allow_reorder"], registry=compressor_registry)
            budget_texts = config.getoption("llmeff_budget") or config.getini("llmeff_budgets")
            energy_settings, what_if = _energy_settings(get)
            tasks = tuple(parse_tasks(str(get("tasks"))))
            opt_metrics = _opt_metrics(str(get("opt_metrics")))
            cache = str(get("cache_dir")).strip()
            machine = _machine(str(get("baseline_machine")).strip(), flags["update_baselines"])
            return cls(
                enabled=enabled, model=model, device=device, dtype=dtype, dataset=dataset,
                protocol=protocol, eval_windows=_int("eval_windows", get("eval_windows"), 0) or None,
                workload=workload, baselines=_baselines_folder(config),
                missing_baseline=_choice("missing_baseline", str(get("missing_baseline")).strip(), MISSING),
                weights=OptWeights.parse(str(get("weights"))),
                energy=_choice("energy", str(get("energy")).strip(), ENERGY),
                min_seconds=_float("min_seconds", get("min_seconds")),
                compressors=compressors, tasks=tasks, opt_metrics=opt_metrics, energy_settings=energy_settings,
                ram_dimms=_int("ram_dimms", get("ram_dimms"), 0) or None, what_if=what_if,
                budgets=tuple(parse_budgets(list(budget_texts))),
                seed=_int("seed", get("seed"), None),
                cache_dir=Path(cache).expanduser() if cache else DEFAULT_CACHE_DIR,
                update_baselines=flags["update_baselines"], allow_reorder=flags["allow_reorder"],
                heavy=flags["heavy"], compile=flags["compile"], noise_aware=not flags["exact_verdicts"],
                inconclusive=_choice("inconclusive", str(get("inconclusive")).strip(), MISSING),
                reruns=_int("reruns", get("reruns"), 0),
                json_path=_path(config, get("json")), report_dir=_path(config, get("report")),
                markdown_path=_path(config, get("markdown")),
                baseline_machine=machine,
                force_compare=flags["force_compare"], paired=not flags["unpaired"],
                threads=_threads(str(get("threads"))),
                compressor_registry=compressor_registry,
            )
        except (ModelLoadError, DatasetError, BudgetError, CompressError, WorkloadError, UnknownNameError,
                CarbonError, TaskError, ValueError) as exc:
            raise OptionError(str(exc)) from None


def _threads(text: str) -> int:
    from pytest_llmeff.measure.threads import auto_threads

    return auto_threads() if text.strip() == "auto" else _int("threads", text, 1)


def _machine(name: str, update: bool) -> str | None:
    """``--llmeff-baseline-machine``: a folder name inside the baselines folder, for comparing only."""
    if not name:
        return None
    from pytest_llmeff.store import BaselineError, check_machine_name

    try:
        check_machine_name(name)
    except BaselineError as exc:
        raise OptionError(str(exc)) from None
    if update:
        raise OptionError("--llmeff-update-baselines with --llmeff-baseline-machine: baselines are only written "
                          "under the fingerprint of the machine that measured them; --llmeff-baseline-machine "
                          "is for comparing with another machine's baselines, so drop one of the two")
    return name


def _opt_metrics(text: str) -> tuple[str, ...] | None:
    """``auto`` → None; else the listed quality metrics, each usable in the opt score."""
    if text.strip() == "auto":
        return None
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise OptionError("--llmeff-opt-metrics: name at least one quality metric, or 'auto'")
    for name in names:
        metric = get_metric(name)
        if metric.cost:
            raise OptionError(f"--llmeff-opt-metrics: {name!r} is a cost; the opt score's costs are time "
                              "and energy")
        if metric.higher_is_better and metric.chance is None:
            raise OptionError(f"--llmeff-opt-metrics: metric {name!r} has no chance level, which the opt "
                              "score's quality ratio needs; leave it out or register it with one "
                              "(pytest_llmeff.register_metric)")
    return names


def _energy_settings(get: Any) -> tuple[Any, tuple[str, ...]]:
    from pytest_llmeff.measure.spec import EnergySettings

    region = str(get("region")).strip()
    pue = check_pue(_float("pue", get("pue"), minimum=None))
    what_if = tuple(r.strip() for r in str(get("what_if")).split(",") if r.strip())
    for r in what_if:
        intensity(r)  # unknown regions fail now
    embodied = None
    if str(get("embodied")).strip():
        try:
            kg, years = (float(x) for x in str(get("embodied")).split(","))
        except ValueError:
            raise OptionError("--llmeff-embodied: expected '<chip kg CO2e>,<lifetime years>', e.g. '150,4'") from None
        embodied_grams(1.0, kg, years)  # validates
        embodied = (kg, years)
    repeats = _int("energy_repeats", get("energy_repeats"), 1)
    return EnergySettings(repeats=repeats, cooldown_s=_float("cooldown", get("cooldown")),
                          region=intensity(region) if region else None, pue=pue, embodied=embodied), what_if


def _baselines_folder(config: Any) -> Path:
    """Where baselines live. Not relative to pytest's rootdir: pytest derives that (and the ini
    file it reads) from the existing paths on the command line, and it reads a plugin option's
    value written after a space as one (``--llmeff-cache-dir /tmp/x`` made /tmp/x the rootdir and
    found no ini file), so the project's committed baselines would silently go unread."""
    cli = config.getoption("llmeff_baselines")
    if cli is not None:
        folder = _path(config, cli) or Path(config.invocation_params.dir)
    else:
        folder = Path(str(config.getini("llmeff_baselines")).strip() or "baselines").expanduser()
        if not folder.is_absolute():
            # Without an ini file pytest has lost the project's configuration as well (see above):
            # the current folder is then the best guess for the project.
            ini = Path(config.inipath).parent if config.inipath else Path(config.invocation_params.dir)
            folder = ini / folder
    if folder.exists() and not folder.is_dir():
        raise OptionError(f"--llmeff-baselines: {folder} is a file; give a folder (it holds one folder per machine)")
    return folder


def _path(config: Any, value: Any) -> Path | None:
    text = str(value).strip()
    if not text:
        return None
    path = Path(text).expanduser()
    return path if path.is_absolute() else Path(config.invocation_params.dir) / path


def _choice(name: str, value: str, allowed: tuple[str, ...] | None) -> str:
    if allowed is None:  # the device
        if not _DEVICE.match(value):
            raise OptionError(f"{_flag(name)}: unknown device {value!r}{did_you_mean(value, ['auto', 'cpu', 'cuda'])} "
                              "(auto, cpu, cuda, cuda:N)")
        return value
    if value not in allowed:
        raise OptionError(f"{_flag(name)}: unknown value {value!r}{did_you_mean(value, list(allowed))} "
                          f"(allowed: {', '.join(allowed)})")
    return value


def _int(name: str, value: Any, minimum: int | None) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise OptionError(f"{_flag(name)}: expected a whole number, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise OptionError(f"{_flag(name)}: must be ≥ {minimum}, got {number}")
    return number


def _float(name: str, value: Any, minimum: float | None = 0.0) -> float:
    try:
        number = float(str(value).strip())
    except ValueError:
        raise OptionError(f"{_flag(name)}: expected a number, got {value!r}") from None
    if minimum is not None and not number >= minimum:
        raise OptionError(f"{_flag(name)}: must be ≥ {minimum:g}, got {number}")
    return number
