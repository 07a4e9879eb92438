"""Baseline storage: JSON per machine fingerprint and model, validated on read, written atomically.

Layout::

    baselines/<fingerprint id>/<model slug>.json

A file is only written when the user asks (``--llmeff-update-baselines``), under a lock (parallel
workers merge instead of overwriting each other), through a temporary file and ``os.replace`` so a
crash never leaves half a file. Corrupt or foreign files raise :class:`BaselineError` and are never
touched.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llmeff.fingerprint import fingerprint_id, hardware_differences
from pytest_llmeff.records import CaseRecord, check_record_json
from pytest_llmeff.verdicts import with_history

SCHEMA = "pytest-llmeff/baselines"
VERSION = 1


class BaselineError(ValueError):
    """A baseline file that cannot be used (corrupt JSON, another schema, another machine)."""


def model_slug(model: str) -> str:
    """A filesystem-safe name for a model id or path."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model.strip("/")).strip("_") or "model"


_MACHINE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_machine_name(name: str) -> str:
    """A machine folder name (``--llmeff-baseline-machine``): one plain folder inside the baselines
    folder, never a path that leads out of it."""
    if not _MACHINE.match(name) or ".." in name:
        raise BaselineError(f"--llmeff-baseline-machine {name!r} is not a machine folder name: give the name of a "
                            "folder inside the baselines folder (letters, digits, '.', '_', '-'), such as "
                            "one listed under 'baselines exist for other machines'")
    return name


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path.lock`` across processes (xdist workers, two runs), with the
    ``filelock`` library: POSIX ``flock`` where there is one, Windows' own locking elsewhere."""
    from filelock import FileLock

    with FileLock(str(path.with_name(path.name + ".lock"))):
        yield


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BaselineError(f"baseline file {path} is not valid JSON ({exc}); fix or remove it") from None
    except OSError as exc:
        raise BaselineError(f"baseline file {path} cannot be read: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise BaselineError(f"{path} is not a pytest-llmeff baseline file (no \"schema\": \"{SCHEMA}\")")
    if data.get("version") != VERSION:
        raise BaselineError(f"{path} has baseline format version {data.get('version')!r}; "
                            f"this pytest-llmeff reads version {VERSION}")
    if not isinstance(data.get("cases"), dict) or not isinstance(data.get("fingerprint"), dict):
        raise BaselineError(f"{path} is missing its \"cases\" or \"fingerprint\" table")
    return data


@dataclass(frozen=True)
class BaselineChange:
    """One case written by an update: its old and new numbers, for the summary."""

    case_id: str
    old: Mapping[str, float] | None
    new: Mapping[str, float]


class BaselineStore:
    """The baselines of one model on one machine."""

    def __init__(self, root: Path, fingerprint: dict[str, Any], model: str, machine: str | None = None,
                 force: bool = False) -> None:
        """``machine``: another fingerprint folder to compare with (hardware must match unless ``force``)."""
        self.root = root
        self.fingerprint = fingerprint
        self.model = model
        self.force = force
        self.machine = check_machine_name(machine) if machine else None
        self.path = root / (self.machine or fingerprint_id(fingerprint)) / f"{model_slug(model)}.json"
        self.forced_differences: list[str] = []
        self._cases: dict[str, CaseRecord] | None = None

    def load(self) -> dict[str, CaseRecord]:
        """Read and validate the file (empty when it does not exist)."""
        if self._cases is None:
            self._cases = self._parse(_read(self.path)) if self.path.exists() else {}
        return self._cases

    def _parse(self, data: dict[str, Any]) -> dict[str, CaseRecord]:
        diffs = hardware_differences(data["fingerprint"], self.fingerprint)
        if diffs and not self.force:
            raise BaselineError(f"{self.path} was recorded on other hardware ({'; '.join(diffs)}): timings and "
                                "energy do not compare across machines (--llmeff-force-compare to compare anyway)")
        self.forced_differences = diffs
        cases = {}
        for cid, rec in data["cases"].items():
            try:
                check_record_json(rec)
                cases[cid] = CaseRecord.from_json(rec)
            except (KeyError, TypeError, ValueError) as exc:
                problem = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
                raise BaselineError(f"{self.path}: case {cid!r}: {problem}; fix or remove this entry") from None
        return cases

    def get(self, case_id: str) -> CaseRecord | None:
        return self.load().get(case_id)

    def other_machines(self) -> list[str]:
        """Fingerprint folders that hold baselines for this model but are not this machine."""
        if not self.root.is_dir():
            return []
        mine = self.path.parent.name
        return sorted(p.parent.name for p in self.root.glob(f"*/{self.path.name}") if p.parent.name != mine)

    def write(self, updates: Mapping[str, CaseRecord]) -> list[BaselineChange]:
        """Merge ``updates`` into the file on disk (re-read under the lock) and replace it atomically.

        Raises:
            BaselineError: the folder is another machine's, or cannot be written (one line, with what to do).
        """
        if self.forced_differences or (self.machine and self.machine != fingerprint_id(self.fingerprint)):
            raise BaselineError(f"{self.path.parent.name} is another machine's folder: baselines are only written "
                                "under the fingerprint of the machine that measured them (drop "
                                "--llmeff-baseline-machine to update this machine's)")
        try:
            return self._write(updates)
        except OSError as exc:
            where = exc.filename or self.path
            raise BaselineError(f"cannot write baselines to {self.path.parent}: {exc.strerror or exc} ({where}); "
                                "make the folder writable or choose another with --llmeff-baselines") from None

    def _write(self, updates: Mapping[str, CaseRecord]) -> list[BaselineChange]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(self.path):
            # Under the lock no other writer is between mkstemp and os.replace: a temporary file
            # still here was left by a writer that was killed halfway.
            for stale in self.path.parent.glob(f"{glob.escape(self.path.name)}*.tmp"):
                with contextlib.suppress(OSError):
                    stale.unlink()
            current = self._parse(_read(self.path)) if self.path.exists() else {}
            changes = [BaselineChange(cid, current[cid].numbers() if cid in current else None, rec.numbers())
                       for cid, rec in sorted(updates.items())]
            current.update({cid: with_history(current.get(cid), rec) for cid, rec in updates.items()})
            payload = {
                "schema": SCHEMA, "version": VERSION, "model": self.model,
                "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "fingerprint": self.fingerprint,
                "cases": {cid: current[cid].to_json() for cid in sorted(current)},
            }
            fd, tmp = tempfile.mkstemp(prefix=self.path.name, suffix=".tmp", dir=self.path.parent)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; baselines are shared files
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(payload, fh, indent=2, sort_keys=False)
                    fh.write("\n")
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        self._cases = current
        return changes
