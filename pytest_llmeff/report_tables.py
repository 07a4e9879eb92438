"""The run's tables as markdown (a CI job summary) and HTML, from the same rows as the terminal.

Both show every opt preset (the terminal only the run's own) and each failed or inconclusive
case's reason in full.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from pytest_llmeff.report_notes import grouped
from pytest_llmeff.rows import Row, heading, sections, table
from pytest_llmeff.score import PRESETS


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


def html_tables(rows: Sequence[Row]) -> str:
    """The same tables as HTML: a heading, a table and the reasons per workload, then the notes."""
    parts = []
    opts = opt_columns(rows)
    for workload, group in sections(rows):
        header, cells = table(group, opts)
        head = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in cells)
        reasons = "".join(f"<li><b>{html.escape(r.label)}</b> ({html.escape(r.verdict)}): {html.escape(r.reason)}</li>"
                          for r in group if r.reason)
        parts.append(f"<h2>{html.escape(heading(workload, group))}</h2><table>{head}{body}</table>"
                     + (f"<ul>{reasons}</ul>" if reasons else ""))
    notes = [f"<b>{html.escape(key)}</b>: {html.escape(how)}" for key, how in method_notes(rows)]
    notes += [html.escape(note) for note in case_notes(rows)]
    return "".join(parts) + "<ul>" + "".join(f"<li>{n}</li>" for n in notes) + "</ul>"
