"""One row per case: the figures every table shows (terminal, markdown, HTML), computed once.

A :class:`Row` holds a case's figures in base units (seconds, joules), their change against the
case's own reference (the base model timed next to it, ``CaseResult.reference``), its opt scores,
verdict and the one-line reason for a failed or inconclusive verdict; for the report's plots also
the Δ's bootstrap interval and the case's budget limits. The views (tables and plots) only format
rows; none of them computes a figure, so every table and plot shows the same Δ for the same case.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_llmeff.details import EnergyDetail
from pytest_llmeff.intervals import delta_intervals
from pytest_llmeff.marks import Mark, change, marks_of
from pytest_llmeff.records import CaseRecord

DELTA_KEYS = ("perplexity", "time", "energy", "parameters")  # the figures shown with their Δ
ENERGY_PARTS = ("cpu", "gpu", "ram", "idle", "active")
# Run files written before they carried each case's reference: the record these methods produced
# is taken as the reference of its workload (the base model, the no-cache replay).
REFERENCE_METHODS = ("base", "cache:none")


def pct(ratio: float | None) -> str:
    """A change as the tables print it: ``+12.3%``, ``–`` where there is none."""
    return "–" if ratio is None else f"{ratio * 100:+.1f}%"


def num(value: float | None, scale: float = 1.0, digits: int = 4) -> str:
    """``digits`` significant digits; whole numbers from ``10**digits`` on (``11850``, never ``1.185e+04``)."""
    if value is None:
        return "–"
    scaled = value * scale
    return f"{scaled:.0f}" if abs(scaled) >= 10 ** digits else f"{scaled:.{digits}g}"


def count(value: float | None) -> str:
    """Parameter counts: ``3.51M``."""
    if value is None:
        return "–"
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.0f}"


def energy_unit(values: Iterable[float]) -> tuple[str, float]:
    """The unit that shows the largest of ``values`` with at least one digit before the point."""
    top = max(values, default=1.0)
    for unit, scale in (("J", 1.0), ("mJ", 1e3), ("µJ", 1e6)):
        if top * scale >= 1:
            return unit, scale
    return "µJ", 1e6


@dataclass(frozen=True)
class Row:
    """What the tables show of one case (figures in seconds and joules; see the module docstring)."""

    case_id: str
    label: str  # the method: "kd+nf4", "cache:static"
    workload: str  # the section the row is shown in
    is_reference: bool  # the reference itself (base, cache:none): listed first, never "best"
    verdict: str
    reason: str = ""  # why the verdict is fail / inconclusive, one line; "" otherwise
    parameters: float | None = None
    layers: float | None = None
    heads: float | None = None
    perplexity: float | None = None
    quality: tuple[tuple[str, float], ...] = ()  # task scores and generation metrics, by name
    quality_se: Mapping[str, float] = field(default_factory=dict)  # lm-eval's standard error of a task score
    time: float | None = None
    energy: float | None = None
    delta: Mapping[str, float | None] = field(default_factory=dict)  # DELTA_KEYS → change vs the reference
    opt: Mapping[str, float] = field(default_factory=dict)  # preset → score; "run": the run's weights
    energy_estimated: bool = False
    units: Mapping[str, str] = field(default_factory=dict)  # perplexity, time, energy: as measured
    methods: Mapping[str, str] = field(default_factory=dict)  # how perplexity, time, energy were obtained
    time_statistic: str = ""  # "median per call", "median per prompt" …
    energy_parts: Mapping[str, float] = field(default_factory=dict)  # cpu … active, per_token, co2e
    energy_windows: int = 1
    energy_cv: float | None = None
    parts_estimated: tuple[str, ...] = ()  # the energy parts that are estimates (hatched in the plots)
    intervals: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # time, energy → Δ interval
    marks: tuple[Mark, ...] = ()  # the case's budgets that have a limit
    notes: tuple[str, ...] = ()

    @property
    def rank_opt(self) -> float | None:
        """The score the tables rank by: the run's own weights."""
        return self.opt.get("run")


def _quality(values: Mapping[str, float]) -> tuple[tuple[str, float], ...]:
    from pytest_llmeff.metrics import is_quality

    return tuple((k, v) for k, v in values.items() if k != "perplexity" and is_quality(k))


def _standard_errors(record: CaseRecord) -> dict[str, float]:
    """lm-eval's standard error of each task score that has one (its ``stderr`` detail)."""
    out = {}
    for name, m in record.values.items():
        se = m.detail.get("stderr") if isinstance(m.detail, Mapping) else None
        if isinstance(se, (int, float)) and not isinstance(se, bool):
            out[name] = float(se)
    return out


