"""The machine fingerprint: what must match for two runs' figures to be comparable."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
from importlib import metadata
from typing import Any

# Hardware decides whether timings and energy are comparable; library versions are recorded
# alongside (a change is reported) but do not split the baseline folders.
HARDWARE_KEYS = ("cpu", "cores", "accelerator", "extra")
_LIBRARIES = ("torch", "transformers", "bitsandbytes", "gptqmodel", "codecarbon", "lm_eval", "pytest_llmeff")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine()


def library_version(dist: str) -> str | None:
    try:
        return metadata.version(dist.replace("_", "-"))
    except metadata.PackageNotFoundError:
        return None


def machine_fingerprint(device: str = "cpu", accelerator: dict[str, Any] | None = None,
                        extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Describe this machine. ``accelerator`` comes from the GPU probe when ``device`` is cuda;
    ``extra`` holds fields users add through the ``pytest_llmeff_machine_info`` hook."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count() or 0,
        "accelerator": (accelerator or {}).get("name", "none") if device.startswith("cuda") else "none",
        "accelerator_detail": accelerator or {},
        "os": f"{platform.system()} {platform.machine()}",
        "python": platform.python_version(),
        "libraries": {name: v for name in _LIBRARIES if (v := library_version(name))},
        "extra": dict(extra or {}),
    }


def fingerprint_id(fp: dict[str, Any]) -> str:
    """A readable, filesystem-safe folder name: ``<cpu>-<cores>c[-<gpu>]-<hash>``."""
    hardware = {k: fp.get(k) for k in HARDWARE_KEYS}
    digest = hashlib.sha256(json.dumps(hardware, sort_keys=True).encode()).hexdigest()[:8]
    parts = [str(fp.get("cpu", "cpu")), f"{fp.get('cores', 0)}c"]
    if fp.get("accelerator", "none") != "none":
        parts.append(str(fp["accelerator"]))
    slug = re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")[:60]
    return f"{slug}-{digest}"


def hardware_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The hardware fields on which two fingerprints differ, as readable lines."""
    return [f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in HARDWARE_KEYS if a.get(k) != b.get(k)]


def library_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Library versions that differ between two fingerprints."""
    la, lb = a.get("libraries", {}), b.get("libraries", {})
    return [f"{k} {la.get(k)} vs {lb.get(k)}" for k in sorted(set(la) | set(lb)) if la.get(k) != lb.get(k)]
