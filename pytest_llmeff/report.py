"""Reports: the terminal summary table (the first study's Table 4 layout) and its footnotes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_llmeff.score import PRESETS


def labels(records: Sequence[Any]) -> list[str]:
    """Row labels: the method, and the workload where it is not the run's most common one
    (two ``base`` rows of different workloads must not look alike)."""
    workloads = [r.workload for r in records]
    common = max(set(workloads), key=workloads.count) if workloads else ""
    return [r.method if r.workload == common else f"{r.method} @{r.workload}" for r in records]


def _pct(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "–"
    return f"{(value / base - 1) * 100:+.1f}%"


def _num(value: float | None, scale: float = 1.0, digits: int = 4) -> str:
    return "–" if value is None else f"{value * scale:.{digits}g}"


def _other_quality(values: dict[str, float]) -> str:
    """Task scores and generation metrics, compactly: ``mmlu .412 · exact_match 1.00``."""
    from pytest_llmeff.metrics import METRICS, get_metric

    parts = [f"{k} {v:.3g}" for k, v in values.items()
             if k != "perplexity" and k in METRICS and not get_metric(k).cost]
    return " · ".join(parts) or "–"


def _count(value: float | None) -> str:
    if value is None:
        return "–"
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.0f}"


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
    header = ["case", "params", "Δ", "layers/heads", "perplexity", "Δ", "other quality", "time ms", "Δ",
              f"energy {e_unit}", "Δ", *[f"opt {p}" for p in PRESETS], "verdict"]
    rows = []
    for label, r in zip(labels([r.record for r in results]), results, strict=True):
        cur, ref = r.record.numbers(), r.reference.numbers()
        shape = (f"{cur['layers']:.0f}/{cur['heads']:.0f}" if "layers" in cur and "heads" in cur else "–")
        rows.append([
            label,
            _count(cur.get("parameters")), _pct(cur.get("parameters"), ref.get("parameters")), shape,
            _num(cur.get("perplexity")), _pct(cur.get("perplexity"), ref.get("perplexity")),
            _other_quality(cur),
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
        if session.options.paired:
            lines.append("Δ and opt: against the base model timed again next to each case (paired); the base "
                         "row shows its own first measurement")
        if time:
            lines.append(f"time: {time.detail.get('statistic')} of workload {time.detail.get('workload')} "
                         f"on {time.detail.get('device')}, {time.method}")
        if energy:
            kind = "ESTIMATED" if energy.estimated else "measured"
            lines.append(f"energy ({kind}): {energy.method}; {energy.detail.get('statistic', '')}")
        for name in ("energy.idle", "co2e"):
            if name in first:
                lines.append(f"{name}: {first[name].method}")
    meter = session.built_meter()
    if meter is not None and session.device.startswith("cuda") and not any("gpu" in m.components
                                                                           for m in meter.meters):
        # The GPU draws most of a GPU run's energy: a total without it must not pass unremarked.
        why = meter.unavailable.get("nvml", "no GPU meter was chosen")
        lines.append(f"NO GPU ENERGY: the run is on {session.device} but no meter reads the GPU ({why}); "
                     "energy covers CPU + RAM only")
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
        elif not session.accepted:
            lines.append("no baselines written: no case passed")
    # Files the run was asked for but could not write: one line each, with what to do.
    lines += [f"ERROR: pytest-llmeff: {e}" for e in getattr(session, "errors", ())]
    return lines


def energy_rows(results: Sequence[Any]) -> tuple[list[str], list[list[str]]]:
    """Per call: the CPU / GPU / RAM split, idle (static) vs active, per token, CO2e."""
    with_energy = [r for r in results if "energy" in r.record.values]
    totals = [r.record.values["energy"].value for r in with_energy]
    unit, scale = _energy_unit(totals)
    header = ["case", f"cpu {unit}", f"gpu {unit}", f"ram {unit}", f"idle {unit}", f"active {unit}",
              "µJ/token", "windows", "cv", "CO2e mg"]
    rows = []
    for label, r in zip(labels([r.record for r in with_energy]), with_energy, strict=True):
        v = r.record.numbers()
        detail = r.record.values["energy"].detail
        split = [_num(v.get(f"energy.{c}"), scale) for c in ("cpu", "gpu", "ram", "idle", "active")]
        rows.append([label, *split,
                     _num(v.get("energy_per_token"), 1e6), str(detail.get("windows", 1)),
                     f"{detail['cv']:.1%}" if detail.get("windows", 1) > 1 else "–", _num(v.get("co2e"), 1e3)])
    return header, rows


def what_if_rows(results: Sequence[Any], regions: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """CO2e of 1,000 calls of each case across regions (operational, PUE 1)."""
    from pytest_llmeff.carbon import intensity, operational_grams

    sources = [intensity(r) for r in regions]
    header = ["case (g CO2e / 1000 calls)", *[f"{s.region} ({s.g_per_kwh:g})" for s in sources]]
    with_energy = [r for r in results if "energy" in r.record.values]
    rows = [[label, *[_num(operational_grams(r.record.values["energy"].value * 1000, s), digits=3) for s in sources]]
            for label, r in zip(labels([r.record for r in with_energy]), with_energy, strict=True)]
    return header, rows


def summary_lines(results: Sequence[Any], session: Any) -> list[str]:
    header, rows = summary_rows(results)
    lines = [f"model {session.options.model.name} on {session.device} ({session.dtype})",
             *format_table(header, rows), ""]
    e_header, e_rows = energy_rows(results)
    if e_rows:
        lines += ["energy per call:", *format_table(e_header, e_rows), ""]
        if session.options.what_if:
            w_header, w_rows = what_if_rows(results, session.options.what_if)
            lines += ["carbon what-if (same energy, other grids):", *format_table(w_header, w_rows), ""]
    return lines + footnotes(results, session)
