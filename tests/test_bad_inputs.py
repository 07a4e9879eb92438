"""Bad inputs and faults, tried as a new user would: each ends in one clear line saying what to do,
with the right exit code, and no baseline file changes.

Cheap by design. Pure behaviour (baseline and run files, machine names, the CLI) is tested on the
functions themselves; behaviour that belongs to a pytest run goes through in-process pytester runs
(``runpytest_inprocess``), most of which stop at start-up before any model is loaded, and the few
that measure use the smallest workload the plugin offers. In-process runs keep the modules they
import (the ``inprocess`` fixture of tests/conftest.py): torch's extension modules cannot be imported a
second time.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import io
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from _pytest.pytester import Pytester

from pytest_llmeff.cli import main as cli
from pytest_llmeff.compare import RUN_SCHEMA, CompareError, load_run
from pytest_llmeff.details import TimeDetail
from pytest_llmeff.fingerprint import fingerprint_id, machine_fingerprint
from pytest_llmeff.models.embedded import REFERENCE_DIR
from pytest_llmeff.records import CaseRecord, Measurement
from pytest_llmeff.store import BaselineError, BaselineStore, check_machine_name

# The smallest real run: CPU (one fingerprint on every machine), two perplexity windows, no energy
# meter, timing windows of 50 ms.
QUICK = ["--llmeff", "--llmeff-device=cpu", "--llmeff-eval-windows=2", "--llmeff-min-seconds=0.05",
         "--llmeff-energy=none", "--llmeff-unpaired", "-p", "no:cacheprovider"]
INI = """[pytest]
filterwarnings =
    error
    default::pytest_llmeff.cases.LlmeffWarning
    ignore:`torch.jit.script_method` is deprecated:DeprecationWarning
"""
SUITE = '''
import pytest

@pytest.mark.llmeff(compressors=["base"])
def test_case(llmeff, compressor):
    llmeff.run(compressor)
'''


# ---------------------------------------------------------------------------- helpers
@pytest.fixture
def project(inprocess: Pytester) -> Pytester:
    """A pytester project with the repository's warning filters and a one-case suite, whose
    in-process runs keep every module but the project's own (see the module docstring)."""
    inprocess.makeini(INI)
    inprocess.makepyfile(test_suite=SUITE)
    return inprocess


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()} \
        if folder.exists() else {}


def run(project: Pytester, *args: str) -> pytest.RunResult:
    """An in-process run; fails the test on a traceback anywhere in its output."""
    result = project.runpytest_inprocess(*QUICK, *args, no_reraise_ctrlc=True)
    out = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in out and "During handling" not in out, out
    assert "Benchmark fixture was not used" not in out
    return result


def usage_error(project: Pytester, *args: str) -> str:
    """Run, expect a usage error: exactly one line, exit code 4, no baseline file changed."""
    before = files(project.path / "baselines")
    result = run(project, *args)
    lines = [line for line in result.stderr.lines if line.strip()]
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    assert len(lines) == 1 and lines[0].startswith("ERROR: pytest-llmeff: "), lines
    assert files(project.path / "baselines") == before
    return lines[0]


def record(case_id: str = "test_suite.py::test_case[base]", ppl: float = 30.0) -> CaseRecord:
    return CaseRecord(case_id, "base", "embedded", "cpu", "float32", "forward-1x256",
                      {"perplexity": Measurement(ppl, "", "nonoverlap-256"),
                       "time": Measurement(0.01, "s", "perf_counter wall clock",
                                           detail=TimeDetail(samples=(0.01, 0.011)))},
                      opt={"balanced": 1.0, "run": 1.0})


