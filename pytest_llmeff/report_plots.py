"""The report's plots, drawn from the rows the tables show (matplotlib, PNG; imported on first use).

- Trade-off, per workload: Δ time and Δ energy against the case's paired reference (the tables'
  Δ: under load the plot agrees with the table, where raw times would not) against Δ perplexity,
  or against the section's first quality score where it has no perplexity. Every point labelled
  and coloured by verdict; error bars: the Δ's bootstrap interval; budget lines (drift and absolute
  budgets) and per-case marks (budgets against the stored baseline); the Pareto front dashed.
- Energy per call, per workload: CPU / GPU / RAM stacked, hatched where estimated; the total and
  CO2e written at the bar's end, as the tables print them.
- opt scores per preset, per workload: the reference's 1, each case's opt budget limit and the
  stored baseline it was moved from.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_llmeff.report_labels import place_labels
from pytest_llmeff.report_tables import VERDICT_COLOURS, verdict_colour
from pytest_llmeff.rows import Row, pct, sections

MARKERS = {"pass": "o", "fail": "X", "inconclusive": "D"}  # the reference: a star; others: a circle
DPI = 110
BACKING = {"boxstyle": "square,pad=0.05", "fc": "white", "ec": "none", "alpha": 0.75}  # text legible over lines
SYMLOG_TICKS = (-100, -50, 0, 50, 100, 1000, 10000, 100000)  # %: linear to ±100, then by decades


@dataclass(frozen=True)
class Axis:
    """The quality axis of a trade-off plot: Δ perplexity, else a quality score as measured."""

    metric: str
    title: str
    value: Callable[[Row], float | None]
    is_delta: bool
    lower_is_better: bool


@dataclass(frozen=True)
class Point:
    """One case in a trade-off panel; ``x`` a Δ cost, ``low`` / ``high`` its interval (ratios)."""

    row: Row
    x: float
    y: float
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Figure:
    kind: str  # "pareto", "energy", "opt"
    name: str  # file stem: "pareto-forward-1x256", "energy-forward-1x256", "opt"
    caption: str
    png: str  # base64
    workload: str = ""  # the section the plot belongs to ("" for the run's opt plot)
    points: dict[str, list[Point]] | None = None  # per cost: what a trade-off plot drew


def quality_axis(rows: Sequence[Row]) -> Axis | None:
    from pytest_llmeff.metrics import METRICS, get_metric

    if any(r.delta.get("perplexity") is not None and not r.is_reference for r in rows):
        return Axis("perplexity", "Δ perplexity vs reference (%, lower is better)",
                    lambda r: r.delta.get("perplexity"), True, True)
    names = list(dict.fromkeys(name for r in rows for name, _ in r.quality))
    if not names:
        return None
    name = names[0]
    higher = name in METRICS and get_metric(name).higher_is_better
    return Axis(name, f"{name} ({'higher' if higher else 'lower'} is better)", lambda r: dict(r.quality).get(name),
                False, not higher)


def tradeoff_points(rows: Sequence[Row], cost: str, axis: Axis) -> list[Point]:
    """The cases of one section that have both figures, in the table's order."""
    out = []
    for r in rows:
        x, y = r.delta.get(cost), axis.value(r)
        if x is None or y is None:
            continue
        low, high = r.intervals.get(cost, (None, None))
        out.append(Point(r, x, y, low, high))
    return out


def pareto(points: Sequence[Point], lower_is_better: bool = True) -> list[Point]:
    """The points no other beats on both cost and quality, by cost."""
    front: list[Point] = []
    for p in sorted(points, key=lambda p: (p.x, p.y if lower_is_better else -p.y)):
        if not front or (p.y < front[-1].y if lower_is_better else p.y > front[-1].y):
            front.append(p)
    return front


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "workload"


