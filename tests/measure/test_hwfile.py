"""A measured hardware file round-trips through load_hardware, and the calibrated mode uses its curve and overheads."""

from __future__ import annotations

from pathlib import Path

import pytest

import rooflm
from rooflm.core.roofline import efficiency_for, time_op
from rooflm.measure.calibrate import Calibration
from rooflm.measure.hwfile import hardware_toml, raw_path, write_hardware_file
from rooflm.measure.machine import Machine
from rooflm.measure.results import Measurements, Run
from rooflm.ops import gemm
from rooflm.ops.cost import Cost, Op

MACHINE = Machine(device="cpu", device_name="Test CPU", vendor="Intel", hostname="box", date="2026-01-01",
                  torch_version="2.13.0", threads=2, cpu_count=2, memory_capacity_bytes=16e9,
                  caches_bytes={"l2": 2**21, "l3": 2**25})
CAL = Calibration(
    memory_bandwidth=30e9, bandwidth_note="read", peak_flops={"fp32": 0.2e12, "bf16": 2e12},
    peak_notes={"fp32": "square", "bf16": "curve"}, memory_efficiency=0.75, memory_efficiency_note="gemv",
    compute_efficiency={"fp32": 0.9, "bf16": 0.95, "default": 0.95},
    compute_curve={"bf16": ([1, 1000], [0.1, 0.5])}, curve_notes={"bf16": "fitted"},
    dispatch_overhead_s=1e-6, op_overhead_s=30e-6, step_overhead_s=200e-6, overhead_note="tiny decoder",
    memory_by_kind={"attention": 0.4}, memory_by_kind_notes={"attention": "sdpa"},
)


def _measurements() -> Measurements:
    r = Run(median_s=1.0, min_s=1.0, max_s=1.0, repeats=1)
    return Measurements(machine=MACHINE, quick=True, bandwidth=[], matmul=[], curve=[], dispatch=r, eager_steps=[])


@pytest.fixture()
def hw(tmp_path: Path) -> rooflm.HardwareSpec:
    path = tmp_path / "measured.toml"
    write_hardware_file(path, CAL, _measurements())
    assert raw_path(path).is_file()
    return rooflm.load_hardware(str(path))


def test_round_trip_keeps_every_figure(hw: rooflm.HardwareSpec) -> None:
    assert hw.name == "measured-cpu-2t"
    assert hw.kind == "cpu"
    assert hw.peak("bf16") == pytest.approx(2e12)
    assert hw.memory_bandwidth.value == pytest.approx(30e9)
    assert hw.memory_capacity.value == pytest.approx(16e9)
    assert hw.caches["l3"].value == pytest.approx(2**25)
    assert hw.efficiency.memory.value == pytest.approx(0.75)
    assert hw.efficiency.compute_curve["bf16"].rows == [1, 1000]
    assert hw.efficiency.kernel_overhead.value == pytest.approx(30e-6)
    # The embedding carries the per-forward cost on top of its own: 30 + 200 µs.
    assert hw.efficiency.kernel_overhead_by_kind["embedding"].value == pytest.approx(230e-6)
    # ridge = 2e12 / 30e9 ≈ 66.7 FLOP/byte
    assert hw.ridge("bf16") == pytest.approx(66.67, rel=1e-3)
    assert "measured by rooflm measure on 2026-01-01" in hw.peak_flops["bf16"].source
    assert "torch 2.13.0, 2 threads" in hw.peak_flops["bf16"].source


