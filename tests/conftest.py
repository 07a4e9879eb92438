"""Shared fixtures for the plugin's own tests: the embedded model, loaded once."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def embedded():
    """The shipped reference model and tokenizer on CPU, float32."""
    import torch

    torch.manual_seed(0)
    from pytest_llmeff.models.loading import load_model, resolve_model

    return load_model(resolve_model("embedded"), "cpu", "float32")


@pytest.fixture(scope="session")
def heldout_ids(embedded):
    from pytest_llmeff.models.datasets import load_text_data

    return embedded.tokenizer(load_text_data("embedded").eval_text)["input_ids"]


@pytest.fixture
def inprocess(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """``pytester`` for in-process runs of ``pytest --llmeff`` (``runpytest_inprocess``).

    An in-process run saves interpreter start-up, the torch / transformers imports and their
    extension modules (seconds per run on 2 cores). pytester puts ``sys.modules`` back after every
    in-process run and at the end of the test, and torch's extension modules cannot be imported a
    second time in one process: here every module stays but the project's test modules and
    conftest files (pytester's private snapshot method is replaced for that). A run sets torch's
    thread count for its timings; it is put back afterwards, for the tests that follow.

    An inner run starts under the warning filters of the test around it, the repository's
    (pyproject.toml): a warning that is not let through there fails the inner test as well.
    """
    import torch
    import transformers  # noqa: F401  here, not in a run: its log handler keeps the sys.stderr it was imported under
    from _pytest.pytester import Pytester, SysModulesSnapshot

    monkeypatch.setattr(Pytester, "_Pytester__take_sys_modules_snapshot",
                        lambda self: SysModulesSnapshot(preserve=lambda n: not n.startswith(("test_", "conftest"))))
    threads = torch.get_num_threads()
    request.addfinalizer(lambda: torch.set_num_threads(threads))
    return request.getfixturevalue("pytester")
