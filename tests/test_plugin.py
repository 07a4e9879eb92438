"""The plugin end to end (pytester): real runs on the embedded model, bad input, baselines, compare.

The inner runs measure in this process (the ``inprocess`` fixture of tests/conftest.py): a
subprocess would pay interpreter start-up and the torch / transformers imports again for every run.
The one test about what a plain run imports starts a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

QUICK = ["--llmeff", "--llmeff-eval-windows=4", "--llmeff-min-seconds=0.5", "-p", "no:cacheprovider"]
NO_ENERGY = "--llmeff-energy=none"  # for runs whose checks read no energy figure (the opt score needs one)

SUITE = '''
import pytest

@pytest.mark.llmeff(compressors=["base", "nf4"], budgets=["perplexity:+50%", "opt<=baseline+1000%"])
def test_quant(llmeff, compressor):
    llmeff.run(compressor)
'''


@pytest.fixture
def suite(inprocess: pytest.Pytester) -> pytest.Pytester:
    inprocess.makepyfile(test_suite=SUITE)
    return inprocess


def run(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    """``pytest --llmeff`` with the quick settings, in this process."""
    return project.runpytest_inprocess(*QUICK, *args)


def baseline_files(root: Path) -> list[Path]:
    return sorted((root / "baselines").glob("*/*.json"))


# ---------------------------------------------------------------------------- without --llmeff
TORCH_PROBE = '''
import sys

def pytest_unconfigure(config):
    with open("torch_imported.txt", "w") as fh:
        fh.write(str("torch" in sys.modules))
'''


@pytest.mark.parametrize("args", [[], ["--help"]])
def test_plain_run_skips_cases_and_never_imports_torch(pytester, args):
    pytester.makepyfile(test_suite=SUITE)  # run in a subprocess: this process imported torch long ago
    pytester.makeconftest(TORCH_PROBE)
    result = pytester.runpytest_subprocess(*args, "-rs")
    if not args:
        result.assert_outcomes(skipped=2)
        result.stdout.fnmatch_lines(["*LLM benchmark case: run with --llmeff*"])
    else:
        result.stdout.fnmatch_lines(["*--llmeff-model*"])
    assert (pytester.path / "torch_imported.txt").read_text() == "False"


# ---------------------------------------------------------------------------- a real run
def test_run_measures_and_prints_the_summary(suite):
    result = run(suite)
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    result.stdout.fnmatch_lines([
        "*llmeff summary*",
        "*case*perplexity*time ms*energy*opt balanced*verdict*",
        "base *+0.0%*1 *no baseline*",
        "nf4 *no baseline*",
    ])
    assert "energy (ESTIMATED): cpu+ram: codecarbon-estimate" in out
    assert "perplexity: nonoverlap-256 on embedded" in out
    assert "[llmeff] loading model 'embedded'" in out
    assert not baseline_files(suite.path)  # nothing written without --llmeff-update-baselines


def test_energy_split_repeats_and_carbon(suite):
    result = run(suite, "--llmeff-region=study2024:DEU", "--llmeff-pue=1.58",
                                        "--llmeff-energy-repeats=3", "-k", "nf4")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "energy per call:",
        "case*cpu*gpu*ram*idle*active*J/token*windows*cv*CO2e mg*",  # per token in the section's unit
        "nf4 * – * 4 *%*",  # 3 asked, rounded up to whole A B B A cycles next to the base model
        "carbon what-if (same energy, other grids):",
        "*study2024:BEL (153.14)*study2024:DEU (333.77)*study2024:FRA (33.44)*study2024:NLD (262.93)*",
        "co2e: energy × 333.77 gCO2e/kWh (study2024:DEU*PUE 1.58",
    ])


def test_opt_over_perplexity_and_a_task_matches_the_formula(suite):
    out = suite.path / "run.json"
    result = run(suite, "--llmeff-unpaired", "--llmeff-tasks=llmeff_docs_mc(limit=16)",
                                        f"--llmeff-json={out}")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["case *perplexity*llmeff_docs_mc*", "nf4 *"])
    cases = json.loads(out.read_text())["cases"]
    base, nf4 = (cases[f"test_suite.py::test_quant[{c}]"] for c in ("base", "nf4"))

    def v(rec, key):
        return rec["values"][key]["value"]

    # SPEC §2 by hand: Q = mean(P_c^1.5) over perplexity and the task (chance 0.25), then α·T_c + β·E_c.
    assert min(v(base, "llmeff_docs_mc"), v(nf4, "llmeff_docs_mc")) > 0.2  # else the task leaves the score
    p_ppl = v(nf4, "perplexity") / v(base, "perplexity")
    p_mc = (v(base, "llmeff_docs_mc") - 0.2) / (v(nf4, "llmeff_docs_mc") - 0.2)
    q = (p_ppl ** 1.5 + p_mc ** 1.5) / 2
    t_c, e_c = v(nf4, "time") / v(base, "time"), v(nf4, "energy") / v(base, "energy")
    assert nf4["opt"]["balanced"] == pytest.approx(q * (0.5 * t_c + 0.5 * e_c), rel=1e-9)
    assert nf4["opt"]["energy"] == pytest.approx(q * (0.1 * t_c + 0.9 * e_c), rel=1e-9)


def test_deployment_replay_workload(suite):
    result = run(suite, "--llmeff-workload=deployment(period=1,gap=0.5,new_tokens=4)")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*median latency per prompt of workload deployment-1s-gap0.5-32+4*",
                                 "*period total / prompts (idle time included)*"])


def test_baselines_written_on_request_then_compared(suite):
    # Unpaired: the base model is timed once a run, not again next to nf4 (pairing is not what is tested here).
    first = run(suite, "--llmeff-unpaired", "--llmeff-update-baselines")
    first.assert_outcomes(passed=2)
    first.stdout.fnmatch_lines(["*baselines written to*", "*test_quant?base?*(new)*"])
    (path,) = baseline_files(suite.path)
    data = json.loads(path.read_text())
    assert data["schema"] == "pytest-llmeff/baselines" and len(data["cases"]) == 2
    nf4 = data["cases"]["test_suite.py::test_quant[nf4]"]
    assert nf4["values"]["energy"]["estimated"] is True and nf4["values"]["energy"]["value"] > 0
    assert nf4["values"]["perplexity"]["method"] == "nonoverlap-256"

    second = run(suite, "--llmeff-unpaired")
    second.assert_outcomes(passed=2)
    second.stdout.fnmatch_lines(["base *pass*", "nf4 *pass*"])
    assert path.read_text() == json.dumps(data, indent=2) + "\n"  # comparing never rewrites

    # No energy: the perplexity budget fails; the marker's opt budget, without an opt score, is [missing].
    strict = run(suite, "--llmeff-unpaired", NO_ENERGY, "--llmeff-budget=perplexity<=baseline-50%")
    strict.assert_outcomes(failed=2)
    strict.stdout.fnmatch_lines(["*budget broken*", "*perplexity*is not <=*stored baseline*-50%*off by*"])
    assert "Traceback" not in strict.stdout.str()


def test_failing_drift_budget_fails_with_a_readable_diff(inprocess):
    inprocess.makepyfile(test_suite='''
import pytest

@pytest.mark.llmeff(compressors=["nf4"], budgets=["perplexity:-50%"])
def test_quant(llmeff, compressor):
    llmeff.run(compressor)
''')
    result = run(inprocess, NO_ENERGY)  # a quality budget
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*nf4: budget broken*", "*perplexity:-50%: perplexity * is not <= *base model*"])


def test_missing_baseline_can_fail_a_ci_gate(suite):
    result = run(suite, NO_ENERGY, "--llmeff-missing-baseline=fail")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*no baseline for this case in*--llmeff-missing-baseline fail*"])


# ---------------------------------------------------------------------------- bad input
# (start-up mistakes, corrupt baselines and bad marker keywords: tests/test_bad_inputs.py, in-process)
def test_requested_meter_that_is_missing_skips_with_the_reason(suite):
    result = run(suite, "--llmeff-energy=nvml", "-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*energy meter unavailable: the run is on the CPU, so there is no GPU energy*"])


def test_unsupported_compressor_is_skipped_with_the_reason(inprocess):
    inprocess.makepyfile(test_suite='''
import pytest

@pytest.mark.llmeff(compressors=["fp16"])
def test_cast(llmeff, compressor):
    llmeff.run(compressor)
''')
    result = run(inprocess, "-rs")
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if "avx512_fp16" in flags or "amx_fp16" in flags:
        pytest.skip("this CPU has native float16: nothing to skip")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*fp16: this CPU has no native float16 arithmetic*"])


# ---------------------------------------------------------------------------- extension and compare
def test_user_compressor_through_the_hook(inprocess):
    inprocess.makeconftest('''
from dataclasses import dataclass
from pytest_llmeff.compress import Compressor, Candidate

@dataclass(frozen=True)
class DropLastLayer(Compressor):
    summary = "drop the last transformer block"

    def apply(self, candidate, ctx):
        import copy
        model = copy.deepcopy(candidate.model)
        model.transformer.h = model.transformer.h[:-1]
        model.config.n_layer -= 1
        return Candidate(model, False, candidate.steps + [self.id], candidate.notes)

def pytest_llmeff_register_compressors(registry):
    registry.register("drop-last", DropLastLayer)

def pytest_llmeff_record(result):
    print("RECORDED", result.record.method, result.record.values["parameters"].value)
''')
    inprocess.makepyfile(test_suite='''
import pytest

@pytest.mark.llmeff(compressors=["drop-last", "drop-last+nf4"])
def test_mine(llmeff, compressor):
    llmeff.run(compressor)
''')
    result = run(inprocess, NO_ENERGY, "-s")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*RECORDED drop-last *", "*RECORDED drop-last+nf4 *", "drop-last+nf4 *"])


def test_saved_runs_compare_with_pytest_benchmark(suite):
    storage = suite.path / "bench"
    for extra in ([], [NO_ENERGY]):  # the first run's figures are read below; the second has to be there
        run(suite, *extra, "--benchmark-autosave", f"--benchmark-storage=file://{storage}").assert_outcomes(
            passed=2)
    saved = sorted(storage.glob("*/*.json"))
    assert len(saved) == 2
    bench = json.loads(saved[0].read_text())["benchmarks"]
    info = {b["name"]: b["extra_info"]["llmeff"] for b in bench}
    assert info["test_quant[nf4]"]["values"]["perplexity"]["method"] == "nonoverlap-256"
    assert info["test_quant[nf4]"]["values"]["energy"]["method"] == "cpu+ram: codecarbon-estimate"
    compare = subprocess.run(
        [sys.executable, "-c", "import sys; from pytest_benchmark.cli import main; sys.exit(main())",
         f"--storage=file://{storage}", "compare"],
        capture_output=True, text=True, check=True,
    )
    assert "0001" in compare.stdout and "0002" in compare.stdout
    assert "test_quant[nf4]" in compare.stdout
