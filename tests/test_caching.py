"""Caching strategies on the embedded model: what they reuse and what that does to the answers."""

from __future__ import annotations

import pytest

from pytest_llmeff.measure.caching import CacheError, Replay, answer_all, parse_strategy, rouge_l


@pytest.fixture(scope="module")
def replay(heldout_ids):
    return Replay(prompts=3, repeats=2, prompt_tokens=48, new_tokens=6).build(heldout_ids)


@pytest.fixture(scope="module")
def reference(embedded, replay):
    return answer_all(parse_strategy("none"), embedded.model, replay, 6)


def test_replay_list_is_fixed_and_holds_repeats_and_near_duplicates(heldout_ids):
    r = Replay(prompts=3, repeats=2, prompt_tokens=48)
    first, second = r.build(heldout_ids), r.build(heldout_ids)
    assert first == second and len(first) == 3 * 2 + 3
    assert len({tuple(p) for p in first}) == 6  # 3 prompts + 3 near-duplicates


def test_static_cache_hits_repeats_and_keeps_the_answers(embedded, replay, reference):
    strategy = parse_strategy("static")
    answers = answer_all(strategy, embedded.model, replay, 6)
    assert strategy.hits == 3  # each of the 3 prompts is seen twice
    assert answers == reference


def test_semantic_cache_reuses_near_duplicates(embedded, replay, reference):
    strategy = parse_strategy("semantic(threshold=0.9)")
    answers = answer_all(strategy, embedded.model, replay, 6)
    assert strategy.hits >= 3  # repeats at least; near-duplicates too when similar enough
    strict = parse_strategy("semantic(threshold=1.0)")
    assert answer_all(strict, embedded.model, replay, 6) == reference  # only identical prompts reuse
    assert len(answers) == len(reference)


@pytest.mark.parametrize("backend", ["hqq", "fp8"])
def test_quantized_kv_cache_generates(embedded, replay, reference, backend):
    answers = answer_all(parse_strategy(f"kv-quantized(backend={backend}, residual=8)"), embedded.model, replay, 6)
    assert len(answers) == len(reference) and all(len(a) == 6 for a in answers)


def test_rouge_l():
    assert rouge_l(["the cat sat"], ["the cat sat"]) == 1.0
    assert 0 < rouge_l(["the cat sat on the mat"], ["the cat lay on a mat"]) < 1


@pytest.mark.parametrize(("text", "message"), [
    ("semantc", "did you mean 'semantic'"),
    ("semantic(threshold=2)", r"threshold must lie in \(0, 1\]"),
    ("kv-quantized(backend=int3)", "hqq, quanto or fp8"),
])
def test_bad_strategies(text, message):
    with pytest.raises(CacheError, match=message):
        parse_strategy(text)


class CountingMeter:
    """A meter reading 1 J per replay started inside its window: energy per prompt must then be
    exactly 1 / prompts, whatever the number of replays a window holds."""

    components = ("cpu",)
    method = "replay-counter"
    estimated = False
    min_window_s = 0.0

    def __init__(self) -> None:
        self.replays = 0

    def start(self) -> None:
        self._at = self.replays

    def stop(self) -> dict[str, float]:
        return {"cpu": float(self.replays - self._at)}


def test_a_cache_strategy_is_timed_in_windows_with_the_no_cache_replay(embedded, replay, reference, monkeypatch):
    from pytest_llmeff.measure import caching
    from pytest_llmeff.measure.case import REPLAY_PAIRS, measure_cache
    from pytest_llmeff.measure.energy import EnergyMeter
    from pytest_llmeff.measure.spec import EnergySettings, MeasureSpec

    counter, order = CountingMeter(), []
    answer_all = caching.answer_all

    def counted(strategy, *args):
        counter.replays += 1
        order.append(type(strategy).__name__)
        return answer_all(strategy, *args)

    monkeypatch.setattr(caching, "answer_all", counted)
    spec = MeasureSpec(workload="forward", protocol="nonoverlap-64", eval_windows=None, min_seconds=0.0,
                       device="cpu", dataset="embedded", energy=EnergySettings(idle=False))
    measured = measure_cache(embedded.model, embedded.tokenizer, replay, 6, parse_strategy("static"), spec,
                             EnergyMeter([counter]), reference=reference, paired_with=parse_strategy("none"))
    cand, ref = measured.values["time"], measured.reference_costs["time"]
    assert len(cand.samples) == len(ref.samples) >= REPLAY_PAIRS  # paired: one no-cache replay per replay
    assert "windows A B B A" in cand.method and cand.detail.statistic == f"median per prompt (replay / {len(replay)})"
    # one replay per window (no time to fill): windows of each in the order A B B A A …, every one timed
    timed = order[-len(cand.samples) * 2:]
    cycle = ["StaticCache", "NoCache", "NoCache", "StaticCache"]
    assert timed == (cycle * len(cand.samples))[:len(timed)]
    for values in (measured.values, measured.reference_costs):
        assert values["energy"].value == pytest.approx(1 / len(replay))  # per prompt, not per replay
    assert measured.values["exact_match"].value == 1 and measured.values["hit_rate"].value == pytest.approx(3 / 9)
