"""The fits of calibrate.py on synthetic measurements whose answers are worked out by hand."""

from __future__ import annotations

import math

import pytest

from rooflm.measure.calibrate import (
    bandwidth_roof,
    compute_curve,
    fit_overheads,
    isotonic,
    memory_by_kind,
    peak_roofs,
)
from rooflm.measure.configs import tiny_config
from rooflm.measure.machine import Machine
from rooflm.measure.results import (
    BandwidthSample,
    CurvePoint,
    EagerStep,
    KernelSample,
    MatmulSample,
    Measurements,
    Run,
)

MACHINE = Machine(device="cpu", device_name="Test CPU", vendor="Intel", hostname="test", date="2026-01-01",
                  torch_version="2.13.0", threads=2, cpu_count=2, memory_capacity_bytes=16e9)


def run(median: float, best: float | None = None) -> Run:
    return Run(median_s=median, min_s=best or median, max_s=median * 1.1, repeats=5)


def measurements(**kw: object) -> Measurements:
    base: dict[str, object] = {"machine": MACHINE, "quick": True, "bandwidth": [], "matmul": [], "curve": [],
                               "dispatch": run(1e-6), "eager_steps": []}
    return Measurements(**{**base, **kw})  # type: ignore[arg-type]


def test_isotonic_pools_a_dip_with_its_neighbours() -> None:
    # 0.2, 0.5, 0.3, 0.8: the dip 0.5 → 0.3 is pooled to their mean 0.4; the rest is already increasing.
    assert isotonic([0.2, 0.5, 0.3, 0.8]) == pytest.approx([0.2, 0.4, 0.4, 0.8])
    assert isotonic([0.1, 0.2, 0.3]) == [0.1, 0.2, 0.3]


def test_bandwidth_roof_is_the_fastest_run_at_the_largest_size() -> None:
    gib = 2**30
    m = measurements(bandwidth=[
        # 1 GiB read, best run 0.04 s → 26.8 GB/s; copy moves 2 GiB, best 0.1 s → 21.5 GB/s.
        BandwidthSample(pattern="read", array_bytes=gib, bytes_moved=gib, run=run(0.05, 0.04)),
        BandwidthSample(pattern="copy", array_bytes=gib, bytes_moved=2 * gib, run=run(0.11, 0.1)),
        # A small array (in cache) is faster but is not a main-memory figure: ignored.
        BandwidthSample(pattern="read", array_bytes=gib / 64, bytes_moved=gib / 64, run=run(1e-4)),
    ])
    roof, note = bandwidth_roof(m)
    assert roof == pytest.approx(gib / 0.04)
    assert "read" in note


def _point(m: int, median: float, best: float | None = None) -> CurvePoint:
    # One [1000, 1000] weight in 2-byte elements: 2e6 weight bytes, 2e6·m FLOPs.
    return CurvePoint(dtype="bf16", m=m, shapes=[(1000, 1000)], element_bytes=2.0, run=run(median, best))


def test_peak_is_the_fastest_run_of_matmul_or_curve() -> None:
    square = MatmulSample(dtype="bf16", m=100, k=100, n=100, run=run(2e-6, 1e-6))  # 2e6 FLOP / 1e-6 s = 2 TFLOP/s
    curve = [_point(1000, 1e-3, 0.8e-3)]  # 2e9 FLOP / 0.8e-3 s = 2.5 TFLOP/s: the peak
    peaks, _ = peak_roofs(measurements(matmul=[square], curve=curve))
    assert peaks["bf16"] == pytest.approx(2.5e12)


def test_compute_curve_holds_flat_where_memory_binds() -> None:
    # Achievable bandwidth 1e9 B/s; peak 1e12 FLOP/s. Bytes per point: 2e6 weights + 4000·m activations.
    # m=1: memory time 2.004e6/1e9 = 2.0 ms; measured 2.1 ms < 1.1 × 2.0 → memory-bound.
    # m=100: memory time 2.4 ms; measured 4 ms ≥ 2.64 ms → compute-bound, η = 2e8 FLOP / 4 ms / 1e12 = 0.05.
    # m=1000: memory 6 ms; measured 10 ms → η = 2e9 / 10 ms / 1e12 = 0.2.
    pts = [_point(1, 2.1e-3), _point(100, 4e-3), _point(1000, 10e-3)]
    fitted = compute_curve(pts, peak=1e12, bandwidth=1e9)
    assert fitted is not None
    assert fitted.rows == [1, 100, 1000]
    assert fitted.values == pytest.approx([0.05, 0.05, 0.2])
    assert fitted.first_compute_bound == 100


def test_no_curve_when_nothing_is_compute_bound() -> None:
    assert compute_curve([_point(1, 2.1e-3)], peak=1e12, bandwidth=1e9) is None


def _step(layers: int, seconds: float) -> EagerStep:
    return EagerStep(backend="test", layers=layers, config=tiny_config(layers), run=run(seconds))


def test_overhead_fit_recovers_per_operator_and_per_forward_costs() -> None:
    # rooflm counts 12 operators per dense layer + 3 per step (embedding, final norm, lm_head):
    # 15, 27, 51 for 1, 2, 4 layers. Times made from 30 µs per operator + 200 µs per forward.
    # An infinite bandwidth makes the subtracted roofline time of the tiny model zero.
    steps = [_step(n, 30e-6 * (12 * n + 3) + 200e-6) for n in (1, 2, 4)]
    per_op, per_forward = fit_overheads(steps, bandwidth=math.inf)
    assert per_op == pytest.approx(30e-6, rel=1e-6)
    assert per_forward == pytest.approx(200e-6, rel=1e-6)


def test_memory_fraction_per_kind_is_the_median_sample_over_the_roof() -> None:
    # Roof 10 GB/s. Norm: 1 MB in 1 ms = 1 GB/s → 0.1. Element-wise: 2, 4 and 30 GB/s → median 4 → 0.4
    # (30 GB/s, a kernel running from cache, would be capped at 1 but is not the median).
    def k(kind: str, gbps: float) -> KernelSample:
        return KernelSample(kind=kind, name=f"{kind}-{gbps}", bytes=gbps * 1e6, run=run(1e-3))

    m = measurements(kernels=[k("norm", 1), k("elementwise", 2), k("elementwise", 4), k("elementwise", 30)])
    values, _ = memory_by_kind(m, roof=10e9)
    assert values == pytest.approx({"norm": 0.1, "elementwise": 0.4})
