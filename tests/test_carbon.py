"""Carbon arithmetic, region lookup (no silent fallback), and the statistics of repeated windows."""

from __future__ import annotations

import pytest

from pytest_llmeff import carbon
from pytest_llmeff.measure.deployment import Deployment
from pytest_llmeff.measure.stats import summarize


def test_study_table_and_arithmetic():
    de = carbon.intensity("study2024:DEU")
    assert de.g_per_kwh == 333.77
    # 3.6 MJ = 1 kWh → 333.77 g; PUE 1.58 scales it.
    assert carbon.operational_grams(3.6e6, de) == pytest.approx(333.77)
    assert carbon.operational_grams(3.6e6, de, pue=1.58) == pytest.approx(333.77 * 1.58)


def test_codecarbon_country_data():
    fr = carbon.intensity("fra")
    assert fr.region == "FRA" and 0 < fr.g_per_kwh < 200 and "CodeCarbon" in fr.source


@pytest.mark.parametrize(("region", "message"), [
    ("DEUX", "did you mean 'DEU'"),
    ("Atlantis", "unknown region"),
    ("study2024:USA", "2024 study table has"),
    ("custom:abc", "must be a number"),
])
def test_unknown_regions_are_errors(region, message):
    with pytest.raises(carbon.CarbonError, match=message):
        carbon.intensity(region)


def test_pue_and_embodied_validation():
    with pytest.raises(carbon.CarbonError, match="cannot be below 1"):
        carbon.check_pue(-1)
    with pytest.raises(carbon.CarbonError, match="lifetime > 0"):
        carbon.embodied_grams(1.0, 150, 0)
    # A year of runtime on a 4-year-lifetime chip of 150 kg: a quarter of it.
    assert carbon.embodied_grams(carbon.SECONDS_PER_YEAR, 150, 4) == pytest.approx(37_500)


def test_what_if_keeps_the_energy_and_changes_the_grid():
    rows = carbon.what_if(3.6e6, ["study2024:FRA", "study2024:DEU"])
    assert [g for _, g in rows] == pytest.approx([33.44, 333.77])


def test_summary_statistics():
    one = summarize([2.0])
    assert (one.median, one.cv, one.ci_low, one.ci_high) == (2.0, 0.0, 2.0, 2.0)
    s = summarize([1.0, 2.0, 3.0, 4.0, 5.0])
    assert s.median == 3.0 and s.ci_low < 3.0 < s.ci_high
    assert s.cv == pytest.approx(1.5811 / 3, rel=1e-3)
    # 95 % t interval of the mean, 4 degrees of freedom: 3 ± 2.776 × 1.5811 / √5
    assert (s.ci_low, s.ci_high) == pytest.approx((3 - 1.9632, 3 + 1.9632), abs=1e-4)


def test_deployment_schedule_is_fixed_and_averages_the_gap():
    d = Deployment(period=600, gap=6, seed=3)
    assert d.schedule() == Deployment(period=600, gap=6, seed=3).schedule()
    times = d.schedule()
    assert times[0] == 0 and all(b > a for a, b in zip(times, times[1:], strict=False))
    assert 70 < len(times) < 130  # ~100 arrivals in 600 s at one per 6 s
