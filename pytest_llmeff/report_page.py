"""The HTML report page: which run it is (machine, commit, date, library versions), the verdicts at
a glance, each workload's table with its trade-off plot, the energy split and the opt scores.

Every figure on the page is a row's (see :mod:`pytest_llmeff.rows`), formatted by the same
functions as the terminal and markdown tables.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_llmeff.report_plots import Figure, interval_text, quality_axis
from pytest_llmeff.report_tables import VERDICT_COLOURS, html_energy, html_notes, html_sections, html_table
from pytest_llmeff.rows import Row, num, pct, sections

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;margin:0 auto;
 padding:1.5em 2em;max-width:1600px}
h1{font-size:1.6em;margin:.2em 0}h2{font-size:1.25em;margin:1.6em 0 .5em;border-bottom:1px solid #d0d7de}
h3{font-size:1.05em;margin:1.2em 0 .4em}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin:.3em 0;font-size:13px}
th{background:#f6f8fa;position:sticky;top:0;font-weight:600;vertical-align:bottom}
td,th{border:1px solid #d0d7de;padding:2px 6px;text-align:right}td{white-space:nowrap}
td.case,th:first-child{text-align:left}tbody tr:nth-child(even){background:#f9fafb}
td.good{color:#1a7f37}td.bad{color:#b35900}
td.verdict{text-align:center;font-weight:600;color:#fff}
dl.run{display:grid;grid-template-columns:max-content auto;gap:.2em 1em;margin:.8em 0}
dl.run dt{font-weight:600;color:#57606a}dl.run dd{margin:0}
.badge{display:inline-block;padding:.1em .6em;border-radius:1em;color:#fff;font-weight:600;margin-right:.4em}
nav a{margin-right:1em}ul.reasons li{margin:.2em 0}
figure{margin:1em 0}img{max-width:100%}.scroll{overflow-x:auto;max-width:100%}
.split{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}.split>.scroll{flex:0 0 auto}
.split figure{margin:0;min-width:0}
figcaption{color:#57606a;font-size:.9em}
details{margin:.4em 0 1em}summary{cursor:pointer;color:#0969da}.muted{color:#57606a}
"""


def _verdict_css() -> str:
    """A class per verdict, for table cells (filled) and reasons (coloured text)."""
    return "".join(f"td.v-{v.replace(' ', '-') or 'none'},.badge.v-{v.replace(' ', '-') or 'none'}{{background:{c}}}"
                   f"li.v-{v.replace(' ', '-') or 'none'} b{{color:{c}}}" for v, c in VERDICT_COLOURS.items())


@dataclass(frozen=True)
class RunIdentity:
    """What the page says about where and when the figures were taken (all optional: run files
    written before a field was recorded lack it)."""

    model: str = ""
    device: str = ""
    fingerprint: Mapping[str, Any] = field(default_factory=dict)
    environment: Mapping[str, Any] = field(default_factory=dict)  # created, commit, dirty, versions
    source: str = ""  # the run file the page was rendered from
    written: dt.datetime | None = None  # when that file was last written (a date of last resort)


def _when(identity: RunIdentity) -> str:
    created = identity.environment.get("created")
    if created:
        try:
            return dt.datetime.fromisoformat(created).strftime("%Y-%m-%d %H:%M %Z").strip()
        except ValueError:
            return created
    if identity.written is not None:
        return f"not recorded in the run file; the file was written {identity.written:%Y-%m-%d %H:%M %Z}".strip()
    return "not recorded"


def identity_items(identity: RunIdentity) -> list[tuple[str, str]]:
    """(term, text) pairs of the page's run description."""
    from pytest_llmeff.fingerprint import fingerprint_id

    fp, env = identity.fingerprint, identity.environment
    items = []
    if identity.model or identity.device:
        items.append(("model", f"{identity.model or '?'} on {identity.device or '?'}"))
    if fp:
        accelerator = fp.get("accelerator", "none")
        items.append(("machine", f"{fp.get('cpu', '?')}, {fp.get('cores', '?')} cores, "
                                 f"{'no accelerator' if accelerator == 'none' else accelerator}; {fp.get('os', '?')}; "
                                 f"Python {fp.get('python', '?')} (baselines folder {fingerprint_id(dict(fp))})"))
    commit = env.get("commit")
    items.append(("commit", f"{commit}{' with uncommitted changes' if env.get('dirty') else ''}" if commit
                  else "not recorded (no git checkout, or a run file from before commits were recorded)"))
    items.append(("date", _when(identity)))
    versions = {**fp.get("libraries", {}), **env.get("versions", {})}
    if versions:
        items.append(("libraries", ", ".join(f"{k.replace('_', '-')} {v}" for k, v in versions.items())))
    if identity.source:
        items.append(("run file", identity.source))
    return items