@pytest.fixture
def fp() -> dict:
    return machine_fingerprint("cpu")


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` read-only while the block runs. Permissions do not stop root, so where they do not,
    every way this process creates or opens a file for writing refuses paths inside it, as the
    kernel would for another user."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder, *folder.rglob("*")]
    for p in paths:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        with pytest.MonkeyPatch.context() as mp:
            if os.access(folder, os.W_OK):  # root
                _refuse_writes_inside(folder, mp)
            yield
    finally:
        for p in paths:
            p.chmod(0o755 if p.is_dir() else 0o644)


def _refuse_writes_inside(folder: Path, mp: pytest.MonkeyPatch) -> None:
    inside = str(folder.resolve())

    def refuse(path: object) -> None:
        if isinstance(path, (str, os.PathLike)) and os.path.abspath(os.fspath(path)).startswith(inside):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))

    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir

    def open_(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+"):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def mkdir(path, *args, **kwargs):
        refuse(path)
        return real_mkdir(path, *args, **kwargs)

    mp.setattr(builtins, "open", open_)
    mp.setattr(io, "open", open_)
    mp.setattr(os, "open", os_open)
    mp.setattr(os, "mkdir", mkdir)


# ---------------------------------------------------------------------------- options and ini values
@pytest.mark.parametrize(("args", "message"), [
    (["--llmeff-model=./no/such/model"], "model folder './no/such/model' does not exist"),
    (["--llmeff-device=tpu"], "unknown device 'tpu'"),
    (["--llmeff-dtype=float8"], "--llmeff-dtype: unknown value 'float8'"),
    (["--llmeff-dataset=wikitext"], "did you mean 'wikitext2'"),
    (["--llmeff-protocol=nonoverlap-1"], "unknown perplexity protocol 'nonoverlap-1'"),
    (["--llmeff-eval-windows=few"], "--llmeff-eval-windows: expected a whole number, got 'few'"),
    (["--llmeff-workload=forwad"], "unknown workload 'forwad' — did you mean 'forward'"),
    (["--llmeff-weights=balance"], "did you mean 'balanced'"),
    (["--llmeff-energy=watts"], "--llmeff-energy: unknown value 'watts'"),
    (["--llmeff-min-seconds=-1"], "--llmeff-min-seconds: must be ≥ 0"),
    (["--llmeff-compressors=nf5"], "unknown compressor 'nf5' — did you mean 'nf4'"),
    (["--llmeff-budget=perplexity:5%"], "malformed budget 'perplexity:5%' (a drift needs a sign"),
    (["--llmeff-tasks=arc_chalenge"], "did you mean 'arc_challenge'"),
    (["--llmeff-opt-metrics=ifeval"], "metric 'ifeval' has no chance level"),
    (["--llmeff-region=DEUX"], "unknown region 'DEUX' — did you mean 'DEU'"),
    (["--llmeff-pue=-1"], "PUE is total facility energy / IT energy and cannot be below 1"),
    (["--llmeff-embodied=150"], "--llmeff-embodied: expected '<chip kg CO2e>,<lifetime years>'"),
    (["--llmeff-energy-repeats=0"], "--llmeff-energy-repeats: must be ≥ 1"),
    (["--llmeff-reruns=-1"], "--llmeff-reruns: must be ≥ 0"),
    (["--llmeff-seed=abc"], "--llmeff-seed: expected a whole number"),
    (["--llmeff-missing-baseline=maybe"], "--llmeff-missing-baseline: unknown value 'maybe'"),
    (["--llmeff-inconclusive=maybe"], "--llmeff-inconclusive: unknown value 'maybe'"),
    (["--llmeff-what-if=ATLANTIS"], "unknown region 'ATLANTIS'"),
    (["--llmeff-ram-dimms=-2"], "--llmeff-ram-dimms: must be ≥ 0"),
    (["--llmeff-baseline-machine=../../escape", "--llmeff-update-baselines"],
     "--llmeff-baseline-machine '../../escape' is not a machine folder name"),
    (["--llmeff-baseline-machine=a/b"], "--llmeff-baseline-machine 'a/b' is not a machine folder name"),
    (["--llmeff-baseline-machine=other-box", "--llmeff-update-baselines"],
     "--llmeff-update-baselines with --llmeff-baseline-machine: baselines are only written under the "
     "fingerprint of the machine that measured them"),
])
def test_bad_options(project, args, message):
    assert message in usage_error(project, *args)
    assert not (project.path / "baselines").exists() and not list(project.path.parent.glob("escape"))


def test_bad_cuda_device_when_none_is_visible(project):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible")
    assert "--llmeff-device cuda: no CUDA device is visible" in usage_error(project, "--llmeff-device=cuda")


@pytest.mark.parametrize(("ini", "message"), [
    ("llmeff_dtype = float8", "--llmeff-dtype: unknown value 'float8'"),
    ("llmeff_budgets =\n    perplexity:+5%\n    speed<=3", "speed"),
    ("llmeff_weights = 0.3,banana", "weights"),
])
def test_bad_ini_values(project, ini, message):
    project.makeini(INI + ini + "\n")
    assert message in usage_error(project)


def test_baselines_option_naming_a_file(project):
    (project.path / "baselines.txt").write_text("not a folder")
    assert "is a file; give a folder" in usage_error(project, "--llmeff-baselines=baselines.txt")


# ---------------------------------------------------------------------------- datasets
@pytest.mark.parametrize(("content", "message"), [
    ("", "text file 'data.txt' is empty; it needs at least two blank-line separated paragraphs"),
    ("One paragraph only, however long it is.\n", "text file 'data.txt' has one paragraph"),
    (b"\xff\xfe not utf-8\n\nsecond", "dataset file 'data.txt' is not UTF-8 text"),
])
def test_bad_dataset_files_are_refused_at_start(project, content, message):
    path = project.path / "data.txt"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert message in usage_error(project, "--llmeff-dataset=data.txt")


def test_dataset_folder_without_test_split(project):
    (project.path / "data").mkdir()
    (project.path / "data" / "train.txt").write_text("some text")
    assert "dataset folder 'data' needs train.txt and test.txt" in usage_error(project, "--llmeff-dataset=data")


def test_dataset_folder_with_an_empty_split(project):
    (project.path / "data").mkdir()
    (project.path / "data" / "train.txt").write_text("some text")
    (project.path / "data" / "test.txt").write_text("\n")
    assert "dataset file data/test.txt is empty" in usage_error(project, "--llmeff-dataset=data")


def test_text_too_short_for_the_protocol_fails_each_case_in_one_line(project):
    (project.path / "data.txt").write_text("Two tokens\n\nand two more\n")
    result = run(project, "--llmeff-dataset=data.txt")
    result.assert_outcomes(failed=1)  # failed, not errored: the benchmark fixture was never requested
    result.stdout.fnmatch_lines(["*dataset 'data.txt': the evaluated text is * tokens, too short for perplexity "
                                 "protocol nonoverlap-256 (needs at least 256)*"])


# ---------------------------------------------------------------------------- models
def _model_folder(root: Path, name: str = "model") -> Path:
    folder = root / name
    folder.mkdir()
    for f in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(REFERENCE_DIR / f, folder / f)
    return folder


def test_model_path_is_a_file(project):
    (project.path / "weights.safetensors").write_bytes(b"")
    assert "is a file; give the folder" in usage_error(project, "--llmeff-model=weights.safetensors")


def test_model_folder_without_config(project):
    (project.path / "model").mkdir()
    assert "has no config.json" in usage_error(project, "--llmeff-model=model")


def test_model_folder_without_weights(project):
    _model_folder(project.path)
    assert "holds no weights" in usage_error(project, "--llmeff-model=model")


def test_pickle_only_model_names_its_flag(project):
    (_model_folder(project.path) / "pytorch_model.bin").write_bytes(b"pickle")
    assert "pass --llmeff-allow-pickle if you trust them" in usage_error(project, "--llmeff-model=model")


def test_remote_code_model_is_refused_at_start_naming_its_flag(project):
    folder = _model_folder(project.path)
    shutil.copy(REFERENCE_DIR / "model.safetensors", folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_mine.MyModel"}
    (folder / "config.json").write_text(json.dumps(config))
    line = usage_error(project, "--llmeff-model=model")
    assert "needs its own Python code to load" in line and "--llmeff-trust-remote-code" in line


def test_model_with_corrupt_config(project):
    (_model_folder(project.path) / "config.json").write_text("{not json")
    assert "config.json cannot be read" in usage_error(project, "--llmeff-model=model")


def test_model_with_a_nan_weight_fails_in_one_line(project):
    from safetensors.torch import load_file, save_file

    folder = _model_folder(project.path)
    weights = load_file(REFERENCE_DIR / "model.safetensors")
    name = sorted(weights)[0]
    weights[name].view(-1)[0] = float("nan")
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    result = run(project, "--llmeff-model=model")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*model 'model' has non-finite weights (NaN or inf) in *; fix or re-export*"])


def test_missing_energy_meter_skips_instead_of_erroring(project):
    if Path("/sys/class/powercap/intel-rapl:0/energy_uj").exists():
        pytest.skip("this machine has RAPL counters")
    result = run(project, "--llmeff-energy=rapl", "-rs")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*energy meter unavailable: *RAPL*"])


# ---------------------------------------------------------------------------- marker keywords and Ctrl-C
FAULTS = '''
import pytest

@pytest.mark.llmeff(compressors=["base"])
def test_base(llmeff, compressor):
    llmeff.run(compressor)

@pytest.mark.llmeff(compressors=["base"], budgets=["perplexity:5%"])
def test_malformed_budget(llmeff, compressor):
    llmeff.run(compressor)

@pytest.mark.llmeff(compressors=["base"], budgets={"*": ["perplexity<=banana"]})
def test_malformed_budget_in_a_table(llmeff, compressor):
    llmeff.run(compressor)

@pytest.mark.llmeff(compressors=["base"], workload="forwad")
def test_unknown_workload(llmeff, compressor):
    llmeff.run(compressor)

@pytest.mark.llmeff(compressors=["base"], tasks=["arc_chalenge"])
def test_unknown_task(llmeff, compressor):
    llmeff.run(compressor)

def test_unknown_cache_strategy(llmeff):
    llmeff.run_cache("semantc")

@pytest.mark.llmeff(workload="forward(batch=1,ctx=16)")
def test_interrupted(llmeff, monkeypatch):
    import pytest_llmeff.measure.case as case

    def ctrl_c(*args, **kwargs):  # the user presses Ctrl-C while this case times its workload
        raise KeyboardInterrupt

    # (its perplexity is the earlier base case's, evaluated once per run: the timing is new work)
    monkeypatch.setattr(case, "paired_costs", ctrl_c)
    llmeff.run("base")
'''


def test_marker_mistakes_and_ctrl_c_then_an_unwritable_baselines_folder(project, monkeypatch):
    """One run, many faults: bad marker values fail their case in one line; Ctrl-C during a
    measurement still prints the summary and writes the run file; the accepted baseline cannot be
    written to the read-only folder, which says so in one line and leaves the folder as it was."""
    import pytest_llmeff.measure.case as case

    monkeypatch.setattr(case, "paired_costs", case.paired_costs)  # restored even if the inner run fails
    project.makepyfile(test_suite=FAULTS)
    BaselineStore(project.path / "baselines", machine_fingerprint("cpu"), "embedded").write({"old": record("old")})
    before = files(project.path / "baselines")
    with read_only(project.path / "baselines"):
        result = run(project, "--llmeff-update-baselines", "--llmeff-json=run.json")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(passed=1, failed=5)
    result.stdout.fnmatch_lines_random([
        "*test_malformed_budget*malformed budget 'perplexity:5%'*",
        "*test_malformed_budget_in_a_table*perplexity<=banana*",
        "*unknown workload 'forwad'*",
        "*did you mean 'arc_challenge'*",
        "*semantc*",
        "*llmeff summary*",
        "*KeyboardInterrupt*",
        "ERROR: pytest-llmeff: cannot write baselines to *: Permission denied *make the folder writable*",
    ])
    assert files(project.path / "baselines") == before
    assert "test_suite.py::test_base[base]" in json.loads((project.path / "run.json").read_text())["cases"]


def test_unwritable_baselines_and_report_folders_fail_the_run_in_one_line_each_and_the_rest_is_written(project):
    with read_only(project.path / "baselines"), read_only(project.path / "shared"):
        result = run(project, "--llmeff-update-baselines", "--llmeff-json=run.json", "--llmeff-markdown=run.md",
                     "--llmeff-report=shared/report")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1)
    errors = [line for line in result.stdout.lines if line.startswith("ERROR")]
    assert len(errors) == 2 and "cannot write baselines to" in errors[0], errors
    assert errors[1].startswith("ERROR: pytest-llmeff: --llmeff-report: cannot write ")
    assert "Permission denied" in errors[1]
    assert not any((project.path / "shared").iterdir())
    result.stdout.fnmatch_lines(["*llmeff summary*", "base *"])
    assert (project.path / "run.json").exists() and (project.path / "run.md").exists()
    assert files(project.path / "baselines") == {}


# ---------------------------------------------------------------------------- baseline files at start-up
def _baseline(project: Pytester, edit) -> Path:
    store = BaselineStore(project.path / "baselines", machine_fingerprint("cpu"), "embedded")
    store.write({"test_suite.py::test_case[base]": record()})
    text = edit(store.path.read_text())
    store.path.write_text(text)
    return store.path


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t[:40], "is not valid JSON"),
    (lambda t: json.dumps({"hello": 1}), "is not a pytest-llmeff baseline file"),
    (lambda t: t.replace('"value": 30.0', '"value": 1e999'), "values.perplexity.value is inf, not a finite number"),
    (lambda t: t.replace('"balanced": 1.0', '"balanced": 1e308'), "opt.balanced is 1e+308, beyond any measured figure"),
    (lambda t: t.replace('"balanced": 1.0', '"balanced": NaN'), "opt.balanced is nan, not a finite number"),
    (lambda t: t.replace('"value": 30.0', '"value": "30"'), "values.perplexity.value is '30', not a number"),
])
def test_bad_baseline_files_stop_the_run_naming_file_and_entry(project, edit, message):
    path = _baseline(project, edit)
    content = path.read_bytes()
    line = usage_error(project, "--llmeff-update-baselines")
    assert message in line and str(path) in line
    assert path.read_bytes() == content


def test_other_machines_baselines_are_refused_unless_forced(project, fp):
    other = dict(fp, cpu="Some Other CPU")
    BaselineStore(project.path / "baselines", other, "embedded").write({"x": record("x")})
    line = usage_error(project, f"--llmeff-baseline-machine={fingerprint_id(other)}")
    assert "recorded on other hardware" in line and "--llmeff-force-compare" in line


# ---------------------------------------------------------------------------- the store itself
@pytest.mark.parametrize("name", ["../../escape", "..", "a/b", "/etc", ".hidden", "x\\..\\y", ""])
def test_machine_names_stay_inside_the_baselines_folder(tmp_path, fp, name):
    if not name:
        assert BaselineStore(tmp_path, fp, "embedded", "").path.parent.name == fingerprint_id(fp)
        return
    with pytest.raises(BaselineError, match="is not a machine folder name"):
        check_machine_name(name)
    with pytest.raises(BaselineError):
        BaselineStore(tmp_path / "baselines", fp, "embedded", name)
    assert not any(tmp_path.rglob("*"))


def test_an_update_never_writes_under_another_machines_name(tmp_path, fp):
    store = BaselineStore(tmp_path, fp, "embedded", "other-box")
    with pytest.raises(BaselineError, match="another machine's folder"):
        store.write({"a": record("a")})
    assert not any(tmp_path.rglob("*"))


def test_a_write_killed_halfway_leaves_no_temporary_file_behind(tmp_path, fp):
    store = BaselineStore(tmp_path, fp, "embedded")
    store.write({"a": record("a")})
    content = store.path.read_text()
    # What a writer killed between mkstemp and os.replace leaves: a partial temporary file.
    (store.path.parent / f"{store.path.name}k3j2h1.tmp").write_text('{"schema": "pytest-')
    assert BaselineStore(tmp_path, fp, "embedded").load() == {"a": record("a")}  # the baseline is intact
    assert store.path.read_text() == content
    BaselineStore(tmp_path, fp, "embedded").write({"b": record("b")})
    assert sorted(p.name for p in store.path.parent.iterdir()) == [store.path.name, store.path.name + ".lock"]


def test_read_only_baselines_folder_is_one_baseline_error(tmp_path, fp):
    store = BaselineStore(tmp_path / "baselines", fp, "embedded")
    store.write({"a": record("a")})
    before = files(tmp_path / "baselines")
    with read_only(tmp_path / "baselines"), pytest.raises(
            BaselineError, match=r"cannot write baselines to .*Permission denied.*make the folder writable"):
        BaselineStore(tmp_path / "baselines", fp, "embedded").write({"b": record("b")})
    assert files(tmp_path / "baselines") == before


@pytest.mark.parametrize(("edit", "entry"), [
    (lambda r: r["values"]["time"].update(value=-0.01), "values.time.value is -0.01; it must be > 0"),
    (lambda r: r["values"]["perplexity"].update(value=0.5), "values.perplexity.value is 0.5; it must be ≥ 1"),
    (lambda r: r["values"]["perplexity"].update(value=True), "values.perplexity.value is True, not a number"),
    (lambda r: r["values"]["time"]["detail"].update(samples=[0.01, float("nan")]), "values.time.samples[1] is nan"),
    (lambda r: r["values"]["time"]["detail"].update(samples="fast"), "values.time.samples is 'fast', not a list"),
    (lambda r: r.update(opt={"run": -1.0}), "opt.run is -1.0; it must be > 0"),
    (lambda r: r.update(values=[]), "values is [], not a table of measurements"),
    (lambda r: r.update(notes="a note"), "notes is 'a note', not a list of strings"),
    (lambda r: r.update(device=0), "device is 0, not a string"),
    (lambda r: r.pop("method"), "missing 'method'"),
])
def test_every_baseline_entry_is_checked(tmp_path, fp, edit, entry):
    store = BaselineStore(tmp_path, fp, "embedded")
    store.write({"a": record("a")})
    data = json.loads(store.path.read_text())
    edit(data["cases"]["a"])
    store.path.write_text(json.dumps(data))
    with pytest.raises(BaselineError) as info:
        BaselineStore(tmp_path, fp, "embedded").load()
    assert str(store.path) in str(info.value) and "case 'a'" in str(info.value) and entry in str(info.value)


# ---------------------------------------------------------------------------- run files and the CLI
def _run_file(folder: Path, name: str, edit=None) -> Path:
    rec = record("a").to_json()
    if edit:
        edit(rec)
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"schema": RUN_SCHEMA, "version": 1, "model": "embedded", "device": "cpu",
                                "fingerprint": machine_fingerprint("cpu"), "cases": {"a": rec}, "verdicts": {}}))
    return path


@pytest.mark.parametrize(("edit", "entry"), [
    (lambda r: r["values"]["perplexity"].update(value=float("inf")), "values.perplexity.value is inf"),
    (lambda r: r["opt"].update(run=float("nan")), "opt.run is nan"),
    (lambda r: r["opt"].update(run=1e308), "opt.run is 1e+308, beyond any measured figure"),
    (lambda r: r["values"]["time"].update(value="0.01"), "values.time.value is '0.01', not a number"),
])
def test_run_files_with_bad_numbers_are_refused_naming_the_entry(tmp_path, capsys, edit, entry):
    good, bad = _run_file(tmp_path, "good"), _run_file(tmp_path, "bad", edit)
    with pytest.raises(CompareError, match="case 'a'"):
        load_run(bad)
    assert cli(["compare", str(good), str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and entry in err[0] and str(bad) in err[0]


@pytest.mark.parametrize(("extra", "entry"), [
    ({"budgets": {"a": [{"budget": "time:+5%", "status": "failed", "message": "", "current": 1, "limit": 1}]}},
     "status 'failed' is none of pass, fail, missing, inconclusive"),
    ({"budgets": {"a": [{"budget": "time:+5%", "status": "fail", "message": "", "current": 1,
                         "limit": float("inf")}]}}, "limit is inf, not a finite number"),
    ({"budgets": {"a": [{"budget": "time 5%", "status": "fail", "message": "", "current": 1, "limit": 1}]}},
     "malformed budget 'time 5%'"),
    ({"environment": {"created": 2026}}, "environment.created is 2026, not a string"),
])
def test_run_files_with_bad_budgets_or_environment_are_refused(tmp_path, capsys, extra, entry):
    path = _run_file(tmp_path, "bad")
    path.write_text(json.dumps(json.loads(path.read_text()) | extra))
    assert cli(["report", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and entry in err[0] and "malformed run file" in err[0], err


def test_pytest_benchmark_run_with_a_bad_number_is_refused(tmp_path):
    path = tmp_path / "0001_run.json"
    info = {"llmeff": {**record("a").to_json(), "values": {"time": {"value": float("inf"), "unit": "s"}}}}
    path.write_text(json.dumps({"benchmarks": [{"name": "t", "fullname": "t", "extra_info": info}]}))
    with pytest.raises(CompareError, match="case 't': values.time.value is inf"):
        load_run(path)


@pytest.mark.parametrize(("argv", "message"), [
    (["compare", "missing.json", "missing.json"], "llmeff compare: cannot read run file missing.json"),
    (["compare", "{a}"], "llmeff compare: compare needs at least two runs"),
    (["compare", "{a}", "{a}", "--fail", "time:10%"], "llmeff compare: malformed budget 'time:10%'"),
    (["compare", "{a}", "{a}", "--fail", "opt<=baseline"], "use the drift form FIELD:+N%"),
    (["compare", "{a}", "{notjson}"], "cannot read run file"),
    (["compare", "{a}", "{foreign}"], "neither a pytest-llmeff run file nor a pytest-benchmark saved run"),
    (["report", "missing.json"], "llmeff report: cannot read run file missing.json"),
    (["report", "{a}", "--out", "{a}"], "llmeff report: cannot write"),
])
def test_cli_mistakes_are_one_line(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    names = {"a": str(_run_file(tmp_path, "a")), "notjson": str(tmp_path / "notjson.json"),
             "foreign": str(tmp_path / "foreign.json")}
    (tmp_path / "notjson.json").write_text("{broken")
    (tmp_path / "foreign.json").write_text('{"schema": "something-else"}')
    assert cli([a.format(**names) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_cli_unknown_command_is_a_usage_line(capsys):
    with pytest.raises(SystemExit) as info:
        cli(["comapre", "a.json"])
    assert info.value.code == 2
    assert "invalid choice: 'comapre'" in capsys.readouterr().err


def test_report_into_a_read_only_folder_is_one_line(tmp_path, capsys):
    run_file = _run_file(tmp_path, "a")
    out = tmp_path / "out"
    with read_only(out):
        code = cli(["report", str(run_file), "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write" in err[0] and "Permission denied" in err[0] and "--out" in err[0]
    assert not any(out.iterdir())
