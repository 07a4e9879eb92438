"""Energy meters: counter arithmetic (wrap-around), inconclusive windows, and a real CPU reading."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pytest_llmeff.measure.energy import (
    CodeCarbonMeter,
    EnergyInconclusive,
    EnergyMeter,
    MeterUnavailable,
    NvmlMeter,
    RaplMeter,
    build_meter,
    counter_delta,
)


def test_counter_delta_without_and_with_wrap():
    assert counter_delta(100, 250, 1000) == 150
    assert counter_delta(900, 50, 1000) == 150  # wrapped once at 1000
    with pytest.raises(EnergyInconclusive, match="went backwards"):
        counter_delta(900, 50, None)


def _zone(path: Path, name: str, energy_uj: int, max_uj: int) -> None:
    path.mkdir(parents=True)
    (path / "name").write_text(name + "\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text(f"{max_uj}\n")


def test_rapl_meter_reads_package_and_dram_and_handles_wrap(tmp_path):
    # A fake powercap tree: tests the arithmetic only; real counters are read on machines that have them.
    _zone(tmp_path / "intel-rapl:0", "package-0", 999_000_000, 1_000_000_000)
    _zone(tmp_path / "intel-rapl:0:0", "dram", 10_000_000, 1_000_000_000)
    meter = RaplMeter(root=tmp_path)
    assert meter.components == ("cpu", "ram")
    meter.start()
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("2000000\n")  # wrapped: +3 J
    (tmp_path / "intel-rapl:0:0" / "energy_uj").write_text("11500000\n")  # +1.5 J
    assert meter.stop() == pytest.approx({"cpu": 3.0, "ram": 1.5})


def test_rapl_unavailable_says_where_it_looked(tmp_path):
    with pytest.raises(MeterUnavailable, match="no readable RAPL counters"):
        RaplMeter(root=tmp_path)


class SteppingCounter:
    """A fake NVML module: a counter that adds ``watts`` × 50 ms every 50 ms (fake source; tests the
    window alignment arithmetic only — real counters are read on machines that have them)."""

    class NVMLError(Exception):
        pass

    def __init__(self, watts: float) -> None:
        self.watts, self.t0 = watts, time.perf_counter()

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: object) -> int:  # noqa: N802 (NVML's name)
        steps = int((time.perf_counter() - self.t0) / 0.05)
        return int(steps * 0.05 * self.watts * 1000)  # millijoules


def _nvml_meter(counter: SteppingCounter) -> NvmlMeter:
    meter = object.__new__(NvmlMeter)  # no GPU here: the counter source is swapped in
    meter._nvml, meter._handles, meter._indices, meter._start = counter, [None], [], []
    meter._synchronize = lambda: None
    return meter


def test_nvml_window_starts_and_ends_on_counter_steps():
    counter = SteppingCounter(watts=100.0)
    meter = _nvml_meter(counter)
    time.sleep(0.03)  # mid-step: an unaligned read would count energy from before the window
    meter.start()
    began = time.perf_counter()
    time.sleep(0.42)
    joules = meter.stop()["gpu"]
    covered = time.perf_counter() - began
    # The window starts on a step and ends on the first step after the body: 0.45 s or 0.5 s of
    # counted energy at 100 W, never the 0.40 s an unaligned pair of reads could give.
    assert joules in (pytest.approx(45.0), pytest.approx(50.0))
    assert covered <= 0.5 + 0.01


def test_nvml_read_failure_is_inconclusive_not_a_crash():
    counter = SteppingCounter(watts=100.0)
    meter = _nvml_meter(counter)

    def broken(handle: object) -> int:
        raise counter.NVMLError("GPU is lost")

    counter.nvmlDeviceGetTotalEnergyConsumption = broken
    with EnergyMeter([meter]).measure() as window:
        pass
    assert window.reading is None and "GPU is lost" in window.error


class FakeMeter:
    components = ("cpu",)
    method = "fake-counter"
    estimated = False

    def __init__(self, joules: float, min_window_s: float = 0.0) -> None:
        self.joules, self.min_window_s = joules, min_window_s

    def start(self) -> None:
        pass

    def stop(self) -> dict[str, float]:
        return {"cpu": self.joules}


def test_zero_energy_is_inconclusive_not_zero():
    with EnergyMeter([FakeMeter(0.0)]).measure() as window:
        pass
    assert window.reading is None and "did not move" in window.error


def test_short_window_is_inconclusive():
    with EnergyMeter([FakeMeter(5.0, min_window_s=10.0)]).measure() as window:
        pass
    assert window.reading is None and "too short" in window.error


def test_reading_labels_components():
    with EnergyMeter([FakeMeter(2.0)]).measure() as window:
        time.sleep(0.01)
    reading = window.reading
    assert reading.joules == 2.0 and reading.method == "cpu: fake-counter" and not reading.estimated


def test_no_meter_is_an_error_not_a_zero():
    meter = build_meter("cpu", "none")
    with meter.measure() as window:
        pass
    assert window.reading is None and window.error


def test_explicit_unavailable_meter_raises():
    with pytest.raises(MeterUnavailable, match="on the CPU"):
        build_meter("cpu", "nvml")
    with pytest.raises(ValueError, match="unknown energy meter"):
        build_meter("cpu", "joulemeter")


def test_codecarbon_on_this_cpu_gives_a_labelled_nonzero_estimate():
    meter = build_meter("cpu", "auto")
    try:
        assert any(isinstance(m, CodeCarbonMeter) for m in meter.meters)
        with meter.measure() as window:
            end = time.perf_counter() + max(meter.min_window_s, 0.6)
            while time.perf_counter() < end:  # keep a core busy so the CPU share is non-zero
                sum(range(1000))
        reading = window.reading
        assert reading is not None, window.error
        assert reading.joules > 0 and reading.estimated
        assert set(reading.components) >= {"cpu", "ram"}
        assert all(c.method in ("codecarbon-estimate", "rapl") for c in reading.components.values())
    finally:
        meter.close()


def test_last_resort_estimate_is_labelled_and_nonzero():
    from pytest_llmeff.measure.energy import EstimateMeter

    meter = build_meter("cpu", "estimate")
    assert [type(m) for m in meter.meters] == [EstimateMeter]
    with meter.measure() as window:
        end = time.perf_counter() + 0.6
        while time.perf_counter() < end:
            sum(range(1000))
    reading = window.reading
    assert reading is not None and reading.estimated and reading.method == "cpu+ram: process-time-estimate"
    # ~0.6 s of one busy core at 4 W, RAM at 0.375 W/GiB.
    assert 1.0 < reading.components["cpu"].joules < 4.0
    assert reading.components["ram"].joules > 0
