"""The opt score: SPEC §2's worked example, hand-computed cases, errors, and properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmeff import Metric, opt_breakdown, opt_score, register_metric
from pytest_llmeff.registry import UnknownNameError
from pytest_llmeff.score import PRESETS, OptWeights, quality_ratio

GPT2_BASE = {"perplexity": 34.29, "time": 212.33, "energy": 0.02335}
GPT2_4BIT = {"perplexity": 35.56, "time": 222.67, "energy": 0.01162}


def test_worked_example_from_the_first_study():
    # GPT-2 125M, bnb 4-bit: balanced opt ≈ 0.817.
    assert opt_score(GPT2_BASE, GPT2_4BIT) == pytest.approx(0.8165, abs=5e-4)


def test_hand_computed_single_metric():
    p_c = 35.56 / 34.29
    t_c, e_c = 222.67 / 212.33, 0.01162 / 0.02335
    for preset, (a, b) in PRESETS.items():
        expected = p_c ** 1.5 * (a * t_c + b * e_c)
        assert opt_score(GPT2_BASE, GPT2_4BIT, preset) == pytest.approx(expected, rel=1e-12)


def test_hand_computed_accuracy_with_chance_margin():
    base = {"mmlu": 0.60, "time": 10.0, "energy": 4.0}
    cand = {"mmlu": 0.50, "time": 5.0, "energy": 3.0}
    p_c = (0.60 - 0.8 * 0.25) / (0.50 - 0.8 * 0.25)  # 0.4 / 0.3
    expected = p_c ** 1.5 * (0.5 * 0.5 + 0.5 * 0.75)
    assert opt_score(base, cand) == pytest.approx(expected, rel=1e-12)


def test_several_metrics_average_the_powered_ratios():
    base = {"perplexity": 20.0, "arc_challenge": 0.40, "winogrande": 0.70, "time": 1.0, "energy": 1.0}
    cand = {"perplexity": 25.0, "arc_challenge": 0.35, "winogrande": 0.69, "time": 1.0, "energy": 1.0}
    ratios = [25 / 20, (0.40 - 0.2) / (0.35 - 0.2), (0.70 - 0.4) / (0.69 - 0.4)]
    expected = sum(r ** 1.5 for r in ratios) / 3
    assert opt_score(base, cand) == pytest.approx(expected, rel=1e-12)
    # Raising before averaging punishes one large drop more than the power of the mean would.
    assert expected > (sum(ratios) / 3) ** 1.5


def test_custom_weights_pair_and_text():
    expected = (35.56 / 34.29) ** 1.5 * (0.3 * 222.67 / 212.33 + 0.7 * 0.01162 / 0.02335)
    assert opt_score(GPT2_BASE, GPT2_4BIT, (0.3, 0.7)) == pytest.approx(expected)
    assert opt_score(GPT2_BASE, GPT2_4BIT, "0.3,0.7") == pytest.approx(expected)


def test_breakdown_parts():
    b = opt_breakdown(GPT2_BASE, GPT2_4BIT, "energy")
    assert b.time_ratio == pytest.approx(222.67 / 212.33)
    assert b.energy_ratio == pytest.approx(0.01162 / 0.02335)
    assert b.quality_ratios == {"perplexity": pytest.approx(35.56 / 34.29)}
    assert b.weights == OptWeights(0.1, 0.9, "energy")


@pytest.mark.parametrize(
    ("base", "cand", "weights", "message"),
    [
        (GPT2_BASE, GPT2_4BIT, "balancd", "did you mean 'balanced'"),
        (GPT2_BASE, GPT2_4BIT, (-1, 1), "must be a finite number ≥ 0"),
        (GPT2_BASE, GPT2_4BIT, (0, 0), "cannot both be 0"),
        (GPT2_BASE, {"perplexty": 35.0, "time": 1, "energy": 1}, "balanced", "did you mean 'perplexity'"),
        (GPT2_BASE, {"time": 1, "energy": 1}, "balanced", "no quality metric"),
        (GPT2_BASE, {"perplexity": 35.0, "energy": 1}, "balanced", "no 'time' value"),
        (GPT2_BASE, {"perplexity": 35.0, "time": 0, "energy": 1}, "balanced", "must be a finite number > 0"),
        (GPT2_BASE, {"mmlu": 0.5, "time": 1, "energy": 1}, "balanced", "the base has no value for mmlu"),
        ({"ifeval": 0.5, "time": 1, "energy": 1}, {"ifeval": 0.4, "time": 1, "energy": 1}, "balanced",
         "no chance level"),
        ({"mmlu": 0.5, "time": 1, "energy": 1}, {"mmlu": 0.2, "time": 1, "energy": 1}, "balanced",
         "must exceed 0.8·chance"),
    ],
)
def test_bad_input_is_refused_with_a_reason(base, cand, weights, message):
    with pytest.raises((ValueError, UnknownNameError), match=message):
        opt_score(base, cand, weights)


def test_user_metric_with_chance_level_is_accepted():
    register_metric(Metric("my_quiz", higher_is_better=True, chance=0.2), replace=True)
    assert quality_ratio("my_quiz", 0.5, 0.5) == 1.0
    assert opt_score({"my_quiz": 0.6, "time": 1, "energy": 1}, {"my_quiz": 0.6, "time": 1, "energy": 1}) == 1.0


# ---------------------------------------------------------------------------- properties
positive = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)
ppl = st.floats(min_value=1.0, max_value=1e4, allow_nan=False)
acc = st.floats(min_value=0.21, max_value=1.0, allow_nan=False)  # above 0.8·chance for chance 0.25
weights = st.sampled_from(list(PRESETS)) | st.tuples(st.floats(0, 10), st.floats(0.01, 10))


def _w(w):
    return OptWeights.parse(w)


@given(p=ppl, t=positive, e=positive, w=weights)
def test_base_against_itself_is_alpha_plus_beta(p, t, e, w):
    values = {"perplexity": p, "time": t, "energy": e}
    assert opt_score(values, values, w) == pytest.approx(_w(w).alpha + _w(w).beta, rel=1e-12)


@given(p0=ppl, p1=ppl, t0=positive, t1=positive, e0=positive, e1=positive, k=positive, m=positive, w=weights)
def test_invariant_to_scaling_all_times_or_all_energies(p0, p1, t0, t1, e0, e1, k, m, w):
    base, cand = {"perplexity": p0, "time": t0, "energy": e0}, {"perplexity": p1, "time": t1, "energy": e1}
    scaled_b = {"perplexity": p0, "time": t0 * k, "energy": e0 * m}
    scaled_c = {"perplexity": p1, "time": t1 * k, "energy": e1 * m}
    assert opt_score(scaled_b, scaled_c, w) == pytest.approx(opt_score(base, cand, w), rel=1e-9)


@given(p0=ppl, p1=ppl, a0=acc, a1=acc, t0=positive, t1=positive, e0=positive, e1=positive,
       bump=st.floats(min_value=1.001, max_value=10), w=weights)
def test_monotone_worse_inputs_never_lower_the_score(p0, p1, a0, a1, t0, t1, e0, e1, bump, w):
    base = {"perplexity": p0, "mmlu": a0, "time": t0, "energy": e0}
    cand = {"perplexity": p1, "mmlu": a1, "time": t1, "energy": e1}
    score = opt_score(base, cand, w)
    alpha, beta = _w(w).alpha, _w(w).beta
    worse = [
        ({**cand, "perplexity": p1 * bump}, True),
        ({**cand, "time": t1 * bump}, alpha > 0),
        ({**cand, "energy": e1 * bump}, beta > 0),
        ({**cand, "mmlu": 0.2 + (a1 - 0.2) / bump}, True),
    ]
    for changed, strictly in worse:
        new = opt_score(base, changed, w)
        assert new >= score * (1 - 1e-12)
        if strictly:
            assert new > score * (1 - 1e-12)


@given(p=ppl, t=positive, e=positive)
def test_presets_weigh_time_and_energy_as_named(p, t, e):
    base = {"perplexity": p, "time": t, "energy": e}
    faster = {"perplexity": p, "time": t / 2, "energy": e}
    assert opt_score(base, faster, "runtime") < opt_score(base, faster, "balanced") < opt_score(base, faster, "energy")
    assert math.isclose(opt_score(base, faster, "runtime"), 0.9 * 0.5 + 0.1)
