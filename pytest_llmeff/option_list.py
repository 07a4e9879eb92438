"""Every ``--llmeff-*`` option and ini setting, declared once: name, default and help text, and their
registration with pytest's parser. :mod:`pytest_llmeff.options` reads and validates them."""

from __future__ import annotations

from typing import Any

from pytest_llmeff.measure.energy_base import BACKENDS

DTYPES = ("auto", "float32", "float16", "bfloat16")
ENERGY = ("auto", *BACKENDS, "none")

# name, ini type, default, help (the CLI flag is --llmeff-<name with - for _>).
_SETTINGS: list[tuple[str, str, Any, str]] = [
    ("model", "string", "embedded", "model to benchmark: 'embedded' (shipped reference), a local folder, "
     "or a Hugging Face id"),
    ("device", "string", "auto", "auto, cpu, cuda or cuda:N"),
    ("dtype", "string", "auto", f"base model dtype: {', '.join(DTYPES)} (auto: float32)"),
    ("dataset", "string", "embedded", "evaluation text: 'embedded', 'wikitext2', a text file, or a folder "
     "with train.txt/test.txt"),
    ("protocol", "string", "", "perplexity protocol: nonoverlap-<ctx>, stride-<s>[/<window>] or lmeval-rolling "
     "(default nonoverlap-<model context, at most 1024>)"),
    ("eval_windows", "string", "0", "score at most this many perplexity windows (0: all)"),
    ("workload", "string", "forward", "what one timed call does: forward[(batch=,ctx=)], "
     "generate[(prompt=,new_tokens=,batch=)], perplexity"),
    ("baselines", "string", "baselines", "baselines folder (on the command line relative to the current "
                                          "folder; in an ini file relative to that file)"),
    ("missing_baseline", "string", "warn", "when a case has no stored baseline: warn (reported in the "
     "summary) or fail (for CI gates)"),
    ("inconclusive", "string", "warn", "when timing noise leaves a budget undecided after the reruns: warn or fail"),
    ("reruns", "string", "2", "extra timing windows for a case whose budget verdict is inconclusive"),
    ("weights", "string", "balanced", "opt score weights: balanced, energy, runtime, or 'alpha,beta'"),
    ("energy", "string", "auto", f"energy meter: {', '.join(ENERGY)}"),
    ("min_seconds", "string", "1.0", "seconds of candidate calls timed per case (as many again for the base "
     "model, in windows A B B A); each window lasts half of it, at least what the energy meter needs"),
    ("tasks", "string", "", "lm-eval task scores for every case, e.g. 'llmeff_docs_mc, arc_challenge(limit=100)' "
     "(shots as in the first study unless fewshot= is given)"),
    ("opt_metrics", "string", "auto", "quality metrics in the opt score: 'auto' (perplexity and every task with a "
     "chance level) or a comma-separated list"),
    ("energy_repeats", "string", "1", "windows per model and case, at least 2, rounded up to whole A B B A "
     "cycles next to the base model (median, CV and 95%% interval reported)"),
    ("cooldown", "string", "0", "seconds to pause before each window but the first"),
    ("ram_dimms", "string", "0", "installed DIMMs, replacing CodeCarbon's guess from the memory size "
     "(5 W each; 0: keep the guess)"),
    ("region", "string", "", "grid region for CO2e: ISO alpha-3 country (DEU, FRA …), study2024:<BEL|DEU|FRA|NLD> "
     "or custom:<g/kWh>; empty: no carbon figure"),
    ("pue", "string", "1.0", "data-centre PUE applied to CO2e (1.58: Strubell et al.'s average)"),
    ("what_if", "string", "study2024:BEL,study2024:DEU,study2024:FRA,study2024:NLD",
     "regions for the CO2e what-if table (comma-separated)"),
    ("embodied", "string", "", "embodied carbon share: '<chip kg CO2e>,<lifetime years>' (LLMCarbon-style)"),
    ("json", "string", "", "write this run's records (all workers merged) to this JSON file"),
    ("report", "string", "", "write summary.md, report.html and plots (Pareto, opt, energy split) to this folder"),
    ("markdown", "string", "", "append the markdown summary to this file (e.g. $GITHUB_STEP_SUMMARY)"),
    ("baseline_machine", "string", "", "compare with the baselines of another machine's folder (refused unless "
     "--llmeff-force-compare: timings and energy do not compare across hardware; never with "
     "--llmeff-update-baselines)"),
    ("compressors", "string", "", "comma-separated pipelines for cases that use the `compressor` fixture "
     "without their own list"),
    ("seed", "string", "0", "seed for calibration sampling and training"),
    ("threads", "string", "auto", "torch CPU threads: auto (the cores this process may use, minus one, at least 1) "
     "or a number; recorded with every time figure"),
    ("cache_dir", "string", "", "cache for derived models (default ~/.cache/pytest-llmeff)"),
]
_FLAGS: list[tuple[str, str]] = [
    ("update_baselines", "write the measured values of passing cases as the new baselines"),
    ("force_compare", "compare with baselines recorded on other hardware anyway"),
    ("unpaired", "time the base model once per run instead of again next to every case (faster, but "
     "exposed to the machine's drift)"),
    ("exact_verdicts", "judge budgets on the medians alone, without the bootstrap's inconclusive band"),
    ("compile", "torch.compile each model for the perplexity evaluation (compile time is not timed)"),
    ("heavy", "also run cases marked heavy (long training on a CPU: reverse-KL and sequence-level KD …)"),
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
