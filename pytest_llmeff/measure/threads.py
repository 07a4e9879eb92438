"""How many CPU threads torch may use: never more than the cores this process really has.

On a shared 2-core runner torch's default (one thread per core) oversubscribes the machine as soon
as anything else runs: measured on the 2-core CPU kind with one other busy process, the embedded
model's forward call went from ~40 ms to 80–180 ms (CV 90–110 %) with 2 threads, against a CV of
3–8 % with 1 (docs/BENCHMARKS.md). ``auto`` therefore leaves one core to the rest of the machine for
everything that is timed. Untimed, deterministic work (the perplexity evaluation) may use every
usable core that is not busy with other work (:func:`free_cores`, :func:`using`): its result does
not depend on the thread count, but a thread on a core another process keeps busy stalls the
others at every step (measured: quality evaluation 4× slower on 2 threads beside one busy core).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
PROC_STAT = Path("/proc/stat")


def usable_cores(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup v2 CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota readable: the affinity decides
    return max(1, cores)


def _cpu_times(stat: Path) -> tuple[float, float, int]:
    """(busy, total) jiffies of the machine and its CPU count, from ``/proc/stat``."""
    lines = stat.read_text().splitlines()
    fields = [float(x) for x in lines[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    cpus = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    return sum(fields[:8]) - idle, sum(fields[:8]), max(1, cpus)


def free_cores(sample_s: float = 0.1, stat: Path = PROC_STAT, cores: int | None = None) -> int:
    """Usable cores minus those other processes keep busy, measured over ``sample_s`` while this
    process sleeps (at least 1; every usable core where ``/proc/stat`` cannot be read)."""
    cores = usable_cores() if cores is None else cores
    try:
        busy0, total0, cpus = _cpu_times(stat)
        time.sleep(sample_s)
        busy1, total1, _ = _cpu_times(stat)
    except (OSError, ValueError, IndexError):
        return cores
    if total1 <= total0:
        return cores
    busy_cpus = (busy1 - busy0) / (total1 - total0) * cpus
    return max(1, min(cores, cores - round(busy_cpus)))


def auto_threads(cores: int | None = None) -> int:
    """All usable cores but one (at least 1): room for the rest of the machine."""
    cores = usable_cores() if cores is None else cores
    return max(1, cores - 1)


def apply(threads: int) -> int:
    """Make torch use ``threads`` intra-op threads; returns what torch reports afterwards."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


@contextlib.contextmanager
def using(threads: int) -> Iterator[None]:
    """torch on ``threads`` threads inside the block (untimed work: quality evaluation, training)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
