"""Warm-up to steady state, call-by-call interleaving, the thread policy, and the gate's verdict
against a stored baseline (between-run noise), on synthetic inputs with known answers."""

from __future__ import annotations

import dataclasses
import random
import time

import pytest

from pytest_llmeff.budgets import Budget
from pytest_llmeff.details import TimeDetail
from pytest_llmeff.measure import latency, steady, threads
from pytest_llmeff.records import CaseRecord, Measurement
from pytest_llmeff.verdicts import NoiseSettings, judge, run_spread, with_history


def test_warm_up_waits_for_first_use_work_to_end():
    steady.compile_events()  # its first call imports torch's compiler: not part of this test
    delays = iter([0.040, 0.032, 0.025, 0.019, 0.014, 0.010, 0.007, 0.005])  # a cache filling call by call

    def speeding_up() -> None:
        time.sleep(next(delays, 0.004))

    warm = steady.warm_up([speeding_up])
    assert warm.steady and warm.calls >= 11  # 8 faster and faster calls, then two windows of 3 steady ones
    assert warm.estimate_s[0] < 0.006


def test_warm_up_sees_torch_compile_and_gives_up_honestly():
    torch = pytest.importorskip("torch")
    compiled = torch.compile(lambda x: (x * 2).sum(), backend="eager")
    shapes = iter(range(1, 10_000))

    def recompiling() -> None:  # a new shape each call: dynamo captures a new graph every time
        compiled(torch.ones(next(shapes)))

    before = steady.compile_events()
    warm = steady.warm_up([recompiling], max_s=1.0)
    assert steady.compile_events() > before
    assert warm.compiles > 0
    if not warm.steady:  # dynamo may mark the shape dynamic and stop recompiling: then it settles
        assert "did not reach a steady state" in warm.note()


def test_pedantic_makes_one_extra_call_only_with_iterations():
    assert latency.calls_inside_pedantic(latency.TimingPlan(5, 4, 0, 0.0)) == 21
    assert latency.calls_inside_pedantic(latency.TimingPlan(5, 1, 0, 0.0)) == 5


def test_thread_policy_leaves_a_core_and_reads_the_cgroup_quota(tmp_path):
    assert threads.auto_threads(2) == 1 and threads.auto_threads(1) == 1 and threads.auto_threads(16) == 15
    quota = tmp_path / "cpu.max"
    quota.write_text("100000 100000\n")
    assert threads.usable_cores(quota) == 1
    quota.write_text("max 100000\n")
    assert threads.usable_cores(quota) >= 1


# ----------------------------------------------------------------------- verdicts against a baseline
def _record(opt: float, samples: list[float] | None = None, perplexity: float = 40.0,
            history: dict | None = None) -> CaseRecord:
    values = {"perplexity": Measurement(perplexity, "", "nonoverlap-256"),
              "time": Measurement(0.01, "s", "perf_counter wall clock, in windows A B B A with the base model, "
                                  "every call timed", detail=TimeDetail(samples=tuple(samples or [0.01] * 20)))}
    return CaseRecord("c", "nf4", "embedded", "cpu", "float32", "forward-1x256", values,
                      opt={"run": opt}, history=history or {})


def _numbers(rec, overrides, reference):
    out = rec.numbers() | dict(overrides)
    if reference is not None:  # opt follows the resampled time ratio, as the real scorer's does
        out["opt"] = rec.opt["run"] * out["time"] / reference["time"]
    return out


def _verdict(current: CaseRecord, baseline: CaseRecord, text: str = "opt<=baseline+10%", paired: bool = True) -> str:
    budget = Budget.parse(text)
    point = budget.check(current.numbers(), None, baseline.numbers())
    return judge(budget, point, current, current, baseline, _numbers, NoiseSettings(), paired=paired).status


def test_base_judged_against_itself_is_exact():
    rng = random.Random(0)
    base = _record(1.0, [0.01 * (1 + rng.uniform(-0.3, 0.3)) for _ in range(30)])
    budget = Budget.parse("opt:+0%")
    point = budget.check(base.numbers(), base.numbers())
    assert judge(budget, point, base, base, None, _numbers, NoiseSettings(), paired=True).status == "pass"


def test_unchanged_code_within_the_run_to_run_spread_never_fails():
    assert _verdict(_record(1.06), _record(1.0)) == "pass"  # inside the budget
    rng = random.Random(1)
    noisy = [0.01 * (1 + rng.uniform(-0.6, 0.6)) for _ in range(15)]
    # past it, within its own noise (resampled unpaired: the case's calls spread by ±60 %)
    assert _verdict(_record(1.12, noisy), _record(1.0), paired=False) == "inconclusive"
    # past it, and 11.3 % off: beyond 2.5 σ, σ = 3 % for this run ⊕ 3 % for a baseline recorded once
    assert _verdict(_record(1.12), _record(1.0)) == "fail"
    # 10.6 % above a baseline recorded once (what an unchanged case read in three runs in a row
    # against a lucky baseline): within 2.5 σ of the difference of two single runs
    assert _verdict(_record(1.106), _record(1.0)) == "inconclusive"


