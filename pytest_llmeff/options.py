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
from pytest_llmeff.compress import CompressError, parse_pipeline
from pytest_llmeff.measure.perplexity import PerplexityProtocol
from pytest_llmeff.measure.workloads import WorkloadError, parse_workload
from pytest_llmeff.models.datasets import DatasetError, check_dataset
from pytest_llmeff.models.loading import ModelLoadError, ModelSpec, resolve_model
from pytest_llmeff.registry import UnknownNameError, did_you_mean
from pytest_llmeff.score import OptWeights

DTYPES = ("auto", "float32", "float16", "bfloat16")
ENERGY = ("auto", "nvml", "rapl", "codecarbon", "none")
MISSING = ("warn", "fail")
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")

# name, ini type, default, help (the CLI flag is --llmeff-<name with - for _>).
_SETTINGS: list[tuple[str, str, Any, str]] = [
    ("model", "string", "embedded", "model to benchmark: 'embedded' (shipped reference), a local folder, "
     "or a Hugging Face id"),
    ("device", "string", "auto", "auto, cpu, cuda or cuda:N"),
    ("dtype", "string", "auto", f"base model dtype: {', '.join(DTYPES)} (auto: float32)"),
    ("dataset", "string", "embedded", "evaluation text: 'embedded', 'wikitext2', a text file, or a folder "
     "with train.txt/test.txt"),
    ("protocol", "string", "", "perplexity protocol: nonoverlap-<ctx> or stride-<s> "
     "(default nonoverlap-<model context, at most 1024>)"),
    ("eval_windows", "string", "0", "score at most this many perplexity windows (0: all)"),
    ("workload", "string", "forward", "what one timed call does: forward[(batch=,ctx=)], "
     "generate[(prompt=,new_tokens=,batch=)], perplexity"),
    ("baselines", "string", "baselines", "baselines folder (relative to the rootdir)"),
    ("missing_baseline", "string", "warn", "when a case has no stored baseline: warn (reported in the "
     "summary) or fail (for CI gates)"),
    ("weights", "string", "balanced", "opt score weights: balanced, energy, runtime, or 'alpha,beta'"),
    ("energy", "string", "auto", f"energy meter: {', '.join(ENERGY)}"),
    ("min_seconds", "string", "2.0", "shortest measured window in seconds (energy meters need time)"),
    ("compressors", "string", "", "comma-separated pipelines for cases that use the `compressor` fixture "
     "without their own list"),
    ("seed", "string", "0", "seed for calibration sampling and training"),
    ("cache_dir", "string", "", "cache for derived models (default ~/.cache/pytest-llmeff)"),
]
_FLAGS: list[tuple[str, str]] = [
    ("update_baselines", "write the measured values of passing cases as the new baselines"),
    ("allow_reorder", "let invalid compressor chains be reordered instead of refused"),
    ("trust_remote_code", "allow models whose code lives on the hub (runs that code)"),
    ("allow_pickle", "allow pickled .bin weights (loading them can run code)"),
]


def _flag(name: str) -> str:
    return "--llmeff-" + name.replace("_", "-")


def add_options(parser: Any) -> None:
    """Register the options and ini settings with pytest's parser."""
    group = parser.getgroup("llmeff", "LLM compression benchmarks (pytest-llmeff)")
    group.addoption("--llmeff", action="store_true", default=None,
                    help="run the LLM benchmark cases (without it they are skipped)")
    parser.addini("llmeff", "run the LLM benchmark cases by default", type="bool", default=False)
    for name, _, default, text in _SETTINGS:
        group.addoption(_flag(name), dest=f"llmeff_{name}", default=None, metavar="VALUE",
                        help=f"{text} [ini llmeff_{name}; default {default!r}]")
        parser.addini(f"llmeff_{name}", text, default=default)
    group.addoption("--llmeff-budget", dest="llmeff_budget", action="append", default=None, metavar="BUDGET",
                    help="budget for every case, e.g. 'perplexity:+5%%' or 'opt<=baseline' (repeatable) "
                         "[ini llmeff_budgets, one per line]")
    parser.addini("llmeff_budgets", "budgets for every case, one per line", type="linelist", default=[])
    for name, text in _FLAGS:
        group.addoption(_flag(name), dest=f"llmeff_{name}", action="store_true", default=None, help=text)
        parser.addini(f"llmeff_{name}", text, type="bool", default=False)


class OptionError(ValueError):
    """An invalid option value; shown to the user as a pytest usage error."""


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
    budgets: tuple[Budget, ...]
    seed: int
    cache_dir: Path
    update_baselines: bool
    allow_reorder: bool
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
            cache = str(get("cache_dir")).strip()
            return cls(
                enabled=enabled, model=model, device=device, dtype=dtype, dataset=dataset,
                protocol=protocol, eval_windows=_int("eval_windows", get("eval_windows"), 0) or None,
                workload=workload, baselines=Path(config.rootpath) / str(get("baselines")),
                missing_baseline=_choice("missing_baseline", str(get("missing_baseline")).strip(), MISSING),
                weights=OptWeights.parse(str(get("weights"))),
                energy=_choice("energy", str(get("energy")).strip(), ENERGY),
                min_seconds=_float("min_seconds", get("min_seconds")),
                compressors=compressors, budgets=tuple(parse_budgets(list(budget_texts))),
                seed=_int("seed", get("seed"), None),
                cache_dir=Path(cache).expanduser() if cache else Path.home() / ".cache" / "pytest-llmeff",
                update_baselines=flags["update_baselines"], allow_reorder=flags["allow_reorder"],
                compressor_registry=compressor_registry,
            )
        except (ModelLoadError, DatasetError, BudgetError, CompressError, WorkloadError, UnknownNameError,
                ValueError) as exc:
            raise OptionError(str(exc)) from None


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


def _float(name: str, value: Any) -> float:
    try:
        number = float(str(value).strip())
    except ValueError:
        raise OptionError(f"{_flag(name)}: expected a number of seconds, got {value!r}") from None
    if not number >= 0:
        raise OptionError(f"{_flag(name)}: must be ≥ 0, got {number}")
    return number
