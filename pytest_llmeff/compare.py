"""Compare saved runs: llmeff's fields side by side, with noise-aware fail thresholds.

Reads run files written with ``--llmeff-json`` and pytest-benchmark's saved runs
(``--benchmark-autosave``), whose benchmarks carry llmeff's figures in ``extra_info``. The first
run is the reference; every other run is compared with it, case by case. Runs from different
hardware are refused unless forced: their timings and energy do not compare.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_llmeff.budgets import Budget, BudgetError, BudgetResult
from pytest_llmeff.fingerprint import hardware_differences
from pytest_llmeff.records import CaseRecord, check_record_json
from pytest_llmeff.results import budgets_from_json
from pytest_llmeff.rows import change, num, pct
from pytest_llmeff.run_info import check_environment
from pytest_llmeff.verdicts import NoiseSettings, judge

RUN_SCHEMA = "pytest-llmeff/run"
DEFAULT_FIELDS = ("perplexity", "time", "energy", "opt")


class CompareError(ValueError):
    """A run file that cannot be read, or runs that must not be compared."""


@dataclass(frozen=True)
class Run:
    name: str
    fingerprint: dict[str, Any]
    cases: dict[str, CaseRecord]
    verdicts: dict[str, str] = field(default_factory=dict)
    references: dict[str, CaseRecord] = field(default_factory=dict)  # what each case's Δ is against
    reasons: dict[str, str] = field(default_factory=dict)  # why a case failed / was inconclusive
    budgets: dict[str, list[BudgetResult]] = field(default_factory=dict)  # each case's budget results
    model: str = ""
    device: str = ""
    environment: dict[str, Any] = field(default_factory=dict)  # created, commit, versions (run_info)


def _record_from_benchmark(bench: dict[str, Any]) -> CaseRecord | None:
    info = (bench.get("extra_info") or {}).get("llmeff")
    if not info:
        return None
    # Runs saved by earlier versions kept only the samples of each figure, beside its value.
    values = {k: {"unit": "", "method": "", **v, "detail": v.get("detail") or (
                  {"samples": v["samples"]} if v.get("samples") else {})}
              for k, v in info["values"].items()}
    return CaseRecord.from_json({**info, "case_id": bench.get("fullname", bench["name"]), "values": values})


def load_run(path: Path) -> Run:
    """A ``--llmeff-json`` run file or a pytest-benchmark saved run."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CompareError(f"cannot read run file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise CompareError(f"{path} is not a run file (expected a JSON object)")
    entry = ""
    try:
        if data.get("schema") == RUN_SCHEMA:
            cases, references = {}, {}
            for entry, rec in data["cases"].items():
                check_record_json(rec)
                cases[entry] = CaseRecord.from_json(rec)
            # Files written before runs kept each case's reference have none: reports then take
            # the workload's base record.
            for entry, rec in data.get("references", {}).items():
                check_record_json(rec)
                references[entry] = CaseRecord.from_json(rec)
            budgets = {}
            for entry, results in data.get("budgets", {}).items():  # also absent from older files
                budgets[entry] = budgets_from_json(results)
            entry = ""
            fingerprint, verdicts = data.get("fingerprint", {}), data.get("verdicts", {})
            reasons = data.get("reasons", {})
            if not all(isinstance(x, dict) for x in (fingerprint, verdicts, reasons)):
                raise ValueError("\"fingerprint\", \"verdicts\" and \"reasons\" must be JSON objects")
            return Run(path.stem, fingerprint, cases, dict(verdicts), references, dict(reasons), budgets,
                       str(data.get("model", "")), str(data.get("device", "")),
                       check_environment(data.get("environment")))
        if "benchmarks" in data:
            cases = {}
            for bench in data["benchmarks"]:
                entry = str(bench.get("fullname", bench.get("name", "")))
                if (bench.get("extra_info") or {}).get("llmeff"):
                    check_record_json(bench["extra_info"]["llmeff"])
                record = _record_from_benchmark(bench)
                if record is not None:
                    cases[record.case_id] = record
            if not cases:
                raise CompareError(f"{path} is a pytest-benchmark run without llmeff figures "
                                   "(was it saved from a `pytest --llmeff` run?)")
            llmeff_fp = (data.get("machine_info") or {}).get("llmeff_fingerprint", {})
            verdicts = {b.get("fullname", b["name"]): b["extra_info"]["llmeff"].get("verdict", "")
                        for b in data["benchmarks"] if (b.get("extra_info") or {}).get("llmeff")}
            # pytest-benchmark names its files COUNTER_COMMIT_DATE_…: the counter is what its own
            # `compare 0001 0002` takes, and what reads in a column header.
            counter = path.stem.split("_")[0]
            return Run(counter if counter.isdigit() else path.stem, llmeff_fp, cases, verdicts)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        where = f"case {entry!r}: " if entry else ""
        problem = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise CompareError(f"{path}: malformed run file: {where}{problem}; fix or regenerate it") from None
    raise CompareError(f"{path} is neither a pytest-llmeff run file nor a pytest-benchmark saved run")


