"""Gate calibration: how often the baseline gate fails unchanged code, and how often it catches a
real cost regression, on this machine.

    python benchmarks/gate_calibration.py --runs 14            # half the runs with a busy core beside
    python benchmarks/gate_calibration.py --runs 6 --no-load   # quiet runs only

1. Records the baselines of the calibration suite (``benchmarks/gate_calibration/``) with the
   injected regressions switched off (``LLMEFF_INJECT=0``), ``--record`` times (default 3) so the
   baselines carry a measured run-to-run spread, into a temporary baselines folder.
2. Runs the suite ``--runs`` times, each a fresh ``pytest --llmeff`` process, every other one while
   another process keeps one core busy (``python -c "while True: pass"``), as the README's gate
   would run in CI: ``opt<=baseline+10%`` and ``perplexity<=baseline+0.5%``.
3. Counts, per case, failures and inconclusive verdicts: for the unchanged cases every failure is
   a false failure; for ``inject(pct=5|10|20)`` (the base model with 5, 10, 20 % more real compute
   per call) a failure is a caught regression.

Each pytest run holds ``/tmp/llmeff-heavy.lock`` (flock) so other heavy work on the machine waits.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "benchmarks" / "gate_calibration"
LOCK = Path("/tmp/llmeff-heavy.lock")


@contextlib.contextmanager
def _heavy_lock():
    with open(LOCK, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _pytest(baselines: Path, out: Path, *extra: str, env: dict[str, str] | None = None) -> dict:
    cmd = [sys.executable, "-m", "pytest", "--llmeff", str(SUITE), "-q", "-p", "no:cacheprovider",
           f"--llmeff-baselines={baselines}", f"--llmeff-json={out}", "--llmeff-reruns=2", *extra]
    with _heavy_lock():
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True)
        seconds = time.perf_counter() - started
    if not out.exists():
        sys.exit(f"pytest wrote no run file (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    data = json.loads(out.read_text())
    data["seconds"] = seconds
    return data


def _case_name(case_id: str) -> str:
    return case_id.split("[", 1)[1].rstrip("]") if "[" in case_id else case_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=14, help="gate runs (fresh processes)")
    parser.add_argument("--record", type=int, default=3, help="baseline update runs before the gate runs")
    parser.add_argument("--no-load", action="store_true", help="no run with a busy core beside it")
    parser.add_argument("--out", type=Path, default=None, help="write every run's verdicts and ratios here (JSON)")
    parser.add_argument("--baselines", type=Path, default=None,
                        help="reuse this baselines folder (of an earlier calibration) instead of recording one")
    parser.add_argument("--first", type=int, default=0, help="number of the first run (to continue a series)")
    parser.add_argument("--tally", type=Path, nargs="+", default=None,
                        help="only count the run files (run*.json) already in these calibration folders")
    args = parser.parse_args()
    if args.tally:
        _report(_tally(args.tally, args.no_load, args.baselines))
        return

    work = Path(tempfile.mkdtemp(prefix="llmeff-calibration-"))
    baselines = args.baselines or work / "baselines"
    for i in range(0 if args.baselines else args.record):
        data = _pytest(baselines, work / f"record{i}.json", "--llmeff-update-baselines", env={"LLMEFF_INJECT": "0"})
        print(f"[calibration] baseline update {i + 1}/{args.record}: {data['seconds']:.0f} s", flush=True)
    stored = json.loads(next(baselines.glob("*/*.json")).read_text())["cases"]

    rows: list[dict] = []
    for i in range(args.first, args.first + args.runs):
        loaded = not args.no_load and i % 2 == 1
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if loaded else None
        try:
            data = _pytest(baselines, work / f"run{i}.json")
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
        rows += _rows({**data, "expected": list(stored)}, stored, i, loaded)
        print(f"[calibration] run {i + 1}/{args.first + args.runs}{' (busy core beside)' if loaded else ''}: "
              f"{data['seconds']:.0f} s; " + ", ".join(f"{_case_name(c)} {v}" for c, v in data["verdicts"].items()),
              flush=True)
    _report(rows)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")


def _rows(data: dict, stored: dict, run: int, loaded: bool) -> list[dict]:
    rows = []
    for cid, verdict in data["verdicts"].items():
        opt = data["cases"][cid].get("opt", {}).get("run")
        base = stored.get(cid, {}).get("opt", {}).get("run")
        rows.append({"run": run, "loaded": loaded, "case": _case_name(cid), "verdict": verdict,
                     "opt_ratio": opt / base if opt and base else None})
    for cid in data.get("expected", ()):  # a case without a verdict ended in an error
        if cid not in data["verdicts"]:
            rows.append({"run": run, "loaded": loaded, "case": _case_name(cid), "verdict": "error", "opt_ratio": None})
    return rows


def _tally(folders: list[Path], no_load: bool, baselines: Path | None) -> list[dict]:
    rows = []
    for folder in folders:
        stored = json.loads(next((baselines or folder / "baselines").glob("*/*.json")).read_text())["cases"]
        for path in sorted(folder.glob("run*.json"), key=lambda p: int(p.stem[3:])):
            i = int(path.stem[3:])
            data = json.loads(path.read_text())
            data.setdefault("expected", list(stored))
            rows += _rows(data, stored, i, not no_load and i % 2 == 1)
    return rows


def _report(rows: list[dict]) -> None:
    print("\ncase                 runs  fail  inconclusive  error  opt / baseline: median  min     max")
    for case in dict.fromkeys(r["case"] for r in rows):
        mine = [r for r in rows if r["case"] == case]
        ratios = [r["opt_ratio"] for r in mine if r["opt_ratio"]]
        fails = sum(r["verdict"] == "fail" for r in mine)
        undecided = sum(r["verdict"] == "inconclusive" for r in mine)
        errors = sum(r["verdict"] == "error" for r in mine)
        spread = (f"{statistics.median(ratios):.3f}  {min(ratios):.3f}  {max(ratios):.3f}" if ratios else "–")
        print(f"{case:<20} {len(mine):>4}  {fails:>4}  {undecided:>12}  {errors:>5}  {spread}")
    unchanged = [r for r in rows if not r["case"].startswith("inject")]
    print(f"\nunchanged code: {sum(r['verdict'] == 'fail' for r in unchanged)} false failures in "
          f"{len(unchanged)} case-runs ({sum(r['loaded'] for r in unchanged)} with a busy core beside)")
    for pct in (5, 10, 20):
        trials = [r for r in rows if r["case"] == f"inject(pct={pct})"]
        if trials:
            caught = sum(r["verdict"] == "fail" for r in trials)
            print(f"injected +{pct} %: failed in {caught}/{len(trials)} runs ({caught / len(trials):.0%})")


if __name__ == "__main__":
    main()