def quality_cell(value: float | None, se: float | None) -> str:
    """A task score with its standard error: ``0.612±0.027``."""
    return num(value, digits=3) + (f"±{se:.3f}" if value is not None and se is not None else "")


def make_row(record: CaseRecord, reference: CaseRecord | None, verdict: str, reason: str = "",
             budgets: Sequence[Any] = ()) -> Row:
    """The row of ``record``, its Δ against ``reference`` (None: no Δ); ``budgets``: its ``BudgetResult``s."""
    cur = record.numbers()
    ref = reference.numbers() if reference is not None else {}
    energy = record.values.get("energy")
    measured = {k: record.values[k] for k in ("perplexity", "time", "energy") if k in record.values}
    parts = {p: cur[f"energy.{p}"] for p in ENERGY_PARTS if f"energy.{p}" in cur}
    parts |= {k: cur[k] for k in ("energy_per_token", "co2e") if k in cur}
    return Row(
        case_id=record.case_id, label=record.method, workload=record.workload,
        is_reference=reference is not None and record.method == reference.method,
        verdict=verdict, reason=reason,
        parameters=cur.get("parameters"), layers=cur.get("layers"), heads=cur.get("heads"),
        perplexity=cur.get("perplexity"), quality=_quality(cur), quality_se=_standard_errors(record),
        time=cur.get("time"), energy=cur.get("energy"),
        delta={k: change(cur.get(k), ref.get(k)) for k in DELTA_KEYS},
        opt=dict(record.opt), energy_estimated=bool(energy and energy.estimated),
        units={k: m.unit for k, m in measured.items()}, methods={k: m.method for k, m in measured.items()},
        time_statistic=record.timing.statistic if record.timing else "",
        energy_parts=parts,
        energy_windows=energy.detail.windows if energy and isinstance(energy.detail, EnergyDetail) else 1,
        energy_cv=energy.detail.cv if energy and isinstance(energy.detail, EnergyDetail) else None,
        parts_estimated=tuple(p for p in ENERGY_PARTS if f"energy.{p}" in record.values
                              and record.values[f"energy.{p}"].estimated),
        intervals=delta_intervals(record, reference), marks=marks_of(budgets, ref, DELTA_KEYS),
        notes=tuple(record.notes),
    )


def undecided(budgets: Sequence[Any]) -> list[Any]:
    """The budgets (``BudgetResult``) that failed, then those that were inconclusive."""
    return [b for b in budgets if b.status == "fail"] + [b for b in budgets if b.status == "inconclusive"]


def reason_of(budgets: Sequence[Any]) -> str:
    """The first broken budget's message, else the first inconclusive one; ``(+N more)`` when other
    budgets of the case failed or were inconclusive as well."""
    open_ = undecided(budgets)
    if not open_:
        return ""
    more = f" (+{len(open_) - 1} more)" if len(open_) > 1 else ""
    return open_[0].message + more


def rows_of(results: Sequence[Any]) -> list[Row]:
    """Rows of the run's case results (``CaseResult``), in run order."""
    return [make_row(r.record, r.reference, r.verdict, reason_of(r.budgets), r.budgets) for r in results]


def rows_of_run(cases: Mapping[str, CaseRecord], verdicts: Mapping[str, str],
                references: Mapping[str, CaseRecord], reasons: Mapping[str, str],
                budgets: Mapping[str, Sequence[Any]] | None = None) -> list[Row]:
    """Rows of a saved run; a case without its stored reference takes its workload's base record.
    ``budgets``: each case's ``BudgetResult``s, where the run file has them."""
    fallback = {}
    for r in cases.values():
        if r.method in REFERENCE_METHODS:
            fallback.setdefault(r.workload, r)
    return [make_row(r, references.get(cid) or fallback.get(r.workload), verdicts.get(cid, ""), reasons.get(cid, ""),
                     (budgets or {}).get(cid, ())) for cid, r in cases.items()]


# ---------------------------------------------------------------------------- sections and columns
def ranked(rows: Sequence[Row]) -> list[Row]:
    """Reference rows first, then by the run's opt score (lower is better), unscored rows last."""
    return sorted(rows, key=lambda r: (not r.is_reference, r.rank_opt is None, r.rank_opt or 0.0))


