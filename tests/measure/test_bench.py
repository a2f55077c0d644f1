"""The microbenchmarks run on the CPU in a tiny mode: sanity only (positive, finite, physically possible), never
speed. The result is calibrated, written as a hardware file and loaded back."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

pytest.importorskip("torch")

import rooflm
from rooflm.measure.bench import Plan, measure_machine
from rooflm.measure.calibrate import calibrate
from rooflm.measure.hwfile import write_hardware_file
from rooflm.measure.machine import describe_machine
from rooflm.measure.results import Measurements

MiB = 2**20
# A physical bound no single CPU socket's DRAM reaches (DDR5 12-channel ≈ 0.46 TB/s).
MAX_CPU_BANDWIDTH = 1e12


@pytest.fixture(scope="module")
def measured() -> Measurements:
    plan = Plan(device="cpu", bandwidth_bytes=(64 * MiB,), matmul_size=256, matmul_dtypes=("fp32", "bf16"),
                curve_dtypes=("bf16",), curve_m=(1, 256), layer=(256, 512), pool_bytes=64 * MiB, repeats=3,
                quick=True, eager_layers=(1, 2), dispatch_inner=20)
    labels: list[str] = []
    m = measure_machine(describe_machine("cpu"), plan, labels.append)
    assert len(labels) == plan.steps  # one progress call per step
    return m


def test_machine_is_described(measured: Measurements) -> None:
    mc = measured.machine
    assert mc.device == "cpu"
    assert mc.threads >= 1
    assert mc.memory_capacity_bytes > 0
    assert mc.torch_version


def test_bandwidth_is_positive_and_physical(measured: Measurements) -> None:
    assert {s.pattern for s in measured.bandwidth} == {"read", "copy", "triad"}
    for s in measured.bandwidth:
        assert math.isfinite(s.best_bytes_per_s)
        assert 0 < s.median_bytes_per_s <= s.best_bytes_per_s < MAX_CPU_BANDWIDTH


def test_matmuls_and_overheads_are_positive(measured: Measurements) -> None:
    assert {s.dtype for s in measured.matmul} == {"fp32", "bf16"}
    for s in measured.matmul:
        assert 0 < s.median_flops_per_s < math.inf
    assert 0 < measured.dispatch.median_s < 1e-2
    assert [s.layers for s in measured.eager_steps] == [1, 2]
    assert all(0 < s.run.median_s < 1.0 for s in measured.eager_steps)


def test_gemm_curve_gains_throughput_with_m(measured: Measurements) -> None:
    # At M = 1 each weight is used once (≈ 1 FLOP/byte in bf16); at M = 256 it is reused 256 times, so even a
    # slow machine does many times more FLOP/s. The fastest runs are compared: on a CPU shared with other jobs a
    # median of five can land on a descheduled run (80 ms against a best of 1 ms was seen).
    by_m = {p.m: p for p in measured.curve}
    assert by_m[256].best_flops_per_s > by_m[1].best_flops_per_s
    assert by_m[1].arithmetic_intensity == pytest.approx(1.0, rel=0.05)


def test_calibrated_file_round_trips(measured: Measurements, tmp_path: Path) -> None:
    cal = calibrate(measured)
    assert 0 < cal.memory_efficiency <= 1
    assert all(0 < v <= 1 for v in cal.compute_efficiency.values())
    assert cal.op_overhead_s > 0
    path = tmp_path / "me.toml"
    write_hardware_file(path, cal, measured)
    hw = rooflm.load_hardware(str(path))
    assert hw.memory_bandwidth.value == pytest.approx(cal.memory_bandwidth, rel=1e-5)
    assert hw.peak("bf16") == pytest.approx(cal.peak_flops["bf16"], rel=1e-5)
    assert "measured by rooflm measure on" in hw.memory_bandwidth.source
    report = rooflm.analyze("llama-3.1-8b", str(path), phase="decode", batch=1, context=128, efficiency="calibrated")
    assert report.totals.time_s > 0
