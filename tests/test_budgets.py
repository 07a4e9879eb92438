"""Budgets: parsing (with clear errors) and direction-aware checks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmeff.budgets import Budget, BudgetError, parse_budgets
from pytest_llmeff.cases import budgets_for, merge_budgets


@pytest.mark.parametrize(
    ("text", "metric", "reference", "op"),
    [
        ("perplexity:+5%", "perplexity", "base", "<="),
        ("mmlu:-2pt", "mmlu", "base", ">="),
        ("time:-20%", "time", "base", "<="),
        ("opt<=baseline", "opt", "baseline", "<="),
        ("opt.energy <= baseline + 5%", "opt.energy", "baseline", "<="),
        ("perplexity<=40", "perplexity", "absolute", "<="),
        ("arc_challenge>=0.3", "arc_challenge", "absolute", ">="),
    ],
)
def test_parse(text, metric, reference, op):
    b = Budget.parse(text)
    assert (b.metric, b.reference, b.op) == (metric, reference, op)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("perplexity:5%", "needs a sign"),
        ("perplexity<<5", "malformed budget"),
        ("perplexty:+5%", "did you mean 'perplexity'"),
        ("opt.fast<=baseline", "unknown opt preset 'fast'"),
        ("opt<=baselin", "malformed budget"),
        ("", "malformed budget"),
    ],
)
def test_malformed_budgets_say_why(text, message):
    with pytest.raises(BudgetError, match=message):
        Budget.parse(text)


def test_drift_is_direction_aware():
    base = {"perplexity": 20.0, "mmlu": 0.50, "time": 1.0}
    ok = {"perplexity": 20.9, "mmlu": 0.485, "time": 0.79}
    bad = {"perplexity": 21.1, "mmlu": 0.475, "time": 0.81}
    for text in ("perplexity:+5%", "mmlu:-2pt", "time:-20%"):
        b = Budget.parse(text)
        assert b.check(ok, base).status == "pass", text
        result = b.check(bad, base)
        assert result.status == "fail", text
        assert "base model" in result.message and "off by" in result.message


def test_baseline_bound_and_missing_baseline():
    b = Budget.parse("opt<=baseline+10%")
    assert b.check({"opt": 1.05}, baseline={"opt": 1.0}).status == "pass"
    failed = b.check({"opt": 1.2}, baseline={"opt": 1.0})
    assert failed.failed and "stored baseline 1 +10%" in failed.message
    missing = b.check({"opt": 1.2}, baseline=None)
    assert missing.status == "missing" and not missing.failed


def test_absolute_and_metric_absent():
    assert Budget.parse("perplexity<=40").check({"perplexity": 39.0}).status == "pass"
    assert Budget.parse("perplexity<40").check({"perplexity": 40.0}).status == "fail"
    assert Budget.parse("mmlu:-2pt").check({"perplexity": 1.0}, {"mmlu": 0.5}).status == "missing"


def test_parse_budgets_accepts_semicolons_and_lists():
    assert [b.metric for b in parse_budgets("perplexity:+5%; opt<=baseline")] == ["perplexity", "opt"]
    assert len(parse_budgets(["time:+0%"])) == 1


def test_case_budgets_replace_defaults_on_the_same_metric():
    defaults = parse_budgets(["perplexity:+5%", "opt<=baseline"])
    own = budgets_for({"nf4": ["perplexity:+20%"], "*": []}, "nf4")
    merged = merge_budgets(defaults, own)
    assert [b.text for b in merged] == ["opt<=baseline", "perplexity:+20%"]
    assert budgets_for({"*": ["time:+0%"]}, "int8")[0].text == "time:+0%"
    # A case's own entries replace the "*" ones on the same metric and keep the rest.
    mixed = budgets_for({"*": ["perplexity:+5%", "opt<=baseline"], "kd": ["perplexity:+30%"]}, "kd")
    assert [b.text for b in mixed] == ["opt<=baseline", "perplexity:+30%"]


@given(base=st.floats(1, 1e4), pct=st.floats(0, 100), cur=st.floats(1, 2e4))
def test_relative_drift_passes_exactly_within_the_bound(base, pct, cur):
    b = Budget.parse(f"perplexity:+{pct}%")
    limit = base * (1 + pct / 100)
    assert (b.check({"perplexity": cur}, {"perplexity": base}).status == "pass") == (cur <= limit)
