"""The ``llmeff`` command: compare saved runs, render reports from them.

    llmeff compare base.json candidate.json --fail time:+10% --fail perplexity:+1%
    llmeff compare .benchmarks/*/0001_*.json .benchmarks/*/0002_*.json
    llmeff report run.json --out report/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _compare(args: argparse.Namespace) -> int:
    from pytest_llmeff.compare import CompareError, compare, load_run
    from pytest_llmeff.report import format_table

    try:
        runs = [load_run(Path(p)) for p in args.runs]
        header, rows, results, notes = compare(runs, args.fail, tuple(args.fields.split(",")), args.force)
    except CompareError as exc:
        print(f"llmeff compare: {exc}", file=sys.stderr)
        return 2
    for line in format_table(header, rows):
        print(line)
    for note in notes:
        print(note)
    failed = [r for r in results if r.status == "fail"]
    undecided = [r for r in results if r.status == "inconclusive"]
    for r in failed + undecided:
        print(f"[{r.status}] {r.message}")
    if args.fail:
        print(f"{len(failed)} failed, {len(undecided)} inconclusive, "
              f"{len(results) - len(failed) - len(undecided)} within thresholds")
    return 1 if failed else 0


def _report(args: argparse.Namespace) -> int:
    import datetime as dt

    from pytest_llmeff.compare import CompareError, load_run
    from pytest_llmeff.report_files import write_report
    from pytest_llmeff.report_page import RunIdentity
    from pytest_llmeff.rows import rows_of_run

    try:
        run = load_run(Path(args.run))
    except CompareError as exc:
        print(f"llmeff report: {exc}", file=sys.stderr)
        return 2
    # A file from before runs recorded their date: its modification time is the best date there is.
    written = dt.datetime.fromtimestamp(Path(args.run).stat().st_mtime, dt.timezone.utc)
    identity = RunIdentity(run.model, run.device, run.fingerprint, run.environment, str(args.run), written)
    title = f"pytest-llmeff: {run.model} on {run.device} ({run.name})" if run.model else f"pytest-llmeff run {run.name}"
    try:
        rows = rows_of_run(run.cases, run.verdicts, run.references, run.reasons, run.budgets)
        paths = write_report(list(run.cases.values()), Path(args.out), rows, title, identity=identity)
    except OSError as exc:
        print(f"llmeff report: cannot write {exc.filename or args.out}: {exc.strerror or exc}; "
              "choose a writable folder with --out", file=sys.stderr)
        return 2
    for p in paths:
        print(p)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmeff", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    cmp = sub.add_parser("compare", help="compare saved runs (the first is the reference)")
    cmp.add_argument("runs", nargs="+", help="--llmeff-json run files or pytest-benchmark saved runs")
    cmp.add_argument("--fail", action="append", default=[], metavar="FIELD:+N%",
                     help="fail when a case moves past this against the first run (repeatable)")
    cmp.add_argument("--fields", default="perplexity,time,energy,opt", help="columns to show")
    cmp.add_argument("--force", action="store_true", help="compare runs from different hardware anyway")
    cmp.set_defaults(func=_compare)
    rep = sub.add_parser("report", help="markdown + HTML report with plots from a run file")
    rep.add_argument("run", help="a --llmeff-json run file or a pytest-benchmark saved run")
    rep.add_argument("--out", default="llmeff-report", help="output folder")
    rep.set_defaults(func=_report)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
