"""Baseline files: written only on request, atomically, merged under a lock; bad files refused untouched."""

from __future__ import annotations

import json
import threading

import pytest

from pytest_llmeff.fingerprint import fingerprint_id, machine_fingerprint
from pytest_llmeff.records import CaseRecord, Measurement
from pytest_llmeff.store import BaselineError, BaselineStore


def record(case_id: str, ppl: float = 30.0) -> CaseRecord:
    return CaseRecord(case_id, "nf4", "embedded", "cpu", "float32", "forward-1x256",
                      {"perplexity": Measurement(ppl, "", "nonoverlap-256"),
                       "time": Measurement(0.01, "s", "perf_counter wall clock")},
                      opt={"balanced": 0.9, "run": 0.9})


@pytest.fixture
def fp():
    return machine_fingerprint("cpu")


def test_missing_file_is_empty_and_not_created(tmp_path, fp):
    store = BaselineStore(tmp_path / "baselines", fp, "embedded")
    assert store.load() == {} and store.get("x") is None
    assert not (tmp_path / "baselines").exists()


def test_write_then_read_round_trip(tmp_path, fp):
    store = BaselineStore(tmp_path, fp, "embedded")
    changes = store.write({"a": record("a")})
    assert changes[0].old is None and changes[0].new["perplexity"] == 30.0
    again = BaselineStore(tmp_path, fp, "embedded")
    assert again.get("a") == record("a")
    assert store.path.parent.name == fingerprint_id(fp)
    assert not list(store.path.parent.glob("*.tmp"))  # the temporary file was renamed into place


def test_update_reports_old_values_and_keeps_other_cases(tmp_path, fp):
    store = BaselineStore(tmp_path, fp, "embedded")
    store.write({"a": record("a"), "b": record("b")})
    changes = BaselineStore(tmp_path, fp, "embedded").write({"a": record("a", 31.0)})
    assert changes[0].old["perplexity"] == 30.0 and changes[0].new["perplexity"] == 31.0
    assert set(BaselineStore(tmp_path, fp, "embedded").load()) == {"a", "b"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        (json.dumps({"hello": 1}), "is not a pytest-llmeff baseline file"),
        (json.dumps({"schema": "pytest-llmeff/baselines", "version": 99, "cases": {}, "fingerprint": {}}),
         "format version 99"),
        (json.dumps({"schema": "pytest-llmeff/baselines", "version": 1, "cases": {"a": {"x": 1}},
                     "fingerprint": None}), "missing its"),
    ],
)
def test_corrupt_or_foreign_files_are_refused_and_untouched(tmp_path, fp, content, message):
    store = BaselineStore(tmp_path, fp, "embedded")
    store.path.parent.mkdir(parents=True)
    store.path.write_text(content)
    with pytest.raises(BaselineError, match=message):
        store.load()
    with pytest.raises(BaselineError):
        store.write({"a": record("a")})
    assert store.path.read_text() == content


def test_file_from_other_hardware_is_refused(tmp_path, fp):
    store = BaselineStore(tmp_path, fp, "embedded")
    store.write({"a": record("a")})
    data = json.loads(store.path.read_text())
    data["fingerprint"]["cpu"] = "Some Other CPU"
    store.path.write_text(json.dumps(data))
    with pytest.raises(BaselineError, match="recorded on other hardware"):
        BaselineStore(tmp_path, fp, "embedded").load()


def test_other_machines_are_listed(tmp_path, fp):
    other = dict(fp, cpu="Other CPU")
    BaselineStore(tmp_path, other, "embedded").write({"a": record("a")})
    assert BaselineStore(tmp_path, fp, "embedded").other_machines() == [fingerprint_id(other)]


def test_concurrent_writers_merge_instead_of_losing_cases(tmp_path, fp):
    def write(i: int) -> None:
        BaselineStore(tmp_path, fp, "embedded").write({f"case{i}": record(f"case{i}")})

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(BaselineStore(tmp_path, fp, "embedded").load()) == {f"case{i}" for i in range(8)}
