"""CI-gate behaviour end to end: compare saved runs, reports, fingerprints, xdist scale-out.

The inner runs measure in this process (the ``inprocess`` fixture of tests/conftest.py), but for
the xdist workers, which are processes of their own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from html.parser import HTMLParser

import pytest

QUICK = ["--llmeff", "--llmeff-eval-windows=2", "--llmeff-min-seconds=0.5", "-p", "no:cacheprovider"]
NO_ENERGY = "--llmeff-energy=none"  # for runs whose checks read no energy figure (nor the opt score)

SLOWABLE = '''
import os, time
from dataclasses import dataclass
from pytest_llmeff.compress import Candidate, Compressor

@dataclass(frozen=True)
class MaybeSlow(Compressor):
    """The base model, slowed by 250 ms per forward pass when LLMEFF_SLOW=1 (a deliberate regression)."""
    stage = "cast"

    def apply(self, candidate, ctx):
        import copy
        model = copy.deepcopy(candidate.model)
        if os.environ.get("LLMEFF_SLOW") == "1":
            model.register_forward_hook(lambda *a: time.sleep(0.25))
        return Candidate(model, False, candidate.steps + [self.id], candidate.notes)

def pytest_llmeff_register_compressors(registry):
    registry.register("maybe-slow", MaybeSlow)
'''

SUITE = '''
import pytest

@pytest.mark.llmeff(compressors=["base", "maybe-slow"], budgets=["perplexity:+5%"])
def test_case(llmeff, compressor):
    llmeff.run(compressor)
'''


@pytest.fixture
def project(inprocess: pytest.Pytester) -> pytest.Pytester:
    inprocess.makeconftest(SLOWABLE)
    inprocess.makepyfile(test_suite=SUITE)
    return inprocess


def run(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    """``pytest --llmeff`` with the quick settings, in this process."""
    return project.runpytest_inprocess(*QUICK, *args)


def llmeff_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_llmeff", *args], capture_output=True, text=True)


def llmeff_compare(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``llmeff compare`` in this process (the console entry point is checked once, below)."""
    from pytest_llmeff.cli import main

    capsys.readouterr()
    code = main(["compare", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_compare_flags_the_slowed_case_and_not_the_noise(project, monkeypatch, capsys):
    runs = []
    for i in range(6):  # the same code six times: five comparisons of pure noise (the gate reads no energy)
        out = project.path / f"run{i}.json"
        run(project, NO_ENERGY, f"--llmeff-json={out}").assert_outcomes(passed=2)
        runs.append(out)
    monkeypatch.setenv("LLMEFF_SLOW", "1")
    slow = project.path / "slow.json"
    run(project, f"--llmeff-json={slow}").assert_outcomes(passed=2)  # with energy: the opt score below

    # A shared runner drifts between runs far more than within one (the very same code took +76 %
    # longer in one run than in the previous one on the 2-core CI machine, and paired opt moved by
    # +49 %), so the threshold is wide and the regression large: 250 ms on a ~20-40 ms forward
    # pass (with 100 ms, a cold first run once read the slowed case as within +150 %).
    gate = ["--fail", "time:+150%", "--fail", "perplexity:+1%"]
    for a, b in zip(runs, runs[1:], strict=False):
        code, out = llmeff_compare(capsys, str(a), str(b), *gate)
        assert code == 0, out
    code, out = llmeff_compare(capsys, str(runs[0]), str(slow), *gate)
    assert code == 1, out
    fails = [line for line in out.splitlines() if line.startswith("[fail]")]
    assert len(fails) == 1 and "test_case[maybe-slow]" in fails[0] and "time:+150%" in fails[0]
    slowed = json.loads(slow.read_text())["cases"]["test_suite.py::test_case[maybe-slow]"]
    assert slowed["opt"]["balanced"] > 2  # the paired opt score shows the regression as well


def test_corrupt_saved_run_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = llmeff_cli("compare", str(bad), str(bad))
    assert result.returncode == 2 and "cannot read run file" in result.stderr and "Traceback" not in result.stderr


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.cells = 0

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        self.cells += tag in ("td", "th")


def test_reports_junit_and_markdown(project):
    summary = project.path / "step_summary.md"
    result = run(project, "--llmeff-unpaired", "--llmeff-report=report", f"--llmeff-markdown={summary}",
                 "--junitxml=junit.xml")
    result.assert_outcomes(passed=2)
    folder = project.path / "report"
    names = {p.name for p in folder.iterdir()}
    assert names >= {"summary.md", "report.html", "opt.png", "heads.png", "layers.png"}
    assert {n.split("-")[0] for n in names if n.startswith(("pareto-", "energy-"))} == {"pareto", "energy"}
    page = _Page()
    page.feed((folder / "report.html").read_text())
    embedded = [src for src in page.images if src.startswith("data:image/png;base64,")]
    assert len(embedded) == 3 and sorted(set(page.images) - set(embedded)) == ["heads.png", "layers.png"]
    assert page.cells > 10
    md = summary.read_text()
    assert "| case | perplexity |" in md and "| maybe-slow |" in md and "(estimated)" in md
    junit = (project.path / "junit.xml").read_text()
    assert 'name="llmeff.perplexity"' in junit and 'name="llmeff.verdict"' in junit
    assert '<property name="llmeff.time.unit" value="s"' in junit
    assert '<property name="llmeff.perplexity.how" value="measured: nonoverlap-256"' in junit
    assert '<property name="llmeff.energy.how" value="estimated: ' in junit


@pytest.mark.parametrize("ini", [True, False])
def test_baselines_are_found_whatever_paths_the_command_line_names(project, tmp_path_factory, ini):
    # pytest takes its rootdir from any existing path among the arguments, option values included;
    # the baselines folder must not move with it.
    if ini:
        project.makeini("[pytest]\n")
    run(project, NO_ENERGY, "--llmeff-update-baselines").assert_outcomes(passed=2)
    elsewhere = tmp_path_factory.mktemp("cache")
    result = run(project, NO_ENERGY, "--llmeff-cache-dir", str(elsewhere), "--llmeff-missing-baseline", "fail")
    result.assert_outcomes(passed=2)
    assert f"rootdir: {project.path}" not in result.stdout.str()  # moved by pytest; the baselines did not


def test_baselines_of_other_hardware_are_refused_unless_forced(project):
    run(project, NO_ENERGY, "--llmeff-update-baselines").assert_outcomes(passed=2)
    (mine,) = (project.path / "baselines").glob("*/embedded.json")
    data = json.loads(mine.read_text())
    data["fingerprint"]["cpu"] = "Some Other CPU"
    other = project.path / "baselines" / "other-machine"
    other.mkdir()
    (other / "embedded.json").write_text(json.dumps(data))
    refused = run(project, "--llmeff-baseline-machine=other-machine")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(["*recorded on other hardware (cpu: 'Some Other CPU' vs *--llmeff-force-compare*"])
    # A cost figure judged against the other machine's baseline; a baseline not found would fail the run.
    forced = run(project, NO_ENERGY, "--llmeff-baseline-machine=other-machine", "--llmeff-force-compare",
                 "--llmeff-budget=time<=baseline+1000%", "--llmeff-missing-baseline=fail")
    forced.assert_outcomes(passed=2)


def test_xdist_gives_the_serial_records_one_json_and_intact_baselines(project):
    run(project, NO_ENERGY, "--llmeff-json=serial.json").assert_outcomes(passed=2)  # for its case ids
    storage = project.path / "bench"
    parallel = run(project, "-n", "2", "--llmeff-json=parallel.json", "--llmeff-update-baselines",
                   "--benchmark-autosave", f"--benchmark-storage=file://{storage}")
    parallel.assert_outcomes(passed=2)
    serial = json.loads((project.path / "serial.json").read_text())
    merged = json.loads((project.path / "parallel.json").read_text())
    assert set(merged["cases"]) == set(serial["cases"]) == {"test_suite.py::test_case[base]",
                                                            "test_suite.py::test_case[maybe-slow]"}
    for case in merged["cases"].values():
        assert set(case["values"]) >= {"perplexity", "time", "energy"}
    (baseline,) = (project.path / "baselines").glob("*/embedded.json")
    assert set(json.loads(baseline.read_text())["cases"]) == set(serial["cases"])
    parallel.stdout.fnmatch_lines(["*llmeff summary*", "base *", "maybe-slow *",
                                   "[[]llmeff] pytest-benchmark is off under pytest-xdist: llmeff saved its own "
                                   "per-call timings of 2 case(s)*"])
    # pytest-benchmark turned itself off in the workers; the saved run holds llmeff's timings
    (saved,) = storage.glob("*/*.json")
    benchmarks = {b["fullname"]: b for b in json.loads(saved.read_text())["benchmarks"]}
    assert set(benchmarks) == set(serial["cases"])
    for name, bench in benchmarks.items():
        time = merged["cases"][name]["values"]["time"]
        assert bench["stats"]["rounds"] == len(time["detail"]["samples"])
        assert bench["stats"]["min"] == min(time["detail"]["samples"])
        assert bench["extra_info"]["llmeff"]["values"]["time"] == time
    compare = subprocess.run(
        [sys.executable, "-c", "import sys; from pytest_benchmark.cli import main; sys.exit(main())",
         f"--storage=file://{storage}", "compare"], capture_output=True, text=True, check=True, cwd=storage)
    assert "test_case[maybe-slow]" in compare.stdout
