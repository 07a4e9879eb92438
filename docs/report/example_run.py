"""Write a run file and report from the plugin tests' hand-built results (tests/test_summary.py:
the figures of a real default run on the embedded model, rounded, with nf4 failing two budgets and
layer20 inconclusive), to show a report's failure colours and budget lines.

    PYTHONPATH=. python docs/report/example_run.py OUT_FOLDER   # OUT_FOLDER/run.json, OUT_FOLDER/report/
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from test_summary import broken, default_run  # noqa: E402

from pytest_llmeff.fingerprint import machine_fingerprint  # noqa: E402
from pytest_llmeff.report_files import write_run_outputs  # noqa: E402

if __name__ == "__main__":
    out = Path(sys.argv[1])
    options = SimpleNamespace(json_path=out / "run.json", report_dir=out / "report", markdown_path=None,
                              model=SimpleNamespace(name="embedded"))
    write_run_outputs(broken(default_run()), options, machine_fingerprint("cpu"), "cpu")
