"""A device's own kernel families (dense, w8a16, w4a16 over M), fitted from synthetic layer timings worked out by
hand, written into the measured hardware file, read back and used by the calibrated mode."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rooflm
from rooflm.core.roofline import efficiency_for, time_op
from rooflm.measure.calibrate import Calibration, kernel_families, kernel_family_curve
from rooflm.measure.hwfile import hardware_toml, write_hardware_file
from rooflm.measure.machine import Machine
from rooflm.measure.results import CurvePoint, Measurements, Run
from rooflm.ops import gemm
from rooflm.ops.cost import Op
from rooflm.specs.hardware import HardwareSpec
from rooflm.specs.kernels import KernelCurve, kernel_family
from rooflm.specs.quant import load_scheme

MACHINE = Machine(device="cpu", device_name="Test CPU", vendor="Intel", hostname="box", date="2026-01-01",
                  torch_version="2.13.0", threads=2, cpu_count=2, memory_capacity_bytes=16e9,
                  caches_bytes={"l2": 2**21, "l3": 2**25})
ROOF, PEAK = 10e9, 100e9  # the machine's streaming roof (bytes/s) and bf16 peak (FLOP/s)


def _run(median: float) -> Run:
    return Run(median_s=median, min_s=median, max_s=median, repeats=5)


def _int8(m: int, median: float) -> CurvePoint:
    # One [K=1000, N=1000] weight at 1 byte per weight (the scales left out to keep the arithmetic short):
    # 1e6 weight bytes + (1000 + 1000)·2·m activation bytes; 2e6·m FLOPs.
    return CurvePoint(dtype="bf16", m=m, shapes=[(1000, 1000)], element_bytes=2, run=_run(median), scheme="w8a16",
                      weight_element_bytes=1.0)


# M=1: 1.004e6 bytes in 2e-4 s = 5.02 GB/s → memory 0.502 of the 10 GB/s roof.
# M=64: 1.28e8 FLOPs in 6.4e-3 s = 20 GFLOP/s → 0.2 of the peak; the stream alone would take 1.256e6 / 5.02e9 =
#   0.25 ms, 1/25 of the time: compute binds.
# M=1024: 2.048e9 FLOPs in 0.1 s = 20.48 GFLOP/s → 0.2048.
INT8 = [_int8(1, 2e-4), _int8(64, 6.4e-3), _int8(1024, 0.1)]


def test_family_from_synthetic_timings_has_the_hand_values() -> None:
    c = kernel_family_curve(INT8, PEAK, ROOF, "synthetic")
    assert c.memory.value == pytest.approx(0.502)
    assert c.fill.value == 0.0
    assert c.compute is not None
    assert c.compute.rows == [1, 64, 1024]
    # Held flat below the first compute-bound M (64) at its value.
    assert c.compute.value == pytest.approx([0.2, 0.2, 0.2048])


def _hardware(families: dict[str, KernelCurve]) -> HardwareSpec:
    """A CPU whose roofs are ROOF and PEAK (ideal mode), with the given families of its own."""
    cal = Calibration(
        memory_bandwidth=ROOF, bandwidth_note="read", peak_flops={"fp32": PEAK / 2, "bf16": PEAK},
        peak_notes={"fp32": "square", "bf16": "square"}, memory_efficiency=0.9, memory_efficiency_note="gemv",
        compute_efficiency={"fp32": 0.9, "bf16": 0.9, "default": 0.9}, compute_curve={}, curve_notes={},
        dispatch_overhead_s=1e-6, op_overhead_s=5e-6, step_overhead_s=0.0, overhead_note="tiny decoder",
        kernel_families=families)
    return HardwareSpec.model_validate(tomllib.loads(hardware_toml(cal, MACHINE)))


def _op(m: float, scheme: str) -> Op:
    q = load_scheme(scheme)
    cost = gemm.linear(m, 1000, 1000, weight_bytes_per_el=q.weight_bytes_per_element(1000), in_bytes=2, out_bytes=2)
    return Op(name="gemm", kind="gemm", op_class="weight_gemm", count=1, cost=cost, compute_dtype="bf16",
              weight_shape=(1000, 1000), family=kernel_family(q))


def test_roofline_times_a_gemm_on_the_files_own_family() -> None:
    hw = _hardware({"w8a16": kernel_family_curve(INT8, PEAK, ROOF, "synthetic")})
    eff = efficiency_for(hw, "calibrated")
    assert "w8a16" in eff.kernels
    assert eff.sources["kernels.measured.w8a16.memory"] == "synthetic"
    # M=1024: 2.048e9 FLOPs at 0.2048 of 100 GFLOP/s = 0.1 s, the measured time, plus the 5 µs operator overhead.
    assert float(time_op(_op(1024, "w8a16"), hw, eff).time_s) == pytest.approx(0.1 + 5e-6, rel=1e-6)


def test_roofline_keeps_the_generic_fractions_without_families() -> None:
    hw = _hardware({})
    eff = efficiency_for(hw, "calibrated")
    assert eff.kernels == {}
    # The flat bf16 fraction 0.9: 2.048e9 / (100e9 · 0.9) s, as before families existed.
    t = time_op(_op(1024, "w8a16"), hw, eff)
    assert float(t.compute_s) >= 2.048e9 / (PEAK * 0.9)
    assert float(t.time_s) < 0.05


def test_catalog_file_with_a_class_takes_its_own_families_first() -> None:
    h100 = rooflm.load_hardware("h100-sxm")
    own = kernel_family_curve(INT8, PEAK, ROOF, "synthetic")
    mine = h100.model_copy(update={"efficiency": h100.efficiency.model_copy(update={"kernel_families": {"w8a16": own}})})
    generic, measured = efficiency_for(h100, "calibrated").kernels, efficiency_for(mine, "calibrated").kernels
    assert measured["w8a16"] == own != generic["w8a16"]
    assert measured["dense"] == generic["dense"]  # the class's other families stay


def _measured(tmp_path: Path) -> HardwareSpec:
    bf16 = [CurvePoint(dtype="bf16", m=m, shapes=[(1000, 1000)], element_bytes=2, run=_run(t))
            # M=1: 2.004e6 bytes in 2.5e-4 s (8 GB/s); M=64, 1024: 50 and 51.2 GFLOP/s.
            for m, t in ((1, 2.5e-4), (64, 2.56e-3), (1024, 0.04))]
    # Timed beside the int8 layer on one thread, both at half the bf16 curve's times: the int8 / bf16 ratios applied to
    # the bf16 curve give back INT8's times, so the family keeps INT8's hand values.
    half = [p.model_copy(update={"scheme": "bf16", "run": _run(p.run.median_s / 2)}) for p in bf16]
    int8 = [p.model_copy(update={"run": _run(p.run.median_s / 2)}) for p in INT8]
    meas = Measurements(machine=MACHINE, quick=True, bandwidth=[], matmul=[], curve=bf16, dispatch=_run(1e-6),
                        eager_steps=[], quant_curve=half + int8)
    families = kernel_families(meas, ROOF, {"bf16": PEAK})
    cal = _hardware(families)  # checks the families load
    assert set(cal.efficiency.kernel_families) == {"dense", "w8a16"}
    c = Calibration(
        memory_bandwidth=ROOF, bandwidth_note="read", peak_flops={"fp32": PEAK / 2, "bf16": PEAK},
        peak_notes={"fp32": "square", "bf16": "square"}, memory_efficiency=0.8, memory_efficiency_note="gemv",
        compute_efficiency={"bf16": 0.5, "default": 0.5}, compute_curve={}, curve_notes={}, dispatch_overhead_s=1e-6,
        op_overhead_s=5e-6, step_overhead_s=0.0, overhead_note="tiny decoder", kernel_families=families)
    path = tmp_path / "measured.toml"
    write_hardware_file(path, c, meas)
    return rooflm.load_hardware(str(path))


def test_hardware_file_round_trips_the_families(tmp_path: Path) -> None:
    hw = _measured(tmp_path)
    fam = hw.efficiency.kernel_families
    # dense: 2.004e6 / 2.5e-4 = 8.016 GB/s → 0.8016; compute 0.5 (held flat below 64), 0.512.
    assert fam["dense"].memory.value == pytest.approx(0.8016, rel=1e-5)
    assert fam["dense"].compute is not None and fam["dense"].compute.value == pytest.approx([0.5, 0.5, 0.512])
    assert fam["w8a16"].memory.value == pytest.approx(0.502, rel=1e-5)
    assert fam["w8a16"].compute is not None and fam["w8a16"].compute.value == pytest.approx([0.2, 0.2, 0.2048])
    assert fam["w8a16"].compute.rows == [1, 64, 1024]
    assert "measured by rooflm measure on 2026-01-01" in fam["w8a16"].memory.source
    assert "w8a16 / bf16 time ratios on one thread" in fam["w8a16"].memory.source


def test_quantized_family_is_its_ratio_to_bf16_on_the_bf16_curve() -> None:
    # bf16 curve: 2.5e-4 s at M=1. Beside it on one thread: bf16 1e-4 s, int8 4e-5 s (0.4 of bf16). The int8 point
    # becomes 0.4 · 2.5e-4 = 1e-4 s: 1.004e6 bytes / 1e-4 s = 10.04 GB/s → memory capped at 1 of the 10 GB/s roof;
    # at 5e-5 s beside (0.5 of bf16) it is 1.25e-4 s: 8.032 GB/s → 0.8032.
    dense = CurvePoint(dtype="bf16", m=1, shapes=[(1000, 1000)], element_bytes=2, run=_run(2.5e-4))
    ref = dense.model_copy(update={"scheme": "bf16", "run": _run(1e-4)})
    for beside, expected in ((4e-5, 1.0), (5e-5, 0.8032)):
        meas = Measurements(machine=MACHINE, quick=True, bandwidth=[], matmul=[], curve=[dense], dispatch=_run(1e-6),
                            eager_steps=[], quant_curve=[ref, _int8(1, beside)])
        assert kernel_families(meas, ROOF, {"bf16": PEAK})["w8a16"].memory.value == pytest.approx(expected)


def test_unknown_family_in_a_hardware_file_is_refused(tmp_path: Path) -> None:
    own = kernel_family_curve(INT8, PEAK, ROOF, "synthetic")
    with pytest.raises(ValueError, match="unknown kernel family"):
        _hardware({"w3a16": own})


@settings(max_examples=25, deadline=None)
@given(batch=st.sampled_from([1, 3, 16, 64, 200, 1024]), quant=st.sampled_from(["bf16", "w8a16", "w4a16"]),
       phase=st.sampled_from(["decode", "prefill"]))
def test_calibrated_is_never_below_ideal_with_measured_families(tmp_path_factory: pytest.TempPathFactory,
                                                                batch: int, quant: str, phase: str) -> None:
    hw = _measured(tmp_path_factory.mktemp("hw"))
    kw = {"batch": batch, "quant": quant, "phase": phase, "context": 256, "prompt_len": 64}
    ideal = rooflm.analyze("llama-3.1-8b", hw, efficiency="ideal", **kw)
    calibrated = rooflm.analyze("llama-3.1-8b", hw, efficiency="calibrated", **kw)
    assert calibrated.totals.time_s >= ideal.totals.time_s
    for a, b in zip(calibrated.operators, ideal.operators, strict=True):
        assert a.time_s >= b.time_s * (1 - 1e-12), a.name
    assert np.isfinite(calibrated.totals.time_s)
