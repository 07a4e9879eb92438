"""The summary's footnotes: how the figures were obtained, each case's notes (every distinct note
once, naming the cases it applies to), what was not compared, and what was written."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence
from typing import Any

from pytest_llmeff.details import EnergyDetail
from pytest_llmeff.rows import num, undecided

WIDTH = 160  # a wide terminal: no line of the summary is longer (paths and error lines excepted)


def wrap(text: str, width: int = WIDTH, indent: str = "    ") -> list[str]:
    """``text`` in lines of at most ``width``; continuation lines indented."""
    if len(text) <= width:
        return [text]
    return textwrap.wrap(text, width, subsequent_indent=indent, break_long_words=True, break_on_hyphens=False)


def _body(label: str, note: str) -> str:
    """The note without its subject where that is a step of the case (compressors start their
    notes with their id: ``kd: trained …``): the cases are named in its place."""
    subject, sep, body = note.partition(": ")
    return body if sep and subject in label.split("+") else note


def grouped(pairs: Iterable[tuple[str, str]], everyone: Sequence[str] = ()) -> list[str]:
    """``(case label, note)`` pairs as one line per distinct note, naming its cases once each.

    A note that starts with a step of its case is grouped by what follows (``magnitude: mask only``
    and ``2:4: mask only`` are one line, ``magnitude, 2:4: mask only``); a case that is that step
    alone keeps the note as it is (``gptq4: group size 64``, never ``gptq4: gptq4: …``). A note of
    every case in ``everyone`` (two or more) names none.
    """
    cases: dict[str, list[str]] = {}
    for label, note in pairs:
        names = cases.setdefault(_body(label, note), [])
        if label not in names:
            names.append(label)
    every = len(set(everyone)) > 1
    return [f"{'every case' if every and set(names) == set(everyone) else ', '.join(names)}: {body}"
            for body, names in cases.items()]


def case_notes(results: Sequence[Any]) -> list[str]:
    """The cases' own notes and their budgets that did not pass, except the reason the case's
    table already shows in full."""
    pairs = [(r.record.method, note) for r in results for note in r.record.notes]
    for r in results:
        shown = undecided(r.budgets)[:1]  # Row.reason: under the case's table
        pairs += [(r.record.method, f"[{b.status}] {b.message}") for b in r.budgets
                  if b.status != "pass" and b not in shown]
    return grouped(pairs, [r.record.method for r in results])


def method_lines(results: Sequence[Any], session: Any) -> list[str]:
    """How perplexity, time and energy were obtained (the first case's protocol)."""
    lines: list[str] = []
    if not results:
        return lines
    first = results[0].record.values
    ppl, time, energy = first.get("perplexity"), first.get("time"), first.get("energy")
    if ppl:
        d = ppl.detail
        lines.append(f"perplexity: {ppl.method} on {d.get('dataset')} ({d.get('tokens_scored')} tokens, "
                     f"{d.get('windows')} windows); Δ vs the base model of this run")
    if session.options.paired:
        lines.append("Δ and opt: against the base model timed again next to each case (paired); the base "
                     "row shows its own first measurement")
    timing = results[0].record.timing
    if time and timing:
        lines.append(f"time: {timing.statistic} of workload {timing.workload} on {timing.device}, {time.method}")
    if energy:
        kind = "ESTIMATED" if energy.estimated else "measured"
        statistic = energy.detail.statistic if isinstance(energy.detail, EnergyDetail) else ""
        lines.append(f"energy ({kind}): {energy.method}; {statistic}")
    for name in ("energy.idle", "co2e"):
        if name in first:
            lines.append(f"{name}: {first[name].method}")
    return lines


def meter_lines(session: Any) -> list[str]:
    lines = []
    meter = session.built_meter()
    if meter is not None and session.device.startswith("cuda") and not any("gpu" in m.components
                                                                           for m in meter.meters):
        # The GPU draws most of a GPU run's energy: a total without it must not pass unremarked.
        why = meter.unavailable.get("nvml", "no GPU meter was chosen")
        lines.append(f"NO GPU ENERGY: the run is on {session.device} but no meter reads the GPU ({why}); "
                     "energy covers CPU + RAM only")
    if meter is not None and meter.unavailable:
        lines.append("energy backends not used: " + "; ".join(f"{k}: {v}" for k, v in meter.unavailable.items()))
    return lines


def baseline_lines(session: Any) -> list[str]:
    lines = []
    drift = session.library_drift()
    if drift:
        lines.append("library versions differ from the baselines': " + ", ".join(drift))
    if session.options.update_baselines:
        if session.baseline_changes:
            lines.append(f"baselines written to {session.store.path}:")
            for ch in session.baseline_changes:
                new, old = ch.new, ch.old or {}
                lines.append(f"  {ch.case_id}: perplexity {num(old.get('perplexity'))} → "
                             f"{num(new.get('perplexity'))}, opt {num(old.get('opt'), digits=3)} → "
                             f"{num(new.get('opt'), digits=3)}" + ("" if ch.old else " (new)"))
        elif not session.accepted:
            lines.append("no baselines written: no case passed")
    return lines


def footnotes(results: Sequence[Any], session: Any) -> list[str]:
    """How the figures were obtained, what was not compared, and what was written."""
    weights = session.options.weights
    opt = (f"opt = Q·(α·T_c + β·E_c), lower is better, base = α+β; this run's weights: "
           f"{weights.name} (α={weights.alpha:g}, β={weights.beta:g})")
    # Files the run was asked for but could not write: one line each, with what to do.
    errors = [f"ERROR: pytest-llmeff: {e}" for e in getattr(session, "errors", ())]
    # Notes and meter lines can run long (many cases named): wrapped. Paths and errors are not, so
    # that they can be copied whole.
    wrapped = [part for line in (*meter_lines(session), opt, *case_notes(results)) for part in wrap(line)]
    return [*method_lines(results, session), *wrapped, *baseline_lines(session), *errors]