def verdict_badges(rows: Sequence[Row]) -> str:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.verdict or "no verdict"] = counts.get(r.verdict or "no verdict", 0) + 1
    order = sorted(counts, key=lambda v: (v != "fail", v != "inconclusive", v))
    return (f"{len(rows)} case{'s' if len(rows) != 1 else ''}: " + "".join(
        f'<span class="badge v-{html.escape(v.replace(" ", "-"))}">{counts[v]} {html.escape(v)}</span>'
        for v in order))


def points_table(figure: Figure) -> str:
    """What a trade-off plot drew, point by point: the tables' Δ, with each Δ's interval."""
    points = figure.points or {}
    rows = list({p.row.case_id: p.row for ps in points.values() for p in ps}.values())
    axis = quality_axis(rows)
    if axis is None:
        return ""
    by_cost = {cost: {p.row.case_id: interval_text(p) for p in ps} for cost, ps in points.items()}
    header = ["case", axis.title, *[f"Δ {c} [95% interval]" for c in points], "verdict"]
    cells = [[r.label, pct(axis.value(r)) if axis.is_delta else num(axis.value(r), digits=3),
              *[by_cost[c].get(r.case_id, "–") for c in points], r.verdict] for r in rows]
    return (f"<details class=\"points\"><summary>plotted points ({len(rows)})</summary>"
            f"{html_table(header, cells)}</details>")


def _figure(f: Figure, style: str = "") -> str:
    attr = f' style="{style}"' if style else ""
    return (f'<figure{attr}><img alt="{html.escape(f.caption)}" src="data:image/png;base64,{f.png}">'
            f"<figcaption>{html.escape(f.caption)} ({html.escape(f.name)}.png)</figcaption></figure>")


def png_width(data: str) -> int:
    """The width in pixels of a base64 PNG (its IHDR chunk, right after the signature)."""
    return int.from_bytes(base64.b64decode(data[:32])[16:20], "big")


def _beside(f: Figure) -> str:
    """A plot beside its table: on the same line while it can keep 85 % of its size, else under it
    at full size (a section of long case names has a wide table and a wide plot)."""
    width = png_width(f.png)
    return _figure(f, f"flex:1 1 {int(width * 0.85)}px;max-width:{width}px")


def energy_section(rows: Sequence[Row], figures: Sequence[Figure]) -> str:
    """Per workload the energy split: its table beside its plot."""
    plots = {f.workload: _beside(f) for f in figures if f.kind == "energy"}
    tables = html_energy(rows)
    if not tables:
        return ""
    body = "".join(f'<h3>{html.escape(w)}</h3><div class="split"><div class="scroll">{t}</div>{plots.get(w, "")}</div>'
                   for w, t in tables.items())
    return f'<section id="energy"><h2>Energy per call</h2>{body}</section>'


def _contents(rows: Sequence[Row], figures: Sequence[Figure]) -> str:
    from pytest_llmeff.report_tables import anchor

    links = [(f"w-{anchor(w)}", w) for w, _ in sections(rows)]
    links += [("energy", "energy")] if any(r.energy is not None for r in rows) else []
    links += [("opt", "opt scores")] if any(f.kind == "opt" for f in figures) else []
    links += [("notes", "how the figures were obtained")] if rows else []
    return "<nav>" + "".join(f'<a href="#{html.escape(a)}">{html.escape(t)}</a>' for a, t in links) + "</nav>"


def page(title: str, rows: Sequence[Row], figures: Sequence[Figure], identity: RunIdentity, maps_html: str = "") -> str:
    """The whole page (see the module docstring)."""
    under = {f.workload: _figure(f) + points_table(f) for f in figures if f.kind == "pareto"}
    about = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in identity_items(identity))
    budgets = "" if any(r.marks for r in rows) or not rows else (
        '<p class="muted">This run file holds no budget results (written before runs recorded them): '
        "the plots show no budget lines.</p>")
    parts = [f"<h1>{html.escape(title)}</h1><dl class=\"run\">{about}</dl><p>{verdict_badges(rows)}</p>{budgets}",
             _contents(rows, figures), html_sections(rows, under), energy_section(rows, figures)]
    parts += [f'<section id="opt"><h2>opt scores</h2>{_figure(f)}</section>' for f in figures if f.kind == "opt"]
    parts.append(f"<section id=\"notes\"><h2>How the figures were obtained</h2>{html_notes(rows)}</section>")
    parts.append(maps_html)
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}{_verdict_css()}</style></head><body>{''.join(parts)}</body></html>")
