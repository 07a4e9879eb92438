"""Noise-aware verdicts and the compare view, on synthetic records with known sample spreads."""

from __future__ import annotations

import json
import random

import pytest

from pytest_llmeff.budgets import Budget
from pytest_llmeff.compare import CompareError, compare, load_run
from pytest_llmeff.details import TimeDetail
from pytest_llmeff.records import CaseRecord, Measurement
from pytest_llmeff.verdicts import judge


def record(case_id: str, median_s: float, spread: float, seed: int, method: str = "nf4", n: int = 20) -> CaseRecord:
    rng = random.Random(seed)
    samples = [median_s * (1 + rng.uniform(-spread, spread)) for _ in range(n)]
    values = {"time": Measurement(sorted(samples)[n // 2], "s", "perf_counter wall clock",
                                  detail=TimeDetail(samples=tuple(samples))),
              "perplexity": Measurement(40.0, "", "nonoverlap-256"),
              "energy": Measurement(1.0, "J", "codecarbon-estimate", True)}
    return CaseRecord(case_id, method, "embedded", "cpu", "float32", "forward-1x256", values)


def plain(rec, overrides, _ref):
    return rec.numbers() | dict(overrides)


def verdict(text, cur, ref):
    budget = Budget.parse(text)
    return judge(budget, budget.check(cur.numbers(), ref.numbers()), cur, ref, None, plain).status


def test_clear_regression_fails_and_clear_margin_passes():
    ref = record("c", 0.010, 0.05, 1)
    assert verdict("time:+10%", record("c", 0.013, 0.05, 2), ref) == "fail"
    assert verdict("time:+10%", record("c", 0.0095, 0.05, 3), ref) == "pass"


def test_noise_straddling_the_limit_is_inconclusive_not_failed():
    ref = record("c", 0.010, 0.30, 1)
    # Median 10 % slower exactly at the limit, with ±30 % noise: the data cannot decide.
    assert verdict("time:+10%", record("c", 0.011, 0.30, 2), ref) == "inconclusive"


def test_budgets_without_samples_keep_the_plain_verdict():
    ref, cur = record("c", 0.01, 0.05, 1), record("c", 0.01, 0.05, 2)
    assert verdict("perplexity:+5%", cur, ref) == "pass"


def _run_file(tmp_path, name, records, cpu="AMD EPYC"):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"schema": "pytest-llmeff/run", "version": 1,
                                "fingerprint": {"cpu": cpu, "cores": 2, "accelerator": "none", "extra": {}},
                                "cases": {r.case_id: r.to_json() for r in records}}))
    return path


def test_compare_flags_exactly_the_slowed_case(tmp_path):
    a = _run_file(tmp_path, "a", [record("x", 0.01, 0.05, 1), record("y", 0.02, 0.05, 2)])
    b = _run_file(tmp_path, "b", [record("x", 0.01, 0.05, 3), record("y", 0.04, 0.05, 4)])
    header, rows, results, notes = compare([load_run(a), load_run(b)], ["time:+25%"])
    flagged = {r.message.split()[1].rstrip(":") for r in results if r.status == "fail"}
    assert flagged == {"y"}
    assert rows[1][0] == "y" and "FAIL" in rows[1][-1] and rows[0][-1] == "ok"
    assert "time (s) a" in header and "perplexity a" in header  # units where the figure has one


def test_compare_names_cases_that_only_one_side_has(tmp_path):
    a = _run_file(tmp_path, "a", [record("x", 0.01, 0.05, 1), record("gone", 0.01, 0.05, 2)])
    b = _run_file(tmp_path, "b", [record("x", 0.01, 0.05, 3), record("new", 0.01, 0.05, 4)])
    _, rows, _, notes = compare([load_run(a), load_run(b)])
    assert [r[0] for r in rows] == ["x"]
    assert "gone: not in b" in notes and "new: only in b, not in a (nothing to compare with)" in notes


def test_a_pytest_benchmark_run_is_named_by_its_counter(tmp_path):
    info = {"llmeff": record("x", 0.01, 0.05, 1).to_json() | {"verdict": "pass"}}
    path = tmp_path / "0007_5cd125baa5a3381cb3bf335bd94e032f66ab8194_20261124_071900.json"
    path.write_text(json.dumps({"benchmarks": [{"name": "x", "fullname": "x", "extra_info": info}]}))
    assert load_run(path).name == "0007"


def test_compare_refuses_other_hardware_unless_forced(tmp_path):
    a = _run_file(tmp_path, "a", [record("x", 0.01, 0.05, 1)])
    b = _run_file(tmp_path, "b", [record("x", 0.01, 0.05, 2)], cpu="Intel Xeon")
    with pytest.raises(CompareError, match="other hardware.*--force"):
        compare([load_run(a), load_run(b)])
    _, _, _, notes = compare([load_run(a), load_run(b)], force=True)
    assert notes and notes[0].startswith("FORCED")


@pytest.mark.parametrize(("content", "message"), [
    ("{broken", "cannot read run file"),
    ('{"schema": "something-else"}', "neither a pytest-llmeff run file"),
    ('{"benchmarks": [{"name": "t", "extra_info": {}}]}', "without llmeff figures"),
    ('{"schema": "pytest-llmeff/run", "cases": {"a": {"oops": 1}}}', "malformed run file"),
])
def test_corrupt_run_files(tmp_path, content, message):
    path = tmp_path / "run.json"
    path.write_text(content)
    with pytest.raises(CompareError, match=message):
        load_run(path)
