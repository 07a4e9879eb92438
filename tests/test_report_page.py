"""The HTML report beyond its tables: the run's identity (machine, commit, date, versions), what a
run file records for it, the plots' points and budget lines, verdict colours and reasons.
In-process, from the hand-built results of test_summary (figures of a real run, rounded)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_summary import CACHE, FWD, broken, default_run

from pytest_llmeff.compare import load_run
from pytest_llmeff.fingerprint import machine_fingerprint
from pytest_llmeff.report_files import write_run_outputs
from pytest_llmeff.rows import rows_of
from pytest_llmeff.run_info import run_environment


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_the_run_environment_names_the_commit_and_whether_it_had_changes(tmp_path):
    when = dt.datetime(2026, 11, 24, 5, 8, tzinfo=dt.timezone.utc)
    outside = run_environment(tmp_path, when)
    assert outside["created"] == "2026-11-24T05:08:00+00:00" and "commit" not in outside
    assert outside["versions"]["pytest"] == pytest.__version__
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("a")
    _git(tmp_path, "add", "a.txt")
    _git(tmp_path, "commit", "-q", "-m", "a")
    clean = run_environment(tmp_path, when)
    assert clean["commit"] == _git(tmp_path, "rev-parse", "HEAD") and clean["dirty"] is False
    (tmp_path / "a.txt").write_text("b")
    assert run_environment(tmp_path, when)["dirty"] is True


@pytest.fixture
def run_file(tmp_path: Path) -> Path:
    options = SimpleNamespace(json_path=tmp_path / "run.json", report_dir=None, markdown_path=None,
                              model=SimpleNamespace(name="embedded"))
    write_run_outputs(broken(default_run()), options, machine_fingerprint("cpu"), "cpu")
    return tmp_path / "run.json"


def test_a_run_file_keeps_each_case_s_budgets_and_the_run_s_environment(run_file):
    results = broken(default_run())
    run = load_run(run_file)
    nf4 = next(r for r in results if r.record.method == "nf4" and r.record.workload.startswith("forward"))
    assert run.budgets[nf4.case_id] == nf4.budgets
    assert len(run.budgets) == len(results)
    assert run.model == "embedded" and run.device == "cpu"
    assert run.environment["created"].startswith(str(dt.date.today().year))
    assert "versions" in run.environment
    data = json.loads(run_file.read_text())
    assert data["version"] == 1  # new keys are optional: older readers ignore them
    del data["budgets"], data["environment"]
    run_file.write_text(json.dumps(data))
    old = load_run(run_file)
    assert old.budgets == {} and old.environment == {}


def test_rows_carry_budget_limits_as_changes_against_the_reference():
    rows = {(r.label, r.workload): r for r in rows_of(broken(default_run()))}
    nf4 = rows[("nf4", FWD)]
    ppl = next(m for m in nf4.marks if m.text == "perplexity:+0.1%")
    assert (ppl.kind, ppl.status, ppl.limit) == ("base", "fail", 46.39)
    assert ppl.delta == pytest.approx(46.39 / 46.35 - 1) and ppl.origin == pytest.approx(46.39 / 1.001)
    assert not any(m.text.startswith("opt<=baseline") for m in nf4.marks)  # missing: no limit to draw
    assert rows[("base", FWD)].marks == ()


def test_delta_intervals_come_from_the_samples_and_hold_the_figure():
    import dataclasses

    from pytest_llmeff.details import TimeDetail
    from pytest_llmeff.rows import make_row

    base, kd = (r for r in default_run() if r.record.method in ("base", "kd") and r.record.workload == FWD)

    def sampled(record, seconds):
        time = dataclasses.replace(record.record.values["time"], value=sorted(seconds)[len(seconds) // 2],
                                   detail=TimeDetail(workload=FWD, samples=tuple(seconds)))
        return dataclasses.replace(record.record, values={**record.record.values, "time": time})

    ref = sampled(base, [0.0370 + 0.0002 * i for i in range(11)])
    row = make_row(sampled(kd, [0.0221 + 0.0001 * (i % 5) for i in range(11)]), ref, "pass")
    low, high = row.intervals["time"]
    assert low < row.delta["time"] < high and high - low < 0.05
    assert make_row(ref, ref, "pass").intervals == {}  # the reference against itself: exact


def test_big_figures_are_written_out_and_the_energy_split_picks_its_units():
    from pytest_llmeff.rows import energy_table, num

    assert (num(11850.0), num(1185.04), num(0.5319, 1e3)) == ("11850", "1185", "531.9")
    rows = [r for r in rows_of(default_run()) if r.workload == CACHE]
    header, cells = energy_table(rows)
    assert header[:3] == ["case", "cpu J", "ram J"] and "mJ/token" in header and "gpu J" not in header
    assert not any("e+" in c for row in cells for c in row)