def _numbers(record: CaseRecord, overrides: dict[str, float], _reference: Any) -> dict[str, float]:
    return record.numbers() | dict(overrides)


def compare(runs: Sequence[Run], thresholds: Sequence[str] = (), fields: Sequence[str] = DEFAULT_FIELDS,
            force: bool = False) -> tuple[list[str], list[list[str]], list[BudgetResult], list[str]]:
    """Header, rows, threshold results and notes for ``runs`` (the first is the reference).

    ``thresholds`` are drift budgets such as ``time:+10%`` checked for every case of every later
    run against the reference run, with the noise-aware verdict where timings carry their rounds.
    """
    if len(runs) < 2:
        raise CompareError("compare needs at least two runs")
    notes = []
    for run in runs[1:]:
        diffs = hardware_differences(runs[0].fingerprint, run.fingerprint)
        if diffs:
            message = f"{run.name} was recorded on other hardware than {runs[0].name}: {'; '.join(diffs)}"
            if not force:
                raise CompareError(message + " — timings and energy do not compare across machines "
                                   "(--force to compare anyway)")
            notes.append("FORCED: " + message)
    try:
        budgets = [Budget.parse(t) for t in thresholds]
    except BudgetError as exc:
        raise CompareError(str(exc)) from None
    for b in budgets:
        if b.reference != "base":
            raise CompareError(f"threshold {b.text!r}: use the drift form FIELD:+N% (against the first run)")
    ref = runs[0]
    units = _units(ref, fields)
    header = ["case", *[f"{f}{units[f]} {run.name}" if i == 0 else f"{f} Δ {run.name}"
                        for f in fields for i, run in enumerate(runs)], "flags"]
    rows, results = [], []
    for cid in sorted(ref.cases):
        missing = [run.name for run in runs[1:] if cid not in run.cases]
        if missing:
            notes.append(f"{cid}: not in {', '.join(missing)}")
            continue
        base = ref.cases[cid]
        cells, flags = [cid], []
        for f in fields:
            b = base.numbers().get(f)
            for i, run in enumerate(runs):
                v = run.cases[cid].numbers().get(f)
                cells.append(num(v) if i == 0 else pct(change(v, b)))
        for run in runs[1:]:
            cur = run.cases[cid]
            for budget in budgets:
                point = budget.check(cur.numbers(), base.numbers())
                verdict = judge(budget, point, cur, base, None, _numbers, NoiseSettings())
                results.append(BudgetResult(budget, verdict.status, f"{run.name} {cid}: {verdict.message}",
                                            verdict.current, verdict.limit))
                if verdict.status in ("fail", "inconclusive"):
                    flags.append(f"{verdict.status.upper()} {budget.text} ({run.name})")
        rows.append(cells + ["; ".join(flags) or "ok"])
    for run in runs[1:]:
        for cid in sorted(set(run.cases) - set(ref.cases)):
            notes.append(f"{cid}: only in {run.name}, not in {ref.name} (nothing to compare with)")
    return header, rows, results, notes


def _units(run: Run, fields: Sequence[str]) -> dict[str, str]:
    """`` (unit)`` per field as the reference run measured it (none for ratios and scores)."""
    out = {}
    for f in fields:
        units = {r.values[f].unit for r in run.cases.values() if f in r.values}
        out[f] = f" ({units.pop()})" if len(units) == 1 and "" not in units else ""
    return out