def sections(rows: Sequence[Row]) -> list[tuple[str, list[Row]]]:
    """Rows grouped by workload (timings of different workloads do not compare), each ranked;
    workloads in the order the run first measured them."""
    groups: dict[str, list[Row]] = {}
    for r in rows:
        groups.setdefault(r.workload, []).append(r)
    return [(w, ranked(g)) for w, g in groups.items()]


def best(rows: Sequence[Row]) -> Row | None:
    """The non-reference row with the lowest opt score, if any is scored."""
    scored = [r for r in rows if not r.is_reference and r.rank_opt is not None]
    return min(scored, key=lambda r: r.rank_opt or 0.0) if scored else None


def heading(workload: str, rows: Sequence[Row]) -> str:
    """A section's title: the workload once, how many cases, and what its time figure is."""
    stats = sorted({r.time_statistic for r in rows if r.time_statistic})
    timed = f"; time: {', '.join(stats)}" if stats else ""
    return f"{workload} ({len(rows)} case{'s' if len(rows) != 1 else ''}{timed})"


Cell = Callable[[Row], str]
BEST = "★"  # under the header "best": the lowest opt score of a section's compressed cases


def columns(rows: Sequence[Row], opts: Sequence[tuple[str, str]]) -> list[tuple[str, Cell]]:
    """The columns of a section: quality, then costs, then size, then opt and verdict.

    ``opts``: (key in ``Row.opt``, header) of the opt scores to show. The energy unit is chosen
    for the section, so that a section of millijoule calls does not print 0.000531.
    """
    e_unit, e_scale = energy_unit(r.energy for r in rows if r.energy is not None)
    quality = list(dict.fromkeys(name for r in rows for name, _ in r.quality))
    return [
        ("case", lambda r: r.label),
        ("perplexity", lambda r: num(r.perplexity)), ("Δ", lambda r: pct(r.delta.get("perplexity"))),
        *[(q, lambda r, q=q: quality_cell(dict(r.quality).get(q), r.quality_se.get(q))) for q in quality],
        ("time ms", lambda r: num(r.time, 1e3)), ("Δ", lambda r: pct(r.delta.get("time"))),
        (f"energy {e_unit}", lambda r: num(r.energy, e_scale)), ("Δ", lambda r: pct(r.delta.get("energy"))),
        ("params", lambda r: count(r.parameters)), ("Δ", lambda r: pct(r.delta.get("parameters"))),
        ("layers/heads", lambda r: f"{r.layers:.0f}/{r.heads:.0f}" if r.layers is not None and r.heads is not None
         else "–"),
        *[(header, lambda r, k=key: num(r.opt.get(k), digits=3)) for key, header in opts],
        ("verdict", lambda r: r.verdict),
    ]


def table(rows: Sequence[Row], opts: Sequence[tuple[str, str]]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of one section, without the columns no row fills; a last column ``best``
    marks the best case where one is scored."""
    top = best(rows)
    cols = [(h, [cell(r) for r in rows]) for h, cell in columns(rows, opts)]
    kept = [(h, c) for h, c in cols if h in ("case", "verdict") or any(x != "–" for x in c)]
    if top is not None:
        kept.append(("best", [BEST if r is top else "" for r in rows]))
    return [h for h, _ in kept], [list(cells) for cells in zip(*(c for _, c in kept), strict=True)]


def energy_table(rows: Sequence[Row]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of one section's energy split (per call): CPU / GPU / RAM, idle (static) vs
    active, per token, the windows read and their spread, CO2e; every column, "–" where a case has
    no such figure (a CPU run's GPU column says it was not measured). Units are chosen for the
    section, as in :func:`columns`."""
    unit, scale = energy_unit(r.energy for r in rows if r.energy is not None)
    t_unit, t_scale = energy_unit(r.energy_parts["energy_per_token"] for r in rows
                                  if "energy_per_token" in r.energy_parts)
    cols: list[tuple[str, Cell]] = [
        ("case", lambda r: r.label),
        *[(f"{p} {unit}", lambda r, p=p: num(r.energy_parts.get(p), scale)) for p in ENERGY_PARTS],
        (f"{t_unit}/token", lambda r: num(r.energy_parts.get("energy_per_token"), t_scale)),
        ("windows", lambda r: str(r.energy_windows)),
        ("cv", lambda r: f"{r.energy_cv:.1%}" if r.energy_windows > 1 and r.energy_cv is not None else "–"),
        ("CO2e mg", lambda r: num(r.energy_parts.get("co2e"), 1e3)),
    ]
    return [h for h, _ in cols], [[cell(r) for _, cell in cols] for r in rows]
