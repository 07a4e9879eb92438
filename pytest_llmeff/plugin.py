"""pytest glue: options, hooks, fixtures and the terminal summary. The work happens in the session.

Nothing here imports torch: without ``--llmeff`` the plugin only marks benchmark cases as skipped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from typing import Any

import pytest

from pytest_llmeff import options as options_mod

SESSION = pytest.StashKey["Any"]()
PROBLEMS = pytest.StashKey[list[str]]()  # marker mistakes found while collecting: one usage error after it
XDIST_BENCHMARK = pytest.StashKey[str]()  # what became of pytest-benchmark's saved run under xdist
MARKER = "llmeff"
HEAVY = "llmeff_heavy"
DEFAULT_COMPRESSORS = ("base",)


def pytest_addoption(parser: pytest.Parser) -> None:
    options_mod.add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_llmeff import hookspec

    pluginmanager.add_hookspecs(hookspec)


def _progress(config: pytest.Config) -> Any:
    def write(message: str) -> None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None or config.get_verbosity() < -1:
            return
        capman = config.pluginmanager.get_plugin("capturemanager")
        guard = capman.global_and_fixture_disabled() if capman else contextlib.nullcontext()
        with guard:
            reporter.write_line(f"[llmeff] {message}")

    return write


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(compressors=[...], heavy=[...], budgets=[...] or {{pipeline: [...]}}, workload=...): "
        "an LLM benchmark case (skipped unless --llmeff); `heavy` compressors run only with --llmeff-heavy",
    )
    config.addinivalue_line("markers", f"{HEAVY}: a slow LLM benchmark case (runs with --llmeff-heavy)")
    if not (config.getoption("llmeff") or config.getini("llmeff")):
        return
    from pytest_llmeff.compress import COMPRESSORS
    from pytest_llmeff.session import Session
    from pytest_llmeff.store import BaselineError

    try:
        compressors = COMPRESSORS.copy()  # this run's: what its hooks add stays with it
        config.hook.pytest_llmeff_register_compressors(registry=compressors)
        opts = options_mod.Options.from_config(config, compressors)
        extra: dict[str, Any] = {}
        config.hook.pytest_llmeff_machine_info(info=extra)
        worker = getattr(config, "workerinput", {}).get("workerid")  # pytest-xdist: "gw0", "gw1" …
        config.stash[SESSION] = Session(opts, _progress(config), extra, int(worker[2:]) if worker else None)
    except (options_mod.OptionError, BaselineError) as exc:
        raise pytest.UsageError(f"pytest-llmeff: {exc}") from None


def _session(config: pytest.Config) -> Any:
    return config.stash.get(SESSION, None)


def _is_case(item: pytest.Item) -> bool:
    return item.get_closest_marker(MARKER) is not None or "llmeff" in getattr(item, "fixturenames", ())


def _is_reference(item: pytest.Item) -> bool:
    params = getattr(getattr(item, "callspec", None), "params", {})
    return params.get("compressor") == "base" or params.get("strategy") == "none"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``compressor`` from the marker, ``--llmeff-compressors``, or the default."""
    if "compressor" not in metafunc.fixturenames:
        return
    if any("compressor" in m.args[0] for m in metafunc.definition.iter_markers("parametrize") if m.args):
        return  # the test parametrizes it itself
    marker = metafunc.definition.get_closest_marker(MARKER)
    kwargs = marker.kwargs if marker else {}
    heavy = list(kwargs.get("heavy", ()))
    names = list(kwargs.get("compressors", ()))
    names += [h for h in heavy if h not in names]
    if not names:
        opt = metafunc.config.getoption("llmeff_compressors") or metafunc.config.getini("llmeff_compressors")
        names = [c.strip() for c in str(opt).split(",") if c.strip()] or list(DEFAULT_COMPRESSORS)
    run = _session(metafunc.config)
    if run is not None:  # an unknown or impossible pipeline is one usage error now, not a failure per case
        from pytest_llmeff.compress import CompressError
        from pytest_llmeff.registry import UnknownNameError

        for name in names:
            try:
                run.pipeline(name)
            except (UnknownNameError, CompressError) as exc:
                metafunc.config.stash.setdefault(PROBLEMS, []).append(f"{metafunc.definition.nodeid}: {exc}")
    params = [pytest.param(n, id=n, marks=[getattr(pytest.mark, HEAVY)] if n in heavy else []) for n in names]
    metafunc.parametrize("compressor", params, indirect=True)


MARKER_KEYWORDS = ("compressors", "heavy", "budgets", "workload", "tasks")


