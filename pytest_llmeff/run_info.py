"""What a run file records about the run itself, beside the machine fingerprint: when it was written,
the project's git commit and the versions of the test libraries.

Kept out of the fingerprint on purpose: the fingerprint is also stored with every baseline, where
a commit or a date would change on every update and a newly listed library would be reported as
drift against every older baseline.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_llmeff.fingerprint import library_version

# Beside the fingerprint's libraries (torch, transformers, bitsandbytes, lm-eval …): what times and
# scores the cases, cheap to read from the installed metadata.
VERSIONS = ("pytest", "pytest-benchmark", "pytest-xdist", "numpy", "accelerate", "optimum-quanto", "hqq",
            "rouge-score")


def git_commit(folder: Path) -> tuple[str, bool] | None:
    """``(commit, has uncommitted changes)`` of the git checkout holding ``folder``; None outside
    one or without git (a report then says the commit was not recorded)."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10,
                              check=True)
        return done.stdout.strip()

    try:
        sha = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return (sha, dirty) if sha else None


def run_environment(folder: Path | None = None, now: dt.datetime | None = None) -> dict[str, Any]:
    """The run file's ``environment`` object: ``created`` (UTC, ISO 8601), ``commit`` and ``dirty``
    (the git checkout of ``folder``, the current directory by default; left out where there is
    none) and ``versions`` of the libraries in :data:`VERSIONS` that are installed."""
    created = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    out: dict[str, Any] = {"created": created.isoformat(timespec="seconds")}
    commit = git_commit(folder or Path.cwd())
    if commit is not None:
        out["commit"], out["dirty"] = commit
    out["versions"] = {name: v for name in VERSIONS if (v := library_version(name))}
    return out


def check_environment(data: Any) -> dict[str, Any]:
    """A run file's ``environment`` as read (``{}`` in files written before it was recorded).

    Raises:
        ValueError: where it is not an object of the fields :func:`run_environment` writes.
    """
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ValueError(f"\"environment\" is {data!r}, not a JSON object")
    for key in ("created", "commit"):
        if key in data and not isinstance(data[key], str):
            raise ValueError(f"environment.{key} is {data[key]!r}, not a string")
    versions = data.get("versions", {})
    if not isinstance(versions, Mapping) or not all(isinstance(v, str) for v in versions.values()):
        raise ValueError(f"environment.versions is {versions!r}, not a table of version strings")
    return dict(data)