def figures(rows: Sequence[Row]) -> list[Figure]:
    """Every plot the rows have figures for: per workload a trade-off and an energy plot, then the
    opt scores of every workload."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    from pytest_llmeff.report_bars import energy_figure, opt_figure

    out = []
    with plt.rc_context({"font.size": 8, "axes.titlesize": 9, "axes.spines.top": False,
                         "axes.spines.right": False}):
        for workload, group in sections(rows):
            drawn = tradeoff_figure(plt, workload, group)
            if drawn is not None:
                out.append(Figure("pareto", f"pareto-{slug(workload)}", f"{workload}: cost against quality, "
                                  "every case against its paired reference", _png(drawn[0]), workload, drawn[1]))
                plt.close(drawn[0])
            fig = energy_figure(plt, workload, group)
            if fig is not None:
                out.append(Figure("energy", f"energy-{slug(workload)}", f"{workload}: energy per call by component",
                                  _png(fig), workload))
                plt.close(fig)
        fig = opt_figure(plt, rows)
        if fig is not None:
            out.append(Figure("opt", "opt", "opt score per preset (lower is better; the reference is 1)", _png(fig)))
            plt.close(fig)
    return out


def tradeoff_figure(plt: Any, workload: str, rows: Sequence[Row]) -> tuple[Any, dict[str, list[Point]]] | None:
    axis = quality_axis(rows)
    costs = [c for c in ("time", "energy") if any(r.delta.get(c) is not None for r in rows)]
    if axis is None or not costs or len(rows) < 2:
        return None
    height = 4.6 if len(rows) < 8 else 6.4  # a few cases need less room for their labels
    fig, axes = plt.subplots(1, len(costs), figsize=(7.4 * len(costs), height), squeeze=False, dpi=DPI)
    drawn = {}
    for ax, cost in zip(axes[0], costs, strict=False):
        drawn[cost] = tradeoff_points(rows, cost, axis)
        _tradeoff_panel(ax, drawn[cost], cost, axis, rows)
    fig.legend(handles=_legend(plt, rows, drawn), loc="lower center", ncol=8, frameon=False,
               bbox_to_anchor=(0.5, -0.05))
    fig.suptitle(f"{workload}: Δ against each case's paired reference (the tables' figures)", fontsize=10)
    return fig, drawn


def _legend(plt: Any, rows: Sequence[Row], drawn: dict[str, list[Point]]) -> list[Any]:
    """Legend entries for what the panels show, and nothing else."""
    line = plt.Line2D
    handles = [line([], [], ls="", marker="*", ms=11, color="black", label="reference")]
    handles += [line([], [], ls="", marker=MARKERS.get(v, "o"), ms=6, color=verdict_colour(v), label=v or "no verdict")
                for v in dict.fromkeys(r.verdict for r in rows if not r.is_reference)]
    handles.append(line([], [], ls="--", color="#0969da", alpha=0.5, label="Pareto front"))
    kinds = {m.kind for r in rows for m in r.marks}
    if kinds - {"baseline"}:
        handles.append(line([], [], ls=(0, (4, 3)), color=VERDICT_COLOURS["fail"], lw=0.9, label="budget limit"))
    if "baseline" in kinds:
        handles.append(line([], [], ls="", marker="_", ms=10, mew=1.5, color="#57606a",
                            label="case's limit vs stored baseline"))
    if any(p.low is not None for ps in drawn.values() for p in ps):
        handles.append(line([], [], color="#57606a", lw=1, label="95% interval of Δ"))
    return handles


def _tradeoff_panel(ax: Any, points: Sequence[Point], cost: str, axis: Axis, rows: Sequence[Row]) -> None:
    xs = [p.x * 100 for p in points]
    ys = [p.y * 100 if axis.is_delta else p.y for p in points]
    ax.axvline(0, color="#afb8c1", lw=0.8, zorder=0)
    if axis.is_delta:
        ax.axhline(0, color="#afb8c1", lw=0.8, zorder=0)
    front = pareto(points, axis.lower_is_better)
    ax.plot([p.x * 100 for p in front], [p.y * 100 if axis.is_delta else p.y for p in front], "--",
            color="#0969da", alpha=0.5, lw=1, zorder=1)
    _draw_points(ax, points, xs, ys)
    avoid = _budget_lines(ax, rows, cost, axis)
    ticks = _case_marks(ax, points, cost, axis)
    _style_axes(ax, xs, cost, axis)
    ax.figure.canvas.draw()  # the limits are final: labels are placed in display coordinates
    bars = [((p.low * 100, y), (p.high * 100, y)) for p, y in zip(points, ys, strict=True)
            if p.low is not None and p.high is not None]
    # pass labels in ink, the others in their verdict's colour: those are the ones to find
    inks = [verdict_colour(p.row.verdict) if p.row.verdict not in ("pass", "") else "#24292f" for p in points]
    place_labels(ax, xs, ys, [p.row.label for p in points], inks, avoid, bars + [(t, t) for t in ticks],
                 [9.0 if p.row.is_reference else 4.5 for p in points])


def _draw_points(ax: Any, points: Sequence[Point], xs: Sequence[float], ys: Sequence[float]) -> None:
    """Each case by its verdict's colour and marker (the reference a black star), with its interval."""
    for p, x, y in zip(points, xs, ys, strict=True):
        colour = verdict_colour(p.row.verdict)
        if p.low is not None and p.high is not None:
            ax.errorbar([x], [y], xerr=[[max(0.0, x - p.low * 100)], [max(0.0, p.high * 100 - x)]], fmt="none",
                        ecolor=colour, alpha=0.55, lw=1, capsize=2, zorder=2)
        if p.row.is_reference:
            ax.scatter([x], [y], marker="*", s=130, color="black", zorder=4)
        else:
            ax.scatter([x], [y], marker=MARKERS.get(p.row.verdict, "o"), s=34, color=colour,
                       edgecolors="white", linewidths=0.5, zorder=4)


