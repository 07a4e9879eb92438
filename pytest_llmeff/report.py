"""Reports: the terminal summary table (the first study's Table 4 layout) and its footnotes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_llmeff.score import PRESETS


def _pct(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "–"
    return f"{(value / base - 1) * 100:+.1f}%"


def _num(value: float | None, scale: float = 1.0, digits: int = 4) -> str:
    return "–" if value is None else f"{value * scale:.{digits}g}"


def _energy_unit(values: Sequence[float]) -> tuple[str, float]:
    top = max(values, default=1.0)
    for unit, scale in (("J", 1.0), ("mJ", 1e3), ("µJ", 1e6)):
        if top * scale >= 1:
            return unit, scale
    return "µJ", 1e6


def summary_rows(results: Sequence[Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: method, perplexity, time, energy (each with change vs base), opt per preset."""
    energies = [r.record.values["energy"].value for r in results if "energy" in r.record.values]
    e_unit, e_scale = _energy_unit(energies)
    header = ["case", "perplexity", "Δ", "time ms", "Δ", f"energy {e_unit}", "Δ",
              *[f"opt {p}" for p in PRESETS], "verdict"]
    rows = []
    for r in results:
        cur, ref = r.record.numbers(), r.reference.numbers()
        rows.append([
            r.record.method,
            _num(cur.get("perplexity")), _pct(cur.get("perplexity"), ref.get("perplexity")),
            _num(cur.get("time"), 1e3), _pct(cur.get("time"), ref.get("time")),
            _num(cur.get("energy"), e_scale), _pct(cur.get("energy"), ref.get("energy")),
            *[_num(r.record.opt.get(p), digits=3) for p in PRESETS],
            r.verdict,
        ])
    return header, rows


def format_table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    left = {0, len(header) - 1}

    def line(cells: list[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in pairs)

    return [line(header), "  ".join("-" * w for w in widths), *[line(r) for r in rows]]


def footnotes(results: Sequence[Any], session: Any) -> list[str]:
    """How the figures were obtained, what was not compared, and what was written."""
    lines: list[str] = []
    if results:
        first = results[0].record.values
        ppl, time, energy = first.get("perplexity"), first.get("time"), first.get("energy")
        if ppl:
            d = ppl.detail
            lines.append(f"perplexity: {ppl.method} on {d.get('dataset')} ({d.get('tokens_scored')} tokens, "
                         f"{d.get('windows')} windows); Δ vs the base model of this run")
        if time:
            lines.append(f"time: {time.detail.get('statistic')} of workload {time.detail.get('workload')} "
                         f"on {time.detail.get('device')}, {time.method}")
        if energy:
            kind = "ESTIMATED" if energy.estimated else "measured"
            lines.append(f"energy ({kind}): {energy.method}; per call = window total / calls")
    meter = getattr(session, "_meter", None)
    if meter is not None and meter.unavailable:
        lines.append("energy backends not used: " + "; ".join(f"{k}: {v}" for k, v in meter.unavailable.items()))
    weights = session.options.weights
    lines.append(f"opt = Q·(α·T_c + β·E_c), lower is better, base = α+β; this run's weights: "
                 f"{weights.name} (α={weights.alpha:g}, β={weights.beta:g})")
    for r in results:
        for note in r.record.notes:
            lines.append(f"{r.record.method}: {note}")
        for b in r.budgets:
            if b.status != "pass":
                lines.append(f"{r.record.method}: [{b.status}] {b.message}")
    drift = session.library_drift()
    if drift:
        lines.append("library versions differ from the baselines': " + ", ".join(drift))
    if session.options.update_baselines:
        if session.baseline_changes:
            lines.append(f"baselines written to {session.store.path}:")
            for ch in session.baseline_changes:
                new = ch.new
                old = ch.old or {}
                lines.append(f"  {ch.case_id}: perplexity {_num(old.get('perplexity'))} → "
                             f"{_num(new.get('perplexity'))}, opt {_num(old.get('opt'), digits=3)} → "
                             f"{_num(new.get('opt'), digits=3)}" + ("" if ch.old else " (new)"))
        else:
            lines.append("no baselines written: no case passed")
    return lines


def summary_lines(results: Sequence[Any], session: Any) -> list[str]:
    header, rows = summary_rows(results)
    return [f"model {session.options.model.name} on {session.device} ({session.dtype})",
            *format_table(header, rows), "", *footnotes(results, session)]
