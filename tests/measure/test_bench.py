"""The microbenchmarks run on the CPU in a tiny mode: sanity only (positive, finite, physically possible), never
speed: a timing compared with a threshold breaks on a shared machine, so the only time bounds here are ones no
machine can miss (a second for one kernel dispatch), and speed comparisons live in benchmarks/bench_measure.py. What
each benchmark counts (bytes moved, FLOPs, arithmetic intensity) is checked against a hand derivation. The result is
calibrated, written as a hardware file and loaded back."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

import rooflm
from rooflm.measure.bench import Plan, measure_machine
from rooflm.measure.calibrate import calibrate
from rooflm.measure.hwfile import write_hardware_file
from rooflm.measure.machine import describe_machine
from rooflm.measure.results import Measurements

MiB = 2**20
# A physical bound no single CPU socket's DRAM reaches (DDR5 12-channel ≈ 0.46 TB/s).
MAX_CPU_BANDWIDTH = 1e12


# Built once per run: conftest.WORKER_UNITS sends this module's tests to one xdist worker.
@pytest.fixture(scope="module")
def measured(torch: Any) -> Measurements:
    plan = Plan(device="cpu", bandwidth_bytes=(64 * MiB,), matmul_size=256, matmul_dtypes=("fp32", "bf16"),
                curve_dtypes=("bf16",), curve_m=(1, 256), layer=(256, 512), pool_bytes=64 * MiB, repeats=3,
                quick=True, eager_layers=(1, 2), dispatch_inner=20, kernel_rows=64, quant_schemes=("bf16", "w8a16", "w4a16"),
                quant_m=(1, 8))
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
    # STREAM's convention over three 64 MiB fp32 arrays: read touches one array, copy two, triad (a = b + s·c) three.
    moved = {s.pattern: s.bytes_moved for s in measured.bandwidth}
    assert moved == {"read": 64 * MiB, "copy": 2 * 64 * MiB, "triad": 3 * 64 * MiB}
    for s in measured.bandwidth:
        assert math.isfinite(s.best_bytes_per_s)
        assert 0 < s.median_bytes_per_s <= s.best_bytes_per_s < MAX_CPU_BANDWIDTH


def test_matmuls_and_overheads_are_positive(measured: Measurements) -> None:
    assert {s.dtype for s in measured.matmul} == {"fp32", "bf16"}
    for s in measured.matmul:
        # A 256³ matmul is 2 * 256^3 = 33,554,432 FLOPs.
        assert s.flops == 2 * 256**3
        assert 0 < s.median_flops_per_s < math.inf
    # One dispatch takes microseconds; a second is a bound no loaded machine reaches (the old 10 ms was missed).
    assert 0 < measured.dispatch.median_s < 1.0
    assert [s.layers for s in measured.eager_steps] == [1, 2]
    assert all(0 < s.run.median_s < 60.0 for s in measured.eager_steps)


def test_gemm_curve_counts_the_layer_work(measured: Measurements) -> None:
    # The layer (hidden 256, intermediate 512) has q, k, v, o, gate, up, down of (K, N) = (256, 256), (256, 64) twice,
    # (256, 256), (256, 512) twice, (512, 256): sum K·N = 557,056 weights and sum (K + N) = 3,968.
    # M = 1, bf16: 2 * 557,056 FLOPs over 2 * (557,056 + 3,968) B = 1,114,112 / 1,122,048 = 0.99293 FLOP/B.
    # M = 256: 2 * 256 * 557,056 = 285,212,672 FLOPs over 2 * 557,056 + 2 * 256 * 3,968 = 3,145,728 B = 272/3.
    # (Whether M = 256 also runs faster is a speed question: benchmarks/bench_measure.py.)
    by_m = {p.m: p for p in measured.curve}
    assert by_m[1].flops == 1_114_112 and by_m[1].bytes == 1_122_048
    assert by_m[1].arithmetic_intensity == pytest.approx(0.99293, rel=1e-5)
    assert by_m[256].flops == 285_212_672 and by_m[256].bytes == 3_145_728
    assert by_m[256].arithmetic_intensity == pytest.approx(272 / 3)
    assert all(0 < p.best_flops_per_s < math.inf for p in measured.curve)


def test_quantized_curve_counts_the_weights_and_scales(measured: Measurements) -> None:
    # The same layer's 557,056 weights (sum N = 1,920). int8: 1 byte each + a bf16 scale per output channel:
    # 557,056 + 2 · 1,920 = 560,896 B. int4: half a byte each + a bf16 scale and zero per group of 128 along K:
    # 278,528 + 4 · (2·256 + 2·64 + 2·256 + 2·2·512 + 4·256) = 278,528 + 17,408 = 295,936 B.
    by = {(p.scheme, p.m): p for p in measured.quant_curve}
    assert set(by) == {(s, m) for s in ("bf16", "w8a16", "w4a16") for m in (1, 8)}
    assert by["bf16", 1].weight_bytes == 2 * 557_056
    assert by["w8a16", 1].weight_bytes == pytest.approx(560_896)
    assert by["w4a16", 1].weight_bytes == pytest.approx(295_936)
    # M = 8: activations stay bf16, 2 · 8 · 3,968 = 63,488 B on top; FLOPs as the bf16 layer's, 8 · 1,114,112.
    assert by["w4a16", 8].bytes == pytest.approx(295_936 + 63_488)
    assert by["w4a16", 8].flops == 8 * 1_114_112
    assert [by["bf16", 1].family, by["w8a16", 1].family, by["w4a16", 1].family] == ["dense", "w8a16", "w4a16"]
    assert all(0 < p.run.median_s < 60.0 for p in measured.quant_curve)


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
    assert set(hw.efficiency.kernel_families) == {"dense", "w8a16", "w4a16"}
    assert all(0 < c.memory.value <= 1 for c in hw.efficiency.kernel_families.values())
    report = rooflm.analyze("llama-3.1-8b", str(path), phase="decode", batch=1, context=128, efficiency="calibrated")
    assert report.totals.time_s > 0
