"""Report files: a markdown summary (fit for a CI job summary) and an HTML page with plots.

``report.html`` (see :mod:`pytest_llmeff.report_page`) embeds its plots; each is also written as
a PNG beside it: ``pareto-<workload>.png`` (Δ cost against Δ quality, per workload),
``energy.png``, ``opt.png``, and the base model's pruning maps ``heads.png`` / ``layers.png``
(linked, not embedded) when the run drew them.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_llmeff.records import CaseRecord
from pytest_llmeff.report_page import RunIdentity, page
from pytest_llmeff.report_tables import markdown
from pytest_llmeff.rows import Row, rows_of, rows_of_run


def write_report(records: Sequence[CaseRecord], folder: Path, rows: Sequence[Row] | None = None,
                 title: str = "pytest-llmeff run", maps: Any = None,
                 identity: RunIdentity | None = None) -> list[Path]:
    """Write ``summary.md``, ``report.html`` and one PNG per plot into ``folder`` (and the pruning
    maps when ``maps`` is given). ``rows``: what the tables and plots show (by default the
    records' rows, each against its workload's base record); ``identity``: the run's machine,
    commit and date for the page's head."""
    from pytest_llmeff.report_maps import maps_section, pruning_plots
    from pytest_llmeff.report_plots import figures

    if rows is None:
        rows = rows_of_run({r.case_id: r for r in records}, {}, {}, {})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.md").write_text(markdown(rows, title), encoding="utf-8")
    written = [folder / "summary.md"]
    drawn = figures(rows)
    linked = pruning_plots(maps) if maps is not None else {}
    for name, data in {**{f.name: f.png for f in drawn}, **linked}.items():
        path = folder / f"{name}.png"
        path.write_bytes(base64.b64decode(data))
        written.append(path)
    html_page = page(title, rows, drawn, identity or RunIdentity(), maps_section(maps, linked))
    (folder / "report.html").write_text(html_page, encoding="utf-8")
    written.append(folder / "report.html")
    return written


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
    environment = run_environment() if options.json_path or options.report_dir else {}
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
        identity = RunIdentity(options.model.name, device, fingerprint, environment)
        write_report(records, options.report_dir, rows, title, maps, identity)
    if options.markdown_path:
        with open(options.markdown_path, "a", encoding="utf-8") as fh:
            fh.write(markdown(rows, title))
