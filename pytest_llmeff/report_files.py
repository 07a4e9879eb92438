"""Report files: a markdown summary (fit for a CI job summary) and an HTML page with plots.

Plots (matplotlib, PNG, embedded in the HTML):
- Pareto view: quality (perplexity) against latency and against energy, the non-dominated cases
  joined — the cases worth considering sit on that line;
- opt score per preset for every case (lower is better; the base model is 1);
- energy per call split into CPU / GPU / RAM, hatched where the figure is an estimate;
- the base model's pruning maps (the third study's pictures), written as ``heads.png`` and
  ``layers.png`` and linked from the page: per-head scores against the AH90 / AH80 thresholds,
  and the angular distance between layers ℓ and ℓ + n, each row n normalised to [0, 1].
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_llmeff.records import CaseRecord
from pytest_llmeff.report_tables import html_tables, markdown
from pytest_llmeff.rows import Row, rows_of, rows_of_run
from pytest_llmeff.score import PRESETS


def labels(records: Sequence[CaseRecord]) -> list[str]:
    """Plot labels: the method, and the workload where it is not the run's most common one (the
    plots put every workload on one axis, where two ``base`` bars must not look alike)."""
    workloads = [r.workload for r in records]
    common = max(set(workloads), key=workloads.count) if workloads else ""
    return [r.method if r.workload == common else f"{r.method} @{r.workload}" for r in records]


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _pareto(points: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """Points not dominated in (cost, perplexity), both lower-is-better, sorted by cost."""
    front, best = [], float("inf")
    for p in sorted(points):
        if p[1] < best:
            front.append(p)
            best = p[1]
    return front


def plots(records: Sequence[CaseRecord]) -> dict[str, str]:
    """Base64 PNGs by name: ``pareto``, ``opt``, ``energy`` (each only where a case has its figures)."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    out = {}
    for name, draw in (("pareto", _pareto_plot), ("opt", _opt_plot), ("energy", _energy_plot)):
        fig = draw(plt, records)
        if fig is not None:
            out[name] = _png(fig)
            plt.close(fig)
    return out


