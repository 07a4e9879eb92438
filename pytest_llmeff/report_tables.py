"""The run's tables as markdown (a CI job summary) and HTML, from the same rows as the terminal.

Both show every opt preset (the terminal only the run's own) and each failed or inconclusive
case's reason in full.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

from pytest_llmeff.report_notes import grouped
from pytest_llmeff.rows import Row, energy_table, heading, sections, table
from pytest_llmeff.score import PRESETS

# The verdicts' colours, in the tables and the plots alike (GitHub's palette: readable on white).
VERDICT_COLOURS = {"pass": "#1a7f37", "fail": "#cf222e", "inconclusive": "#9a6700", "no baseline": "#57606a",
                   "incomplete": "#57606a", "": "#57606a"}


def opt_columns(rows: Sequence[Row]) -> list[tuple[str, str]]:
    """Every preset, and the run's own weights where they are none of the presets."""
    opts = [(p, f"opt {p}") for p in PRESETS]
    custom = any("run" in r.opt and not any(math.isclose(r.opt["run"], r.opt.get(p, math.nan)) for p in PRESETS)
                 for r in rows)
    return opts + [("run", "opt run")] if custom else opts


def method_notes(rows: Sequence[Row]) -> list[tuple[str, str]]:
    """(figure, how it was obtained) of the first case: ``("energy", "codecarbon-estimate (estimated)")``."""
    if not rows:
        return []
    first = rows[0]
    return [(key, method + (" (estimated)" if key == "energy" and first.energy_estimated else ""))
            for key, method in first.methods.items()]


def case_notes(rows: Sequence[Row]) -> list[str]:
    return grouped((r.label, note) for r in rows for note in r.notes)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(rows: Sequence[Row], title: str = "pytest-llmeff") -> str:
    """A GitHub-flavoured markdown summary: one table per workload, then how figures were measured."""
    lines = [f"## {title}", ""]
    opts = opt_columns(rows)
    for workload, group in sections(rows):
        header, cells = table(group, opts)
        align = ["---" if h in ("case", "verdict", "best") else "---:" for h in header]
        lines += [f"### {heading(workload, group)}", "",
                  "| " + " | ".join(header) + " |", "|" + "|".join(align) + "|",
                  *["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in cells], ""]
        lines += [f"- **{_md_cell(r.label)}** ({r.verdict}): {r.reason}" for r in group if r.reason]
        lines += [""] if any(r.reason for r in group) else []
    lines += [f"- **{key}**: {how}" for key, how in method_notes(rows)]
    lines += [f"- {note}" for note in case_notes(rows)]
    return "\n".join(lines) + "\n"


def verdict_colour(verdict: str) -> str:
    return VERDICT_COLOURS.get(verdict, VERDICT_COLOURS[""])


def _cell_class(header: str, cell: str) -> str:
    """CSS classes of a cell: its verdict's colour; a Δ's direction (every Δ shown is of a
    lower-is-better figure, so a fall is good news)."""
    if header == "verdict":
        return f"verdict v-{cell.replace(' ', '-') or 'none'}"
    if header == "Δ" and cell[:1] in "+-" and cell.strip("+-0.%"):
        return "good" if cell.startswith("-") else "bad"
    return "case" if header == "case" else ""


def html_table(header: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    """A table of header and cells (as :func:`pytest_llmeff.rows.table` gives them), classed for the page's style."""
    head = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
    body = ""
    for row in cells:
        tds = []
        for h, c in zip(header, row, strict=True):
            cls = _cell_class(h, c)
            tds.append(f"<td class=\"{cls}\">{html.escape(c)}</td>" if cls else f"<td>{html.escape(c)}</td>")
        body += "<tr>" + "".join(tds) + "</tr>"
    return f"<table><thead>{head}</thead><tbody>{body}</tbody></table>"


def html_sections(rows: Sequence[Row], after: Mapping[str, str] | None = None) -> str:
    """Per workload: a heading, the table, why each failed or inconclusive case is so, then
    ``after[workload]`` (the section's plot)."""
    parts = []
    opts = opt_columns(rows)
    for workload, group in sections(rows):
        header, cells = table(group, opts)
        reasons = "".join(f"<li class=\"v-{html.escape(r.verdict.replace(' ', '-'))}\"><b>{html.escape(r.label)}</b> "
                          f"({html.escape(r.verdict)}): {html.escape(r.reason)}</li>" for r in group if r.reason)
        reasons = f"<ul class=\"reasons\">{reasons}</ul>" if reasons else ""
        title = html.escape(heading(workload, group))
        # a wide table scrolls in its box rather than widening the page
        parts.append(f"<section id=\"w-{html.escape(anchor(workload))}\"><h2>{title}</h2><div class=\"scroll\">"
                     f"{html_table(header, cells)}</div>{reasons}{(after or {}).get(workload, '')}</section>")
    return "".join(parts)


def html_notes(rows: Sequence[Row]) -> str:
    """How the figures were obtained, and the cases' notes."""
    notes = [f"<b>{html.escape(key)}</b>: {html.escape(how)}" for key, how in method_notes(rows)]
    notes += [html.escape(note) for note in case_notes(rows)]
    return "<ul>" + "".join(f"<li>{n}</li>" for n in notes) + "</ul>"


def html_tables(rows: Sequence[Row]) -> str:
    """The same tables as the terminal and markdown, as HTML: the sections, then the notes."""
    return html_sections(rows) + html_notes(rows)


def html_energy(rows: Sequence[Row]) -> dict[str, str]:
    """The energy split table of each workload (the terminal's "energy per call" tables)."""
    return {workload: html_table(*energy_table(group))
            for workload, group in sections([r for r in rows if r.energy is not None])}


def anchor(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower())
