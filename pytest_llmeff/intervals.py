"""How sure a case's Δ time and Δ energy are: a bootstrap interval of the change against its reference.

The plots draw it as error bars. It resamples the same per-call (time) and per-window (energy)
samples the verdicts resample (:func:`pytest_llmeff.verdicts.samples_of`), paired where the case
was measured in turn with its reference, so that a bar is as wide as the noise a verdict saw.
"""

from __future__ import annotations

import random

from pytest_llmeff.records import CaseRecord
from pytest_llmeff.verdicts import draw_median, samples_of

REPLICATES = 300  # enough for the 2.5 / 97.5 % points of a bar; the terminal summary computes them too
CONFIDENCE = 0.95


def delta_intervals(record: CaseRecord, reference: CaseRecord | None, replicates: int = REPLICATES,
                    seed: int = 0) -> dict[str, tuple[float, float]]:
    """``{"time": (low, high), "energy": …}``: the central ``CONFIDENCE`` interval of ``value /
    reference − 1`` over bootstrap replicates, for each figure the record has samples of (two or
    more); a reference without samples counts as exact. Empty for the reference itself."""
    if reference is None:
        return {}
    cur, ref = samples_of(record), samples_of(reference)
    paired = record.interleaved or record.values == reference.values
    out = {}
    for key, values in cur.items():
        base = reference.values.get(key)
        if base is None or base.value <= 0:
            continue
        rng = random.Random(seed)
        changes = []
        for _ in range(replicates):
            value, idx = draw_median(values, rng)
            against = draw_median(ref[key], rng, idx if paired else None)[0] if key in ref else base.value
            changes.append(value / against - 1)
        changes.sort()
        tail = (1 - CONFIDENCE) / 2
        low, high = changes[int(tail * (replicates - 1))], changes[int((1 - tail) * (replicates - 1))]
        if high > low:
            out[key] = (low, high)
    return out
