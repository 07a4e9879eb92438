"""The case flow without pytest around it (pytest_llmeff.flow): a session, a pipeline, budgets in;
a checked result out. Runs in-process on the embedded model with short timing windows."""

from __future__ import annotations

import pytest

from pytest_llmeff.budgets import parse_budgets
from pytest_llmeff.compress import Unsupported
from pytest_llmeff.flow import run_cache_case, run_case

pytest.importorskip("torch")


@pytest.fixture
def session(pytester, embedded, tmp_path):
    from pytest_llmeff.options import Options
    from pytest_llmeff.session import Session

    config = pytester.parseconfig("--llmeff", "--llmeff-energy=none", "--llmeff-min-seconds=0.05",
                                  "--llmeff-workload=forward(batch=1, ctx=32)", "--llmeff-eval-windows=8",
                                  f"--llmeff-baselines={tmp_path / 'baselines'}", "--llmeff-reruns=2")
    run = Session(Options.from_config(config), progress=lambda line: None)
    run._base = embedded  # the model loaded once for the whole test run
    yield run
    run.finish(write=False)


def test_the_base_model_is_its_own_reference_and_passes_its_gates_exactly(session):
    pipeline = session.pipeline("base")
    assert pipeline.is_reference and not session.pipeline("nf4").is_reference
    assert session.pipeline("base") is pipeline  # parsed once per run
    result = run_case(session, pipeline, parse_budgets(["perplexity:+0%", "time:+0%"]), "case-base")
    assert result.record.values == result.reference.values and result.record.case_id == "case-base"
    assert result.verdict == "pass"


def test_a_candidate_is_measured_interleaved_with_the_base_and_its_budgets_decide(session):
    checks = parse_budgets(["perplexity:+1000%", "perplexity<=1"])  # one that holds, one that cannot
    result = run_case(session, session.pipeline("layer20"), checks, "case-layer20")
    record, reference = result.record, result.reference
    assert record.method == "layer20" and record.interleaved and not reference.interleaved
    assert "time and energy measured interleaved with the case" in reference.notes
    assert len(record.values["time"].samples) == len(reference.values["time"].samples)
    assert record.values["perplexity"].value > reference.values["perplexity"].value  # a layer fewer
    assert [b.status for b in result.budgets] == ["pass", "fail"] and result.verdict == "fail"


def test_a_method_that_cannot_run_here_raises_unsupported(session, monkeypatch):
    from pytest_llmeff.compress import basic

    monkeypatch.setattr(basic, "_cpu_flags", lambda: {"avx2"})  # a CPU without native 16-bit arithmetic
    with pytest.raises(Unsupported, match="no native bfloat16"):
        run_case(session, session.pipeline("bf16"), [], "case-bf16")
    with pytest.raises(Unsupported, match="gptqmodel's CPU kernel computes in bfloat16"):
        run_case(session, session.pipeline("gptq4"), [], "case-gptq4")


def _forced_checks(session, monkeypatch, status: str, times: int) -> list[int]:
    """Make the first ``times`` checks of ``session`` come out ``status`` on every budget; returns,
    per check, how many time samples the record held (retimings pool more)."""
    from pytest_llmeff.budgets import BudgetResult
    from pytest_llmeff.results import CaseResult

    calls: list[int] = []
    check = session.check

    def forced(record, reference, checks):
        result = check(record, reference, checks)
        calls.append(len(record.values["time"].samples))
        if len(calls) > times:
            return result
        budgets = [BudgetResult(b.budget, status, status, b.current, b.limit) for b in result.budgets]
        return CaseResult(result.case_id, record, reference, result.baseline, result.baseline_note, budgets)

    monkeypatch.setattr(session, "check", forced)
    return calls


def test_an_inconclusive_verdict_is_timed_again_and_the_samples_pooled(session, monkeypatch):
    calls = _forced_checks(session, monkeypatch, "inconclusive", times=2)
    result = run_case(session, session.pipeline("magnitude"), parse_budgets(["perplexity:+1000%"]), "case-mag")
    assert len(calls) == 3 and calls[0] < calls[1] < calls[2]  # each retiming added samples
    assert result.verdict == "pass"


@pytest.mark.parametrize(("metric", "timings"), [("opt", 3), ("perplexity", 1)])
def test_a_failure_on_timing_alone_is_timed_again_before_it_stands(session, monkeypatch, metric, timings):
    """A burst of load lands in one measurement; a real regression in every one. A deterministic
    figure's failure (perplexity) stands without timing anything again."""
    calls = _forced_checks(session, monkeypatch, "fail", times=99)  # every check fails its one budget
    budget = "opt:+1000%" if metric == "opt" else "perplexity:+1000%"
    result = run_case(session, session.pipeline("magnitude"), parse_budgets([budget]), "case-mag")
    assert len(calls) == timings and calls == sorted(set(calls))  # each retiming pooled more samples
    assert result.verdict == "fail"


def test_a_model_with_the_weights_of_one_measured_before_is_not_evaluated_again(session, monkeypatch):
    """ah90 removes no head of the embedded model: its perplexity is the base model's, reused."""
    from pytest_llmeff.measure import case

    evaluated = []
    quality = case.quality_values
    monkeypatch.setattr(case, "quality_values", lambda *a: evaluated.append(1) or quality(*a))
    base = run_case(session, session.pipeline("base"), [], "case-base")
    same = run_case(session, session.pipeline("ah90"), [], "case-ah90")
    other = run_case(session, session.pipeline("magnitude"), [], "case-mag")
    assert len(evaluated) == 2  # base and magnitude; ah90 reused the base model's figures
    ppl = same.record.values["perplexity"]
    assert ppl.value == base.record.values["perplexity"].value and "identical weights" in ppl.detail["evaluated"]
    assert other.record.values["perplexity"].value != ppl.value


def test_the_quality_key_tells_weights_apart(embedded):
    import copy

    import torch

    from pytest_llmeff.measure.case import quality_key
    from pytest_llmeff.measure.spec import MeasureSpec

    spec = MeasureSpec("forward", "nonoverlap-256", 8, 1.0, "cpu", "embedded")
    twin = copy.deepcopy(embedded.model)
    assert quality_key(twin, spec) == quality_key(embedded.model, spec)
    with torch.no_grad():
        next(twin.parameters()).view(-1)[0] += 1e-6  # one weight, barely changed
    assert quality_key(twin, spec) != quality_key(embedded.model, spec)
    assert quality_key(embedded.model, spec) != quality_key(embedded.model, MeasureSpec(
        "forward", "stride-64", 8, 1.0, "cpu", "embedded"))


def test_a_cache_case_checks_answers_against_the_no_cache_answers(session):
    from pytest_llmeff.measure.caching import Replay

    replay = Replay(prompts=2, repeats=2, prompt_tokens=32, new_tokens=4)
    none = run_cache_case(session, "none", [], "case-none", replay=replay)
    static = run_cache_case(session, "static", parse_budgets(["exact_match>=1"]), "case-static", replay=replay)
    assert none.record.values["hit_rate"].value == 0
    assert static.record.values["hit_rate"].value == pytest.approx(2 / 6)  # each repeat of a prompt hits
    assert static.record.values["exact_match"].value == 1 and static.verdict == "pass"
    assert static.record.case_id == "case-static" and static.reference.method == "cache:none"
