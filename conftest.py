"""Repository-level pytest configuration.

In this repository ``pytest --llmeff`` runs the benchmark suites in ``suites/``; the plugin's own
tests (``tests/``) belong to the plain ``pytest`` run. Users' projects mix both however they like.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_TESTS = Path(__file__).parent / "tests"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if config.getoption("llmeff", default=None) and collection_path.is_relative_to(_TESTS):
        return True
    return None
