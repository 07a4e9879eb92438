"""Typed time and energy details: what the verdicts and reports read, stored as flat JSON objects."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from pytest_llmeff.details import EnergyDetail, TimeDetail, WarmUpDetail, with_samples
from pytest_llmeff.records import CaseRecord, Measurement

BASELINES = Path(__file__).resolve().parent.parent / "baselines"


def test_committed_baselines_read_typed_and_write_back_unchanged():
    files = sorted(BASELINES.glob("*/*.json"))
    assert files
    for path in files:
        for case in json.loads(path.read_text())["cases"].values():
            record = CaseRecord.from_json(case)
            if "time" in case["values"]:
                assert isinstance(record.values["time"].detail, TimeDetail)
            if "energy" in case["values"]:
                assert isinstance(record.values["energy"].detail, EnergyDetail)
            assert record.to_json() == case


def test_time_detail_fields_and_unknown_keys_survive_a_round_trip():
    data = {"workload": "deployment-3", "statistic": "median latency per prompt", "device": "cpu",
            "threads": 1, "samples": [0.5, 0.25], "warmup": {"calls": 3, "seconds": 0.1, "compiles": 0,
                                                              "steady": True},
            "prompts": 3, "max_late_s": 0.0}
    m = Measurement.from_json({"value": 0.5, "unit": "s", "method": "wall clock", "detail": data}, "time")
    assert m.detail.threads == 1 and m.samples == (0.5, 0.25)
    assert m.detail.warmup == WarmUpDetail(3, 0.1, 0, True)
    assert m.detail.extra == {"prompts": 3, "max_late_s": 0.0}
    assert m.to_json()["detail"] == data


def test_other_figures_keep_free_form_details_and_no_samples():
    m = Measurement.from_json({"value": 40.0, "unit": "", "method": "nonoverlap-256",
                               "detail": {"windows": 84, "samples": [1.0]}}, "perplexity")
    assert m.detail == {"windows": 84, "samples": [1.0]} and m.samples == ()


def test_a_rerun_pools_samples_and_counts_itself():
    time = TimeDetail(rounds=2, samples=(1.0, 2.0))
    again = with_samples(time, [1.0, 2.0, 3.0])
    assert (again.rounds, again.reruns, again.samples) == (3, 1, (1.0, 2.0, 3.0))
    assert "reruns" not in time.to_json() and again.to_json()["reruns"] == 1
    energy = with_samples(EnergyDetail(windows=1, samples=(1.0,)), [1.0, 2.0])
    assert (energy.reruns, energy.samples) == (1, (1.0, 2.0))
    assert dataclasses.replace(energy, ci95=(0.5, 1.5)).to_json()["ci95"] == [0.5, 1.5]
