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


def _keep_modules(name: str) -> bool:
    """What pytester keeps in ``sys.modules`` after a run and at the end of a test: every module
    but the test modules and conftest files of its projects (a later project's ``test_suite.py``
    must be imported anew)."""
    return not name.startswith(("test_", "conftest"))


@pytest.fixture(scope="session", autouse=True)
def _pytester_keeps_modules():
    """Every ``pytester`` of these tests keeps the modules imported while it lived.

    pytester takes a snapshot of ``sys.modules`` when it is created and before each in-process
    run, and puts it back after the run and at the end of the test: a module first imported in
    between is dropped and imported again by whatever needs it next. Much of what the plugin imports
    cannot be imported twice in one process: torch's extension modules; bitsandbytes, whose
    operators are registered with torch once per process (``Tried to register an operator ...
    multiple times``); pandas, whose Cython modules (``pandas._libs.parsers``) keep the first
    import's classes, so that the second import's ``read_csv`` builds arrays the second pandas does
    not recognise (``ArrowStringArray does not support reshape``, in CodeCarbon's hardware set-up).
    So pytester's (private) snapshot method is replaced for the whole session, before any pytester
    exists: a test that only parses a config with ``pytester`` (tests/test_flow.py) must not drop
    what it imported either, or the tests after it fail in whichever order they run.
    """
    from _pytest.pytester import Pytester, SysModulesSnapshot

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Pytester, "_Pytester__take_sys_modules_snapshot",
                   lambda self: SysModulesSnapshot(preserve=_keep_modules))
        yield


@pytest.fixture
def inprocess(request: pytest.FixtureRequest) -> pytest.Pytester:
    """``pytester`` for in-process runs of ``pytest --llmeff`` (``runpytest_inprocess``).

    An in-process run saves interpreter start-up, the torch / transformers imports and their
    extension modules (seconds per run on 2 cores). Like every ``pytester`` here, it keeps the
    modules a run imports (``_pytester_keeps_modules``). A run sets torch's thread count for its
    timings; it is put back afterwards, for the tests that follow.

    An inner run starts under the warning filters of the test around it, the repository's
    (pyproject.toml): a warning that is not let through there fails the inner test as well.
    """
    import torch
    import transformers  # noqa: F401  here, not in a run: its log handler keeps the sys.stderr it was imported under

    threads = torch.get_num_threads()
    request.addfinalizer(lambda: torch.set_num_threads(threads))
    return request.getfixturevalue("pytester")