def _check_marker(nodeid: str, kwargs: dict[str, Any], problems: list[str]) -> None:
    """A misspelt marker keyword (``budget=`` for ``budgets=``) would silently drop what it sets."""
    from pytest_llmeff.registry import did_you_mean

    for key in kwargs:
        if key not in MARKER_KEYWORDS:
            problems.append(f"{nodeid}: unknown @pytest.mark.{MARKER} keyword {key!r}"
                            f"{did_you_mean(key, list(MARKER_KEYWORDS))} (known: {', '.join(MARKER_KEYWORDS)})")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    problems = config.stash.setdefault(PROBLEMS, [])
    for item in items:
        marker = item.get_closest_marker(MARKER)
        if marker is not None:
            _check_marker(item.nodeid.split("[")[0], marker.kwargs, problems)
    if problems and _session(config) is not None:
        raise pytest.UsageError("pytest-llmeff: " + "\n  ".join(dict.fromkeys(problems)))
    run = _session(config)
    if run is None:
        skip = pytest.mark.skip(reason="LLM benchmark case: run with --llmeff")
        for item in items:
            if _is_case(item):
                item.add_marker(skip)
        return
    if not run.options.heavy:
        skip_heavy = pytest.mark.skip(reason="heavy LLM benchmark case: run with --llmeff-heavy")
        for item in items:
            if item.get_closest_marker(HEAVY) is not None:
                item.add_marker(skip_heavy)
    # Reference cases (the base model, no cache) run first, so every other case compares with a
    # reference timed the same way, through its own benchmark fixture.
    positions = [i for i, item in enumerate(items) if _is_case(item)]
    cases = [items[i] for i in positions]
    cases.sort(key=lambda it: 0 if _is_reference(it) else 1)
    for i, item in zip(positions, cases, strict=True):
        items[i] = item


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    session = _session(item.config)
    if session is not None and call.when == "call" and report.passed and _is_case(item):
        session.accept(item.nodeid)  # only passing cases may become baselines
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    run = _session(config)
    if run is None:
        return
    if hasattr(config, "workeroutput"):  # an xdist worker: hand the cases to the controller
        config.workeroutput["llmeff"] = {"results": [r.to_json() for r in run.results],
                                         "accepted": sorted(run.accepted)}
        run.finish(write=False)
    else:
        run.finish()
        from pytest_llmeff.benchmark_save import save_under_xdist

        line = save_under_xdist(config, run.results)
        if line:
            config.stash[XDIST_BENCHMARK] = line
        if run.errors and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a requested file was not written


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist controller: merge a finished worker's cases into this run."""
    run = _session(node.config)
    data = getattr(node, "workeroutput", {}).get("llmeff")
    if run is not None and data:
        run.merge(data["results"], data["accepted"])


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    """Saved pytest-benchmark runs carry llmeff's fingerprint (`llmeff compare` checks it)."""
    run = _session(config)
    if run is not None:
        machine_info["llmeff_fingerprint"] = run.fingerprint


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    run = _session(config)
    if run is None or not run.results:
        return
    from pytest_llmeff.report import summary_lines

    terminalreporter.section("llmeff summary")
    for line in summary_lines(run.results, run):
        terminalreporter.write_line(line)
    if XDIST_BENCHMARK in config.stash:
        terminalreporter.write_line(f"[llmeff] {config.stash[XDIST_BENCHMARK]}")


# ---------------------------------------------------------------------------- fixtures
def _require(request: pytest.FixtureRequest) -> Any:
    run = _session(request.config)
    if run is None:
        pytest.skip("LLM benchmark fixture: run with --llmeff")
    return run


@pytest.fixture(scope="session")
def llm_model(request: pytest.FixtureRequest) -> Any:
    """The base model of the run (``LoadedModel``: ``.model``, ``.tokenizer``, ``.device``…), loaded once."""
    from pytest_llmeff.cases import clear_errors

    with clear_errors():
        return _require(request).base()


@pytest.fixture
def compressor(request: pytest.FixtureRequest) -> Any:
    """The compressor pipeline of this case (parametrized by name; unknown names fail clearly)."""
    run = _require(request)
    from pytest_llmeff.compress import CompressError
    from pytest_llmeff.registry import UnknownNameError

    try:
        return run.pipeline(request.param)
    except (UnknownNameError, CompressError) as exc:
        raise pytest.fail.Exception(str(exc), pytrace=False) from None  # one line, not the error twice


@pytest.fixture(scope="session")
def energy_meter(request: pytest.FixtureRequest) -> Any:
    """The run's energy meter: ``with energy_meter.measure() as w: ...`` then ``w.reading``."""
    return _require(request).meter()


@pytest.fixture
def llmeff(request: pytest.FixtureRequest) -> Any:
    """The case object: ``llmeff.run(compressor)`` measures, records and checks budgets."""
    from pytest_llmeff.cases import LlmeffCase

    run = _require(request)
    marker = request.node.get_closest_marker(MARKER)
    return LlmeffCase(run, request.node, lambda: request.getfixturevalue("benchmark"),
                      marker.kwargs if marker else {}, request.config.hook)
