"""The HTML report beyond its tables: the run's identity (machine, commit, date, versions), what a
run file records for it, the plots' points and budget lines, verdict colours and reasons.
In-process, from the hand-built results of test_summary (figures of a real run, rounded)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_summary import CACHE, FWD, broken, default_run

from pytest_llmeff.compare import load_run
from pytest_llmeff.fingerprint import machine_fingerprint
from pytest_llmeff.report_files import write_run_outputs
from pytest_llmeff.rows import pct, rows_of
from pytest_llmeff.run_info import run_environment


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_the_run_environment_names_the_commit_and_whether_it_had_changes(tmp_path):
    when = dt.datetime(2026, 11, 24, 5, 8, tzinfo=dt.timezone.utc)
    outside = run_environment(tmp_path, when)
    assert outside["created"] == "2026-11-24T05:08:00+00:00" and "commit" not in outside
    assert outside["versions"]["pytest"] == pytest.__version__
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("a")
    _git(tmp_path, "add", "a.txt")
    _git(tmp_path, "commit", "-q", "-m", "a")
    clean = run_environment(tmp_path, when)
    assert clean["commit"] == _git(tmp_path, "rev-parse", "HEAD") and clean["dirty"] is False
    (tmp_path / "a.txt").write_text("b")
    assert run_environment(tmp_path, when)["dirty"] is True


@pytest.fixture
def run_file(tmp_path: Path) -> Path:
    options = SimpleNamespace(json_path=tmp_path / "run.json", report_dir=None, markdown_path=None,
                              model=SimpleNamespace(name="embedded"))
    write_run_outputs(broken(default_run()), options, machine_fingerprint("cpu"), "cpu")
    return tmp_path / "run.json"


def test_a_run_file_keeps_each_case_s_budgets_and_the_run_s_environment(run_file):
    results = broken(default_run())
    run = load_run(run_file)
    nf4 = next(r for r in results if r.record.method == "nf4" and r.record.workload.startswith("forward"))
    assert run.budgets[nf4.case_id] == nf4.budgets
    assert len(run.budgets) == len(results)
    assert run.model == "embedded" and run.device == "cpu"
    assert run.environment["created"].startswith(str(dt.date.today().year))
    assert "versions" in run.environment
    data = json.loads(run_file.read_text())
    assert data["version"] == 1  # new keys are optional: older readers ignore them
    del data["budgets"], data["environment"]
    run_file.write_text(json.dumps(data))
    old = load_run(run_file)
    assert old.budgets == {} and old.environment == {}


def test_rows_carry_budget_limits_as_changes_against_the_reference():
    rows = {(r.label, r.workload): r for r in rows_of(broken(default_run()))}
    nf4 = rows[("nf4", FWD)]
    ppl = next(m for m in nf4.marks if m.text == "perplexity:+0.1%")
    assert (ppl.kind, ppl.status, ppl.limit) == ("base", "fail", 46.39)
    assert ppl.delta == pytest.approx(46.39 / 46.35 - 1) and ppl.origin == pytest.approx(46.39 / 1.001)
    assert not any(m.text.startswith("opt<=baseline") for m in nf4.marks)  # missing: no limit to draw
    assert rows[("base", FWD)].marks == ()


def test_delta_intervals_come_from_the_samples_and_hold_the_figure():
    import dataclasses

    from pytest_llmeff.details import TimeDetail
    from pytest_llmeff.rows import make_row

    base, kd = (r for r in default_run() if r.record.method in ("base", "kd") and r.record.workload == FWD)

    def sampled(record, seconds):
        time = dataclasses.replace(record.record.values["time"], value=sorted(seconds)[len(seconds) // 2],
                                   detail=TimeDetail(workload=FWD, samples=tuple(seconds)))
        return dataclasses.replace(record.record, values={**record.record.values, "time": time})

    ref = sampled(base, [0.0370 + 0.0002 * i for i in range(11)])
    row = make_row(sampled(kd, [0.0221 + 0.0001 * (i % 5) for i in range(11)]), ref, "pass")
    low, high = row.intervals["time"]
    assert low < row.delta["time"] < high and high - low < 0.05
    assert make_row(ref, ref, "pass").intervals == {}  # the reference against itself: exact


def test_big_figures_are_written_out_and_the_energy_split_picks_its_units():
    from pytest_llmeff.rows import energy_table, num

    assert (num(11850.0), num(1185.04), num(0.5319, 1e3)) == ("11850", "1185", "531.9")
    rows = [r for r in rows_of(default_run()) if r.workload == CACHE]
    header, cells = energy_table(rows)
    assert header[:4] == ["case", "cpu J", "gpu J", "ram J"] and "mJ/token" in header  # not 8.075e+04 µJ
    assert {row[header.index("gpu J")] for row in cells} == {"–"}  # not measured on this CPU run
    assert not any("e+" in c for row in cells for c in row)


FINGERPRINT = {"cpu": "AMD EPYC 7B13", "cores": 2, "accelerator": "none", "os": "Linux x86_64", "python": "3.11.7",
               "libraries": {"torch": "2.13.0+cpu", "lm_eval": "0.4.13"}, "extra": {}}
ENVIRONMENT = {"created": "2026-11-24T05:08:00+00:00", "commit": "9f13edc0123456789abcdef0123456789abcdef0",
               "dirty": False, "versions": {"pytest-benchmark": "5.3.1"}}


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, str]:
    from pytest_llmeff.report_files import write_report
    from pytest_llmeff.report_page import RunIdentity

    folder = tmp_path_factory.mktemp("report")
    results = broken(default_run())
    identity = RunIdentity("embedded", "cpu", FINGERPRINT, ENVIRONMENT, "runs/run.json")
    write_report([r.record for r in results], folder, rows_of(results), "pytest-llmeff: embedded on cpu",
                 identity=identity)
    return folder, (folder / "report.html").read_text()


def test_the_page_names_the_machine_commit_date_and_versions(report):
    _, page = report
    for text in ("AMD EPYC 7B13, 2 cores, no accelerator", "9f13edc0123456789abcdef0123456789abcdef0",
                 "2026-11-24 05:08 UTC", "torch 2.13.0+cpu", "lm-eval 0.4.13", "pytest-benchmark 5.3.1",
                 "runs/run.json", "baselines folder amd-epyc-7b13-2c-"):
        assert text in page, text


def test_an_old_run_file_gets_its_file_date_and_no_commit():
    from pytest_llmeff.report_page import RunIdentity, identity_items

    written = dt.datetime(2026, 11, 24, 4, 58, tzinfo=dt.timezone.utc)
    items = dict(identity_items(RunIdentity("embedded", "cpu", FINGERPRINT, {}, "old.json", written)))
    assert items["date"] == "not recorded in the run file; the file was written 2026-11-24 04:58 UTC"
    assert items["commit"].startswith("not recorded")


def test_verdicts_are_coloured_and_reasons_shown(report):
    from pytest_llmeff.report_tables import VERDICT_COLOURS

    _, page = report
    assert '<td class="verdict v-fail">fail</td>' in page
    assert '<td class="verdict v-inconclusive">inconclusive</td>' in page
    assert f"td.v-fail,.badge.v-fail{{background:{VERDICT_COLOURS['fail']}}}" in page
    assert '<span class="badge v-fail">1 fail</span>' in page
    assert '<span class="badge v-inconclusive">1 inconclusive</span>' in page
    assert "opt&lt;=1.1: opt 1.108 is not &lt;= 1.1 — inconclusive: passes in 31% of resamples" in page
    assert '<li class="v-fail"><b>nf4</b> (fail): perplexity:+0.1%: perplexity 46.53 is not' in page
    assert '<td class="good">-40.2%</td>' in page  # kd's Δ time: a fall in green


def test_every_case_is_in_its_section_s_plotted_points_with_the_table_s_figures(report):
    from test_summary import html_rows

    folder, page = report
    table = {r.label + "@" + r.workload: r for r in rows_of(broken(default_run()))}
    for workload in (FWD, CACHE, "generate-1x64+32"):
        section = page[page.index(f"<h2>{workload} ("):]
        section = section[:section.index("</section>")]
        points = section[section.index("plotted points"):]
        header, *cells = html_rows(points)
        assert header[0] == "case" and header[2].startswith("Δ time") and header[3].startswith("Δ energy")
        assert sorted(c[0] for c in cells) == sorted(k.split("@")[0] for k in table if k.endswith("@" + workload))
        for case, _, time, energy, verdict in cells:
            row = table[f"{case}@{workload}"]
            assert time == pct(row.delta["time"]) and energy == pct(row.delta["energy"]) and verdict == row.verdict
    assert {p.name for p in folder.glob("*.png")} == {"pareto-forward-1x256.png", "pareto-cache-replay-18x192-16.png",
                                                      "pareto-generate-1x64-32.png", "energy-forward-1x256.png",
                                                      "energy-cache-replay-18x192-16.png",
                                                      "energy-generate-1x64-32.png", "opt.png"}


def _tradeoff(rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pytest_llmeff.report_plots import tradeoff_figure

    fig, _ = tradeoff_figure(plt, FWD, rows)
    return plt, fig


def test_every_point_of_a_trade_off_plot_is_labelled_and_no_two_labels_overlap():
    rows = [r for r in rows_of(broken(default_run())) if r.workload == FWD]
    plt, fig = _tradeoff(rows)
    from matplotlib.text import Text

    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        notes = [t for t in ax.texts if t.get_text().split("\n")[0] in {r.label for r in rows}]
        assert sorted(line for t in notes for line in t.get_text().split("\n")) == sorted(r.label for r in rows)
        for t in notes:
            t.update_positions(renderer)  # the text's box alone, without its leader line
        boxes = [Text.get_window_extent(t, renderer) for t in notes]
        assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a.overlaps(b)]
        failed = next(t for t in notes if t.get_text() == "nf4")  # a failed case keeps its own label, in red
        assert failed.get_color() == "#cf222e"
    plt.close(fig)


def test_trade_off_plots_draw_budget_lines_and_intervals():
    import dataclasses

    rows = [r for r in rows_of(broken(default_run())) if r.workload == FWD]
    kd = next(i for i, r in enumerate(rows) if r.label == "kd")
    rows[kd] = dataclasses.replace(rows[kd], intervals={"time": (-0.43, -0.38)})
    plt, fig = _tradeoff(rows)
    time_panel, energy_panel = fig.axes[:2]
    labels = [t.get_text() for t in time_panel.texts]
    assert "perplexity:+0.1% (1 case)" in labels and "time:+5% (1 case)" in labels
    assert "time:+5% (1 case)" not in [t.get_text() for t in energy_panel.texts]
    bars = [c for c in time_panel.collections if c.__class__.__name__ == "LineCollection"]
    assert len(bars) == 1 and bars[0].get_segments()[0][:, 0].tolist() == pytest.approx([-43.0, -38.0])
    plt.close(fig)


def test_the_energy_plot_writes_the_table_s_figures_hatches_estimates_and_adds_co2e():
    import dataclasses

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pytest_llmeff.report_bars import energy_figure
    from pytest_llmeff.rows import energy_table, table

    rows = [r for r in rows_of(default_run()) if r.workload == CACHE]
    rows[1] = dataclasses.replace(rows[1], energy_parts={**rows[1].energy_parts, "co2e": 0.000123},
                                  parts_estimated=("ram",))
    fig = energy_figure(plt, CACHE, rows)
    ax = fig.axes[0]
    header, cells = table(rows, [])
    unit = next(h for h in header if h.startswith("energy ")).split()[1]
    written = [t.get_text() for t in ax.texts]
    column = header.index(f"energy {unit}")
    assert written[0] == f"{cells[0][column]} {unit}"
    assert written[1] == f"{cells[1][column]} {unit} · 0.123 mg CO2e"
    bars = dict(zip(("cpu", "ram"), ax.containers[:2], strict=True))  # one bar per case and component
    hatched = {part: [bool(b.get_hatch()) for b in drawn] for part, drawn in bars.items()}
    assert hatched == {"cpu": [i != 1 for i in range(len(rows))], "ram": [True] * len(rows)}
    assert "CO2e mg" in energy_table(rows)[0]
    plt.close(fig)


def test_an_energy_plot_sits_beside_its_table_at_no_less_than_85_percent_of_its_size(report):
    import base64

    from PIL import Image

    from pytest_llmeff.report_page import png_width

    folder, page = report
    data = (folder / "energy-forward-1x256.png").read_bytes()
    with Image.open(folder / "energy-forward-1x256.png") as png:
        width = png.size[0]
    assert png_width(base64.b64encode(data).decode()) == width
    assert f'<figure style="flex:1 1 {int(width * 0.85)}px;max-width:{width}px">' in page
