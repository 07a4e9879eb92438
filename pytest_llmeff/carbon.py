"""Carbon: CO2e = energy × grid carbon intensity × PUE, plus an optional embodied share.

Intensity sources (gCO2e/kWh), chosen by region code:
- ``DEU``, ``FRA`` … (ISO 3166 alpha-3): CodeCarbon's per-country energy-mix data (its
  ``global_energy_mix.json``, yearly; the year is reported with the figure);
- ``study2024:BEL`` / ``DEU`` / ``FRA`` / ``NLD``: the 2024 yearly life-cycle averages used by the
  GPTQ energy study (Belgium 153.14, Germany 333.77, France 33.44, Netherlands 262.93);
- ``custom:<g/kWh>``: a number you supply.

An unknown region is an error: there is no silent fallback to a world average.
Embodied carbon (LLMCarbon-style) is ``runtime × chip embodied CO2e / chip lifetime``, with both
chip figures supplied by the user — the assumption is stated with every result.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pytest_llmeff.registry import did_you_mean

STUDY_2024 = {"BEL": 153.14, "DEU": 333.77, "FRA": 33.44, "NLD": 262.93}
J_PER_KWH = 3.6e6
SECONDS_PER_YEAR = 365.25 * 24 * 3600


class CarbonError(ValueError):
    """An unknown region or an invalid PUE / embodied assumption."""


@dataclass(frozen=True)
class Intensity:
    region: str
    g_per_kwh: float
    source: str


@lru_cache(maxsize=1)
def _codecarbon_mix() -> dict[str, Any]:
    from importlib import resources

    path = resources.files("codecarbon") / "data" / "private_infra" / "global_energy_mix.json"
    return json.loads(path.read_text(encoding="utf-8"))


def known_regions() -> list[str]:
    try:
        countries = list(_codecarbon_mix())
    except (ImportError, FileNotFoundError, ModuleNotFoundError):
        countries = []
    return sorted(countries) + [f"study2024:{c}" for c in STUDY_2024]


def intensity(region: str) -> Intensity:
    """The grid intensity for ``region`` (see the module docstring for the codes)."""
    code = region.strip()
    if code.lower().startswith("custom:"):
        try:
            value = float(code.split(":", 1)[1])
        except ValueError:
            raise CarbonError(f"custom intensity must be a number of gCO2e/kWh, got {region!r}") from None
        if not math.isfinite(value) or value < 0:
            raise CarbonError(f"custom intensity must be ≥ 0 gCO2e/kWh, got {value}")
        return Intensity(code, value, "user-supplied")
    if code.lower().startswith("study2024:"):
        country = code.split(":", 1)[1].upper()
        if country not in STUDY_2024:
            raise CarbonError(f"the 2024 study table has {', '.join(STUDY_2024)}; not {country!r}")
        return Intensity(f"study2024:{country}", STUDY_2024[country], "2024 yearly LCA average (GPTQ energy study)")
    mix = _codecarbon_mix()
    country = code.upper()
    if country not in mix:
        raise CarbonError(f"unknown region {region!r}{did_you_mean(country, list(mix))}: use an ISO 3166 "
                          "alpha-3 country code (DEU, FRA, USA …), study2024:<BEL|DEU|FRA|NLD> or custom:<g/kWh>")
    row = mix[country]
    return Intensity(country, float(row["carbon_intensity"]),
                     f"CodeCarbon energy mix {row.get('year', '')}, {row.get('country_name', country)}".strip())


def check_pue(pue: float) -> float:
    if not math.isfinite(pue) or pue < 1.0:
        raise CarbonError(f"PUE is total facility energy / IT energy and cannot be below 1, got {pue}")
    return pue


def operational_grams(joules: float, source: Intensity, pue: float = 1.0) -> float:
    """gCO2e of ``joules`` of IT energy in a facility with ``pue``."""
    return joules / J_PER_KWH * check_pue(pue) * source.g_per_kwh


def embodied_grams(seconds: float, chip_kg: float, lifetime_years: float) -> float:
    """The share of a chip's embodied carbon used by ``seconds`` of runtime (linear amortisation)."""
    if chip_kg < 0 or lifetime_years <= 0:
        raise CarbonError("embodied carbon needs chip CO2e ≥ 0 kg and a lifetime > 0 years")
    return seconds / (lifetime_years * SECONDS_PER_YEAR) * chip_kg * 1000


def what_if(joules: float, regions: list[str], pue: float = 1.0) -> list[tuple[Intensity, float]]:
    """The same energy across regions: (intensity, gCO2e) per region."""
    return [(src, operational_grams(joules, src, pue)) for src in map(intensity, regions)]