def _pareto_plot(plt: Any, records: Sequence[CaseRecord]) -> Any:
    quality = [r for r in records if "perplexity" in r.values and "time" in r.values]
    groups: dict[str, list[CaseRecord]] = {}
    for r in quality:  # timings of different workloads do not share an axis
        groups.setdefault(r.workload, []).append(r)
    ordered = sorted(groups.items(), key=lambda kv: -len(kv[1]))[:3]
    if not ordered:
        return None
    fig, axes = plt.subplots(len(ordered), 2, figsize=(11, 4.2 * len(ordered)), squeeze=False)
    for row, (workload, group) in zip(axes, ordered, strict=False):
        for ax, key, unit in ((row[0], "time", "ms per call"), (row[1], "energy", "mJ per call")):
            pts = [(r.values[key].value * 1e3, r.values["perplexity"].value, r.method)
                   for r in group if key in r.values]
            if not pts:
                ax.set_visible(False)
                continue
            front = _pareto(pts)
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=14, color="tab:gray")
            ax.plot([p[0] for p in front], [p[1] for p in front], "o--", lw=1, ms=5, color="tab:blue")
            for x, y, name in front:  # only the front is labelled: the rest is dominated
                ax.annotate(name, (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
            est = ", estimated" if any(r.values[key].estimated for r in group if key in r.values) else ""
            ax.set_xlabel(f"{key} ({unit}{est})")
            ax.set_ylabel(f"perplexity ({group[0].values['perplexity'].method})")
            ax.set_title(f"{workload}: Pareto front in blue", fontsize=9)
    return fig


def _opt_plot(plt: Any, records: Sequence[CaseRecord]) -> Any:
    scored = [r for r in records if r.opt]
    if not scored:
        return None
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(scored)), 4))
    width = 0.8 / len(PRESETS)
    for i, preset in enumerate(PRESETS):
        ax.bar([j + i * width for j in range(len(scored))], [r.opt.get(preset, 0) for r in scored],
               width, label=preset)
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xticks([j + width for j in range(len(scored))], labels(scored), rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("opt score (lower is better, base = 1)")
    ax.legend()
    return fig


def _energy_plot(plt: Any, records: Sequence[CaseRecord]) -> Any:
    split = [r for r in records if any(f"energy.{c}" in r.values for c in ("cpu", "gpu", "ram"))]
    if not split:
        return None
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(split)), 4))
    bottom = [0.0] * len(split)
    for comp in ("cpu", "gpu", "ram"):
        if not any(f"energy.{comp}" in r.values for r in split):
            continue  # a component no case measured (no GPU) gets no legend entry
        vals = [r.values[f"energy.{comp}"].value * 1e3 if f"energy.{comp}" in r.values else 0 for r in split]
        estimated = any(r.values[f"energy.{comp}"].estimated for r in split if f"energy.{comp}" in r.values)
        ax.bar(range(len(split)), vals, bottom=bottom, label=comp + (" (estimated)" if estimated else ""),
               hatch="//" if estimated else None)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_xticks(range(len(split)), labels(split), rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("energy per call, mJ")
    ax.legend()
    return fig


def pruning_plots(maps: Any) -> dict[str, str]:
    """Base64 PNGs ``heads`` and ``layers`` of :class:`pytest_llmeff.compress.maps.PruningMaps`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out = {}
    scores = np.array([row + [np.nan] * (max(map(len, maps.heads)) - len(row)) for row in maps.heads])
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * scores.shape[1], 0.9 + 0.5 * scores.shape[0]))
    image = ax.imshow(scores, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    for (layer, unit), value in np.ndenumerate(scores):
        over = [t for t in maps.thresholds if value > t]
        mark = f"\n> {max(over):g}" if over else ""
        ax.text(unit, layer, f"{value:.2f}{mark}", ha="center", va="center", fontsize=7,
                color="black" if value > 0.6 else "white", fontweight="bold" if over else "normal")
    bar = fig.colorbar(image, ax=ax)
    for t in maps.thresholds:
        bar.ax.axhline(t, color="red", lw=1)
    bar.set_label("share of attention one token receives (red: " + ", ".join(f"{t:g}" for t in maps.thresholds) + ")")
    ax.set_xlabel(maps.unit)
    ax.set_ylabel("layer")
    ax.set_title(f"head scores; removed above the threshold ({maps.samples} × {maps.window} tokens)", fontsize=9)
    out["heads"] = _png(fig)
    plt.close(fig)
    n_layers = len(maps.distances) + 1
    grid = np.full((n_layers - 1, n_layers - 1), np.nan)
    for n, row in enumerate(maps.distances, start=1):
        values = np.array(row)
        span = values.max() - values.min()
        grid[n - 1, :len(row)] = (values - values.min()) / span if span > 0 else 0.0
    fig, ax = plt.subplots(figsize=(1.5 + 0.6 * n_layers, 1.2 + 0.5 * n_layers))
    image = ax.imshow(grid, cmap="viridis", origin="lower", aspect="auto")
    for n, row in enumerate(maps.distances, start=1):
        for start, d in enumerate(row):
            ax.text(start, n - 1, f"{d:.2f}", ha="center", va="center", fontsize=7,
                    color="black" if grid[n - 1, start] > 0.6 else "white")
    fig.colorbar(image, ax=ax).set_label("angular distance, each row normalised to [0, 1]")
    ax.set_xlabel("first layer ℓ")
    ax.set_ylabel("block size n")
    ax.set_yticks(range(n_layers - 1), [str(n) for n in range(1, n_layers)])
    ax.set_title(f"d(h_ℓ, h_ℓ+n) at the {maps.position} token (values: raw distance)", fontsize=9)
    out["layers"] = _png(fig)
    plt.close(fig)
    return out


def write_report(records: Sequence[CaseRecord], folder: Path, rows: Sequence[Row] | None = None,
                 title: str = "pytest-llmeff run", maps: Any = None) -> list[Path]:
    """Write ``summary.md``, ``report.html`` and one PNG per plot into ``folder`` (and the pruning
    maps ``heads.png`` / ``layers.png`` when ``maps`` is given). ``rows``: the tables (by default
    the records' rows, each against its workload's base record); the plots are drawn from ``records``."""
    if rows is None:
        rows = rows_of_run({r.case_id: r for r in records}, {}, {}, {})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.md").write_text(markdown(rows, title), encoding="utf-8")
    images = plots(records)
    linked = pruning_plots(maps) if maps is not None else {}
    written = [folder / "summary.md"]
    for name, data in {**images, **linked}.items():
        path = folder / f"{name}.png"
        path.write_bytes(base64.b64decode(data))
        written.append(path)
    figures = "".join(f'<figure><img alt="{n}" src="data:image/png;base64,{d}"><figcaption>{n}</figcaption></figure>'
                      for n, d in images.items())
    figures += _maps_section(maps, linked)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child{text-align:left}"
            "img{max-width:100%}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>{html_tables(rows)}{figures}</body></html>")
    (folder / "report.html").write_text(page, encoding="utf-8")
    written.append(folder / "report.html")
    return written


def _maps_section(maps: Any, linked: Mapping[str, str]) -> str:
    if maps is None:
        return ""
    from pytest_llmeff.compress.maps import summary

    items = "".join(f"<li>{html.escape(line)}</li>" for line in summary(maps))
    pictures = "".join(f'<figure><a href="{n}.png"><img alt="{n}" src="{n}.png"></a>'
                       f'<figcaption><a href="{n}.png">{n}.png</a></figcaption></figure>' for n in linked)
    return f"<h2>Pruning maps of the base model</h2><ul>{items}</ul>{pictures}"


def write_run_outputs(results: Sequence[Any], options: Any, fingerprint: dict[str, Any], device: str,
                      maps: Any = None) -> None:
    """The files a run was asked for: ``--llmeff-json``, ``--llmeff-report``, ``--llmeff-markdown``."""
    import json

    from pytest_llmeff.compare import RUN_SCHEMA
    from pytest_llmeff.results import budgets_to_json
    from pytest_llmeff.run_info import run_environment

    if not results:
        return
    records = [r.record for r in results]
    rows = rows_of(results)
    environment = run_environment()
    if options.json_path:
        # With each case's reference, reason and budgets, `llmeff report` shows the Δ, reasons and
        # budget lines of the run; "environment" names its date, commit and library versions. Every
        # key added since version 1 is optional to readers: the version stays 1.
        payload = {"schema": RUN_SCHEMA, "version": 1, "model": options.model.name, "device": device,
                   "fingerprint": fingerprint, "environment": environment,
                   "cases": {r.case_id: r.to_json() for r in records},
                   "verdicts": {r.case_id: r.verdict for r in results},
                   "references": {r.case_id: r.reference.to_json() for r in results},
                   "reasons": {r.case_id: r.reason for r in rows if r.reason},
                   "budgets": {r.case_id: budgets_to_json(r.budgets) for r in results if r.budgets}}
        options.json_path.parent.mkdir(parents=True, exist_ok=True)
        options.json_path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    title = f"pytest-llmeff: {options.model.name} on {device}"
    if options.report_dir:
        write_report(records, options.report_dir, rows, title, maps)
    if options.markdown_path:
        with open(options.markdown_path, "a", encoding="utf-8") as fh:
            fh.write(markdown(rows, title))
