"""Hooks users implement in a ``conftest.py`` or a plugin to extend pytest-llmeff."""

from __future__ import annotations

from typing import Any

import pytest

hookspec = pytest.hookspec


@hookspec
def pytest_llmeff_register_compressors(registry: Any) -> None:
    """Add compressors to the registry before any case is collected.

    ``registry.register(name, factory)``: ``factory(**settings)`` returns a
    :class:`pytest_llmeff.compress.Compressor`. Example::

        def pytest_llmeff_register_compressors(registry):
            registry.register("halve-mlp", HalveMlp)   # then use "halve-mlp" or "halve-mlp+nf4"
    """


@hookspec
def pytest_llmeff_machine_info(info: dict[str, Any]) -> None:
    """Add fields to the machine fingerprint stored with every baseline (mutate ``info``).

    Example::

        def pytest_llmeff_machine_info(info):
            info["rack"] = os.environ.get("RACK", "unknown")
    """


@hookspec
def pytest_llmeff_record(result: Any) -> None:
    """Called with each finished :class:`pytest_llmeff.results.CaseResult` (export it, log it…).

    Example::

        def pytest_llmeff_record(result):
            print(result.case_id, result.record.numbers()["perplexity"], result.verdict)
    """