def _style_axes(ax: Any, xs: Sequence[float], cost: str, axis: Axis) -> None:
    ax.margins(x=0.14, y=0.12)
    if max(map(abs, xs), default=0) > 300:  # one far outlier (a slow kernel) would squash the rest:
        ax.set_xscale("symlog", linthresh=100, linscale=3)  # linear to ±100 %, most of the width
        low, high = min(xs, default=0), max(xs, default=0)
        ax.set_xticks([t for t in SYMLOG_TICKS if low - 50 <= t <= high])
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:+.0f}%")
    if axis.is_delta:
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:+.0f}%")
    ax.set_xlabel(f"Δ {cost} vs paired reference (%, lower is better)")
    ax.set_ylabel(axis.title)
    ax.grid(alpha=0.25, lw=0.5)


def _budget_lines(ax: Any, rows: Sequence[Row], cost: str, axis: Axis) -> list[Any]:
    """Drift budgets (against the reference) and absolute bounds: one line per budget and limit,
    the quality budget across, the cost budget upright; solid red where a case failed it. Returns
    the lines' labels (the points' labels keep clear of them)."""
    lines: dict[tuple[bool, str, float], list[str]] = {}
    for r in rows:
        for m in r.marks:
            across = m.metric == axis.metric
            if m.kind == "baseline" or not (across or m.metric == cost):
                continue
            value = m.limit if across and not axis.is_delta else m.delta * 100 if m.delta is not None else None
            if value is not None:
                lines.setdefault((across, m.text, round(value, 6)), []).append(m.status)
    out = []
    for (across, text, value), statuses in lines.items():
        worst = "fail" if "fail" in statuses else "inconclusive" if "inconclusive" in statuses else ""
        colour, alpha = (verdict_colour(worst), 1.0) if worst else (VERDICT_COLOURS["fail"], 0.55)
        (ax.axhline if across else ax.axvline)(value, color=colour, ls=(0, (4, 3)), lw=0.9, alpha=alpha, zorder=1)
        label = f"{text} ({len(statuses)} case{'s' if len(statuses) != 1 else ''})"
        if across:
            out.append(ax.annotate(label, (1, value), xycoords=("axes fraction", "data"), xytext=(-2, 2),
                                   textcoords="offset points", ha="right", va="bottom", fontsize=7, color=colour,
                                   bbox=BACKING))
        else:
            out.append(ax.annotate(label, (value, 1), xycoords=("data", "axes fraction"), xytext=(2, -2),
                                   textcoords="offset points", ha="left", va="top", fontsize=7, color=colour,
                                   rotation=90, bbox=BACKING))
    return out


def _case_marks(ax: Any, points: Sequence[Point], cost: str, axis: Axis) -> list[tuple[float, float]]:
    """Budgets against the stored baseline: each case's own limit, a short bar at its point.
    Returns where the bars are (data coordinates), for the labels to keep clear of them."""
    out = []
    for p in points:
        for m in p.row.marks:
            if m.kind != "baseline" or m.delta is None:
                continue
            colour = verdict_colour(m.status) if m.status != "pass" else "#57606a"
            if m.metric == axis.metric and axis.is_delta:
                at, marker = (p.x * 100, m.delta * 100), "_"
            elif m.metric == cost:
                at, marker = (m.delta * 100, p.y * 100 if axis.is_delta else p.y), "|"
            else:
                continue
            ax.plot(*at, marker=marker, ms=10, mew=1.5, color=colour, zorder=3)
            out.append(at)
    return out


def interval_text(p: Point) -> str:
    """A point's Δ and interval as the page lists them: ``-41.8% [-42.6%, -40.1%]``."""
    return pct(p.x) + (f" [{pct(p.low)}, {pct(p.high)}]" if p.low is not None and p.high is not None else "")
