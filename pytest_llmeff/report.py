"""The terminal summary: one table per workload, rows ranked by the run's opt score, at most
``report_notes.WIDTH`` columns; then the energy split, the carbon what-if and the footnotes.

Every figure comes from :mod:`pytest_llmeff.rows` (the same rows the markdown and HTML reports show).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_llmeff.report_notes import footnotes, wrap
from pytest_llmeff.rows import Row, energy_table, heading, num, rows_of, sections, table
from pytest_llmeff.score import OptWeights

LABEL_WIDTH = 40  # longer case labels are clipped in the terminal (the reports keep them whole)


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def opt_header(weights: OptWeights) -> str:
    """The opt column's title: the preset's name, or the custom weights themselves."""
    if weights.name != "custom":
        return f"opt {weights.name}"
    return f"opt α={weights.alpha:g},β={weights.beta:g}"


def format_table(header: list[str], rows: list[list[str]], left: Sequence[int] = (),
                 joined: Sequence[int] = ()) -> list[str]:
    """Aligned columns: numbers to the right; the first and last column, and ``left``, to the left.
    A ``joined`` column follows the one before it after one space, not two (a figure's Δ)."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    to_left = {0, len(header) - 1, *left}
    gaps = ["" if i == 0 else " " if i in joined else "  " for i in range(len(header))]

    def line(cells: list[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return "".join(gaps[i] + (c.ljust(w) if i in to_left else c.rjust(w)) for i, (c, w) in pairs).rstrip()

    return [line(header), line(["-" * w for w in widths]), *[line(r) for r in rows]]


def _labelled(rows: list[list[str]]) -> list[list[str]]:
    return [[clip(r[0], LABEL_WIDTH), *r[1:]] for r in rows]


def case_lines(rows: Sequence[Row], opt_title: str) -> list[str]:
    """Per workload: its heading, its table, and why each failed or inconclusive case is so."""
    lines: list[str] = []
    for workload, group in sections(rows):
        header, cells = table(group, [("run", opt_title)])
        deltas = [i for i, h in enumerate(header) if h == "Δ"]
        table_lines = format_table(header, _labelled(cells), left=(header.index("verdict"),), joined=deltas)
        lines += [f"workload {heading(workload, group)}", *table_lines]
        for r in group:
            if r.reason:
                lines += wrap(f"  {r.label} ({r.verdict}): {r.reason}")
        lines.append("")
    return lines


def energy_lines(rows: Sequence[Row]) -> list[str]:
    """Per call and workload: the CPU / GPU / RAM split, idle (static) vs active, per token, CO2e."""
    lines: list[str] = []
    for workload, group in sections([r for r in rows if r.energy is not None]):
        header, cells = energy_table(group)
        lines += [f"workload {workload}", *format_table(header, _labelled(cells)), ""]
    return lines


def what_if_lines(rows: Sequence[Row], regions: Sequence[str]) -> list[str]:
    """CO2e of 1,000 calls of each case across regions (operational, PUE 1), per workload."""
    from pytest_llmeff.carbon import intensity, operational_grams

    sources = [intensity(r) for r in regions]
    lines: list[str] = []
    for workload, group in sections([r for r in rows if r.energy is not None]):
        header = ["case (g CO2e / 1000 calls)", *[f"{s.region} ({s.g_per_kwh:g})" for s in sources]]
        cells = [[r.label, *[num(operational_grams((r.energy or 0.0) * 1000, s), digits=3) for s in sources]]
                 for r in group]
        lines += [f"workload {workload}", *format_table(header, _labelled(cells)), ""]
    return lines


def summary_lines(results: Sequence[Any], session: Any) -> list[str]:
    """The whole summary; for the default run every line fits ``report_notes.WIDTH`` columns."""
    rows = rows_of(results)
    title = opt_header(session.options.weights)
    intro = (f"model {session.options.model.name} on {session.device} ({session.dtype}); per workload the reference "
             f"first, then every case by {title} (lower is better; ★ lowest)")
    lines = [*wrap(intro), "", *case_lines(rows, title)]
    if any(r.energy is not None for r in rows):
        lines += ["energy per call:", *energy_lines(rows)]
        if session.options.what_if:
            lines += ["carbon what-if (same energy, other grids):", *what_if_lines(rows, session.options.what_if)]
    return lines + footnotes(results, session)