def test_calibrated_gemm_uses_the_curve_interpolated_in_log_m(hw: rooflm.HardwareSpec) -> None:
    # M = 100 sits 2/3 of the way from 1 to 1000 in log M: η = 0.1 + (0.5 − 0.1)·2/3 = 0.3667.
    k, n = 1000, 1000
    cost = gemm.linear(100.0, k, n, weight_bytes_per_el=2, in_bytes=2, out_bytes=2)
    op = Op(name="g", kind="gemm", op_class="weight_gemm", count=1, cost=cost, compute_dtype="bf16",
            weight_shape=(k, n))
    t = time_op(op, hw, efficiency_for(hw, "calibrated"))
    assert float(t.compute_s) == pytest.approx(2 * 100 * k * n / (2e12 * 0.36667), rel=1e-4)
    # bytes: 2e6 weights + 100·1000·2 in + 100·1000·2 out = 2.4e6, at 30e9 × 0.75
    assert float(t.memory_s) == pytest.approx(2.4e6 / 22.5e9)
    assert float(t.overhead_s) == pytest.approx(30e-6)
    # The ideal mode ignores all calibration: η = 1, no overhead.
    ideal = time_op(op, hw, efficiency_for(hw, "ideal"))
    assert float(ideal.compute_s) == pytest.approx(2 * 100 * k * n / 2e12)
    assert float(ideal.overhead_s) == 0.0


def test_attention_streams_at_its_own_fraction(hw: rooflm.HardwareSpec) -> None:
    # 1.2e6 bytes at 30 GB/s × 0.4 (attention's own fraction, not the flat 0.75) = 100 µs.
    op = Op(name="attention", kind="attention", op_class="attention", count=1, cost=Cost(kv_bytes=1.2e6),
            compute_dtype="bf16")
    assert float(time_op(op, hw, efficiency_for(hw, "calibrated")).memory_s) == pytest.approx(100e-6)
    # --eta-memory overrides every kind.
    assert float(time_op(op, hw, efficiency_for(hw, "calibrated", memory=0.5)).memory_s) == pytest.approx(80e-6)


def test_per_kind_overhead_and_overrides(hw: rooflm.HardwareSpec) -> None:
    emb = Op(name="embedding", kind="embedding", op_class="other", count=1, cost=Cost(weight_bytes=1.0),
             compute_dtype="bf16")
    assert float(time_op(emb, hw, efficiency_for(hw, "calibrated")).overhead_s) == pytest.approx(230e-6)
    # A user override is one flat figure for every kind, and a flat compute fraction drops the curve.
    eff = efficiency_for(hw, "calibrated", kernel_overhead_s=5e-6, compute=0.5)
    assert float(time_op(emb, hw, eff).overhead_s) == pytest.approx(5e-6)
    assert eff.compute_curve == {}


def test_analyze_accepts_the_measured_file(hw: rooflm.HardwareSpec) -> None:
    ideal = rooflm.analyze("llama-3.1-8b", hw, phase="decode", batch=1, context=512)
    calibrated = rooflm.analyze("llama-3.1-8b", hw, phase="decode", batch=1, context=512, efficiency="calibrated")
    assert ideal.totals.bound == "memory"
    # η_memory 0.75 and overheads only add time.
    assert calibrated.totals.time_s > ideal.totals.time_s / 0.75


def test_toml_rejects_a_non_toml_path(tmp_path: Path) -> None:
    with pytest.raises(rooflm.InvalidInputError):
        write_hardware_file(tmp_path / "x.txt", CAL, _measurements())


def test_toml_text_is_in_the_catalog_schema() -> None:
    text = hardware_toml(CAL, MACHINE, name="my-box")
    assert 'name = "my-box"' in text
    assert "[efficiency.compute_curve.bf16]" in text


@pytest.mark.parametrize(("table", "message"), [
    ("[efficiency.kernel_overhead_by_kind]\nlaunchpad = 1e-6\n", "unknown operator kind"),
    ("[efficiency.memory_by_kind]\nattention = 1.5\n", "(0, 1]"),
    ("[efficiency.compute_curve.bf16]\nrows = [8, 4]\nvalue = [0.5, 0.6]\n", "strictly increasing"),
    ("[efficiency.compute_curve.bf17]\nrows = [1]\nvalue = [0.5]\n", "unknown dtype"),
])
def test_optional_efficiency_tables_are_checked(tmp_path: Path, table: str, message: str) -> None:
    text = hardware_toml(CAL, MACHINE)
    # Drop the measured optional tables, then add one malformed table of the same kind.
    text = text.split("\n[efficiency.compute_curve.bf16]")[0] + "\n" + table
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(rooflm.InvalidInputError, match=message.replace("(", r"\(").replace("]", r"\]")):
        rooflm.load_hardware(str(path))
