"""The test suite's own fixtures (tests/conftest.py): what they promise the plugin's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

PROBE = '''
import os

with open(os.environ["PROBE_LOG"], "a") as fh:  # one line per import of this module
    fh.write("imported\\n")
'''

TWO_TESTS = '''
import sys


def test_imports_a_module_while_a_pytester_lives(pytester):
    import llmeff_probe  # noqa: F401  first imported here, with pytester's snapshot taken before


def test_a_later_test_finds_it_still_imported():
    assert "llmeff_probe" in sys.modules
    import llmeff_probe  # noqa: F401
'''


def test_a_module_imported_during_a_pytester_test_is_not_imported_again(pytester: pytest.Pytester, monkeypatch):
    """A module a pytester test imports stays imported for the tests after it.

    pytester's own clean-up drops it (tests/test_flow.py then tests/test_plugin.py failed that way:
    pandas and bitsandbytes, imported during test_flow.py, were imported a second time by the later
    in-process run, which cannot work). Run in a subprocess: this process's session already has the
    fix in place, whatever the conftest copied into the project says.
    """
    log = pytester.path / "imports.log"
    monkeypatch.setenv("PROBE_LOG", str(log))
    pytester.makepyfile(llmeff_probe=PROBE, test_two=TWO_TESTS)
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())
    result = pytester.runpytest_subprocess("-p", "pytester", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert log.read_text().splitlines() == ["imported"]
