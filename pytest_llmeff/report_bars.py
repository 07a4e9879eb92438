"""The report's per-case bar plots (energy split, opt scores): one panel per workload, cases in the
order of their table, each labelled on its own line (long pipeline names stay readable)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_llmeff.report_tables import verdict_colour
from pytest_llmeff.rows import Row, energy_unit, num, sections
from pytest_llmeff.score import PRESETS

PARTS = {"cpu": "#0969da", "gpu": "#1a7f37", "ram": "#bc4c00"}
PRESET_MARKERS = {"balanced": "o", "energy": "^", "runtime": "s", "run": "D"}


def _panels(plt: Any, groups: Sequence[tuple[str, list[Row]]], width: float = 10.0) -> Any:
    heights = [0.9 + 0.27 * len(g) for _, g in groups]
    fig, axes = plt.subplots(len(groups), 1, figsize=(width, sum(heights) + 0.6), squeeze=False,
                             gridspec_kw={"height_ratios": heights}, dpi=110)
    return fig, [row[0] for row in axes]


def _case_axis(ax: Any, group: Sequence[Row]) -> None:
    """Case labels on the y axis, top to bottom as in the table; a failed or inconclusive case's
    label in its verdict's colour."""
    ax.set_yticks(range(len(group)), [r.label for r in group])
    for tick, r in zip(ax.get_yticklabels(), group, strict=True):
        if r.verdict in ("fail", "inconclusive"):
            tick.set_color(verdict_colour(r.verdict))
            tick.set_fontweight("bold")
    ax.set_ylim(len(group) - 0.5, -0.5)
    ax.grid(axis="x", alpha=0.25, lw=0.5)


def energy_figure(plt: Any, workload: str, group: Sequence[Row]) -> Any:
    """One workload's energy per call: CPU / GPU / RAM stacked (hatched where estimated), the total
    and the CO2e written at the bar's end in the units of the section's tables."""
    group = [r for r in group if r.energy is not None]
    if not group:
        return None
    fig, (ax,) = _panels(plt, [(workload, list(group))], width=5.2)  # beside its table on a 1400 px page
    unit, scale = energy_unit(r.energy for r in group if r.energy is not None)
    parts = [p for p in PARTS if any(p in r.energy_parts for r in group)]
    left = [0.0] * len(group)
    for part in parts:
        values = [r.energy_parts.get(part, 0.0) * scale for r in group]
        estimated = [part in r.parts_estimated for r in group]
        bars = ax.barh(range(len(group)), values, left=left, color=PARTS[part], alpha=0.85, height=0.7,
                       label=part + (" (estimated)" if any(estimated) else ""), edgecolor="white", lw=0.4)
        for bar, est in zip(bars, estimated, strict=True):
            bar.set_hatch("///" if est else None)
        left = [a + b for a, b in zip(left, values, strict=True)]
    if not parts:  # a meter without a split: the total alone
        left = [(r.energy or 0.0) * scale for r in group]
        ax.barh(range(len(group)), left, color="#8c959f", height=0.7, label="total")
    for i, r in enumerate(group):
        co2 = r.energy_parts.get("co2e")
        text = f"{num(r.energy, scale)} {unit}" + (f" · {num(co2, 1e3)} mg CO2e" if co2 is not None else "")
        ax.annotate(text, (max(left[i], (r.energy or 0.0) * scale), i), xytext=(3, 0),
                    textcoords="offset points", va="center", fontsize=7)
    _case_axis(ax, group)
    ax.set_xlim(0, max(left, default=1) * 1.3)  # room for the written totals
    ax.set_xlabel(f"energy per call, {unit}")
    ax.set_title(f"{workload}: energy per call (hatched: estimated)", loc="left")
    # under the axis: clear of every bar, however long
    fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=len(parts) or 1, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.3 / fig.get_figheight(), 1, 1))
    return fig


LOG_TICKS = (0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)


def opt_figure(plt: Any, rows: Sequence[Row]) -> Any:
    """Per workload, each case's opt score under every preset, the run's written beside it as the
    tables print it; the reference's 1, and where the run had opt budgets their limit and the
    stored baseline they were moved from."""
    groups = [(w, g) for w, g in sections([r for r in rows if r.opt])]
    if not groups:
        return None
    fig, axes = _panels(plt, groups)
    for ax, (workload, group) in zip(axes, groups, strict=True):
        y = range(len(group))
        ax.axvline(1.0, color="#57606a", lw=1, zorder=0, label="reference = 1")
        for preset in PRESETS:
            ax.scatter([r.opt.get(preset, float("nan")) for r in group], y, marker=PRESET_MARKERS[preset], s=20,
                       alpha=0.75, label=f"opt {preset}", zorder=3)
        for i, r in enumerate(group):  # the run's score, as the tables print it, right of every mark
            if r.opt:
                right = max([*r.opt.values(), *(m.limit for m in r.marks if m.metric.startswith("opt"))])
                ax.annotate(num(r.rank_opt if r.rank_opt is not None else min(r.opt.values()), digits=3),
                            (right, i), xytext=(6, 0), textcoords="offset points", va="center", fontsize=7)
        _opt_marks(ax, group)
        _case_axis(ax, group)
        values = [v for r in group for v in r.opt.values()] + [m.limit for r in group for m in r.marks
                                                               if m.metric.startswith("opt")]
        if max(values, default=1.0) / max(min(values, default=1.0), 1e-9) > 4:
            ax.set_xscale("log", base=2)  # one slow case far out: a log axis keeps the others apart
            ax.set_xticks([t for t in LOG_TICKS if min(values) / 1.3 <= t <= max(values) * 1.3])
            ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}")
            ax.xaxis.set_minor_formatter(lambda v, _: "")
        ax.set_xlabel("opt score (lower is better; the reference is 1; the run's score written)")
        ax.set_title(f"{workload}: opt score per preset", loc="left")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def _opt_marks(ax: Any, group: Sequence[Row]) -> None:
    limits = [(i, m) for i, r in enumerate(group) for m in r.marks if m.metric.startswith("opt")]
    if not limits:
        return
    ax.scatter([m.limit for _, m in limits], [i for i, _ in limits], marker="|", s=140, linewidths=1.6,
               color=[verdict_colour(m.status) if m.status != "pass" else "#24292f" for _, m in limits],
               label="opt budget limit", zorder=4)
    known = [(i, m) for i, m in limits if m.kind == "baseline" and m.origin is not None]
    if known:
        ax.scatter([m.origin for _, m in known], [i for i, _ in known], marker="d", s=26, facecolors="none",
                   edgecolors="#24292f", linewidths=0.9, label="stored baseline", zorder=4)
