"""Quality evaluation may run on any number of threads: on the embedded model its figures are the
same bits on 1 and on 2, so evaluation takes the cores other processes leave free
(threads.free_cores), and the quality memo and the baseline history, which compare figures
exactly, are not split by the machine's load."""

from __future__ import annotations

from pytest_llmeff.measure import threads
from pytest_llmeff.measure.perplexity import perplexity


def test_perplexity_is_the_same_bits_on_one_and_two_threads(embedded, heldout_ids):
    values = []
    for n in (1, 2):
        with threads.using(n):
            values.append(perplexity(embedded.model, heldout_ids[:256 * 12], "nonoverlap-256").value)
    assert values[0] == values[1]


def test_free_cores_leaves_out_the_cores_other_processes_keep_busy(tmp_path, monkeypatch):
    stat = tmp_path / "stat"

    def write(busy: int, idle: int) -> None:  # /proc/stat: user nice system idle iowait irq softirq steal
        stat.write_text(f"cpu  {busy} 0 0 {idle} 0 0 0 0\ncpu0 0 0 0 0\ncpu1 0 0 0 0\n")

    def free(busy: int, idle: int) -> int:  # the machine's jiffies over the sample, 2 CPUs
        write(0, 0)
        monkeypatch.setattr(threads.time, "sleep", lambda _: write(busy, idle))
        return threads.free_cores(0.0, stat, cores=2)

    assert free(100, 100) == 1  # half the machine busy: one core taken by another process
    assert free(0, 200) == 2  # quiet
    assert free(200, 0) == 1  # both busy: still one thread
    assert threads.free_cores(0.0, tmp_path / "missing", cores=3) == 3  # unreadable: every usable core