def test_the_baseline_level_is_the_mean_of_its_recorded_runs():
    # The stored value came out 15 % low once; the two runs recorded before it did not.
    lucky = _record(0.85, history={"opt": (1.0, 1.0)})
    assert _verdict(_record(1.0), lucky) == "inconclusive"  # past 0.85 + 10 %, but at the level
    assert _verdict(_record(1.25), lucky) == "fail"
    # Three agreeing runs pin the level down (σ = 3 % ⊕ 3 %/√3): 12 % above it is a regression.
    steady = _record(1.0, history={"opt": (1.01, 0.99)})
    assert _verdict(_record(1.12), steady) == "fail"


def test_a_budget_that_demands_an_improvement_fails_when_clearly_missed():
    assert _verdict(_record(1.0), _record(1.0), "opt<=baseline-50%") == "fail"  # same value, far past the limit
    assert _verdict(_record(1.0), _record(1.0), "perplexity<=baseline-1%") == "fail"  # deterministic: no noise


def test_a_clear_regression_fails():
    assert _verdict(_record(1.25), _record(1.0)) == "fail"
    assert _verdict(_record(1.25), _record(1.0), "opt<=baseline+30%") == "pass"


def test_measured_spread_replaces_the_default_only_upwards():
    noisy = _record(1.0, history={"opt": (0.8, 1.25, 1.1)})
    spread, how = run_spread(noisy, "opt", 0.03)
    assert spread > 0.1 and "4 recorded runs" in how
    assert _verdict(_record(1.25), noisy) == "inconclusive"  # the machine's own spread covers it
    assert run_spread(_record(1.0, history={"opt": (1.0, 1.0)}), "opt", 0.03)[0] == 0.03
    assert run_spread(_record(1.0), "perplexity", 0.03)[0] == 0.0  # deterministic


def test_history_carries_over_only_for_the_same_model():
    old = _record(1.0, history={"opt": (0.98,)})
    assert with_history(old, _record(1.02)).history["opt"] == (0.98, 1.0)
    assert with_history(old, _record(1.02, perplexity=41.0)).history == {}  # another model: afresh
    assert with_history(None, _record(1.02)).history == {}
    other = _record(1.0)
    other = dataclasses.replace(other, values={**other.values, "time": dataclasses.replace(
        other.values["time"], detail=dataclasses.replace(other.values["time"].detail, threads=2))})
    assert with_history(other, _record(1.02)).history == {}  # timed with another thread count


def test_history_starts_afresh_when_a_task_score_or_its_protocol_changes():
    """The opt score holds the task scores: a changed task (more items) makes earlier opts another measure."""
    def scored(value: float, method: str = "lm-eval llmeff_docs_mc v2.0 0-shot acc_norm",
               old: bool = False) -> CaseRecord:
        rec = _record(1.0, history={"opt": (0.98,)} if old else None)
        return dataclasses.replace(rec, values={**rec.values, "llmeff_docs_mc": Measurement(value, "", method)})

    assert with_history(scored(0.4, old=True), scored(0.4)).history["opt"] == (0.98, 1.0)
    assert with_history(scored(0.4, old=True), scored(0.41)).history == {}
    assert with_history(scored(0.4, "lm-eval llmeff_docs_mc v1.0 0-shot acc_norm, first 120 documents", old=True),
                        scored(0.4)).history == {}
    assert with_history(_record(1.0, history={"opt": (0.98,)}), scored(0.4)).history == {}  # a task added


def test_a_baseline_of_another_task_definition_is_not_compared():
    """A stored opt that held another task (items, shots, version) or no task is another measure."""
    from types import SimpleNamespace

    from pytest_llmeff.judge import Judge

    def scored(method: str | None) -> CaseRecord:
        rec = _record(1.0)
        extra = {"llmeff_docs_mc": Measurement(0.4, "", method)} if method else {}
        return dataclasses.replace(rec, values={**rec.values, **extra})

    now = "lm-eval llmeff_docs_mc v2.0 0-shot acc_norm"
    for stored, comparable in ((now, True), ("lm-eval llmeff_docs_mc v1.0 0-shot acc_norm, first 120 documents", False),
                               (None, False)):
        store = SimpleNamespace(get=lambda cid, s=stored: scored(s), other_machines=lambda: [])
        baseline, why = Judge.baseline_for(SimpleNamespace(store=store), scored(now))
        assert (baseline is not None) == comparable, why
        if not comparable:
            assert why.startswith("stored baseline not comparable: llmeff_docs_mc")
