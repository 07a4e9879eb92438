"""The example CI workflow: it installs the CPU build of torch, caches what is slow to rebuild, and
names only options that exist."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from pytest_llmeff.option_list import _FLAGS, _SETTINGS, _flag
from pytest_llmeff.options import DEFAULT_CACHE_DIR

WORKFLOW = Path(__file__).resolve().parent.parent / ".github" / "workflows" / "llmeff-gate.yml"


def steps() -> list[dict]:
    return yaml.safe_load(WORKFLOW.read_text())["jobs"]["gate"]["steps"]


def test_installs_with_the_cpu_constraints_and_caches_pip_and_derived_models():
    runs = " ".join(s.get("run", "") for s in steps())
    assert "-c constraints-cpu.txt" in runs and "download.pytorch.org/whl/cpu" in runs
    python = next(s for s in steps() if s.get("uses", "").startswith("actions/setup-python"))
    assert python["with"]["cache"] == "pip"
    cache = next(s for s in steps() if s.get("uses", "").startswith("actions/cache"))
    assert "~/" + str(DEFAULT_CACHE_DIR.relative_to(Path.home())) in cache["with"]["path"].split()


def test_names_only_real_options_and_writes_the_step_summary():
    gate = next(s["run"] for s in steps() if "pytest --llmeff" in s.get("run", ""))
    known = {_flag(name) for name, *_ in [*_SETTINGS, *_FLAGS]} | {"--llmeff", "--llmeff-budget"}
    named = set(re.findall(r"--llmeff[\w-]*", gate))
    assert named and named <= known, named - known
    assert '--llmeff-markdown="$GITHUB_STEP_SUMMARY"' in gate
