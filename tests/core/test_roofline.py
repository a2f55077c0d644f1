"""roofline: an operator timed on a measured kernel family, its rows, launches and work, against hand arithmetic.

The family here is made up (memory 0.5, fill 10 µs per kernel, compute 0.25 at every M) so that each term of the
formula shows; the device is h100-sxm as data/hardware/h100-sxm.toml has it: HBM 3.35e12 B/s, bf16 989.4e12 FLOP/s,
fp32 66.9e12 FLOP/s (the vector units: 33.45e12 instructions/s, an FMA counting 2 FLOPs)."""

from __future__ import annotations

import numpy as np
import pytest

from rooflm.core.roofline import Efficiency, gemm_rows_per_instance, has_work, launch_overhead, time_on_kernel_curve
from rooflm.ops.cost import Cost, Op
from rooflm.specs.figures import Figure, GemmCurve
from rooflm.specs.hardware import load_hardware
from rooflm.specs.kernels import KernelCurve

H100 = load_hardware("h100-sxm")
CURVE = KernelCurve(memory=Figure(value=0.5), fill=Figure(value=1e-5), compute=GemmCurve(rows=[1.0], value=[0.25]))
# fp32 at half its peak: the fraction vector_time divides by.
EFF = Efficiency("calibrated", 0.8, {"default": 0.8, "fp32": 0.5}, 0.0, kernels={"fam": CURVE})


def test_each_kernel_of_each_instance_pays_the_fill() -> None:
    # 2 instances of 3 kernels each, a [1, 10000] x [10000, 10000] bf16 GEMM: 2e8 B of weights per instance.
    # Memory: 2 x 2e8 B / (3.35e12 x 0.5) = 238.806 us, plus 2 x 3 x 10 us of fill = 298.806 us (the caches' times,
    # a few tens of us, stay below it). Compute: 2 x 2e8 FLOP / (989.4e12 x 0.25) = 1.617 us.
    op = Op("g", "gemm", "weight_gemm", 2, Cost(flops=2e8, weight_bytes=2e8), "bf16", weight_shape=(10000, 10000),
            kernels=3, gemm_m=1.0, family="fam")
    t = time_on_kernel_curve(op, H100, EFF, CURVE)
    assert float(t.memory_s) == pytest.approx(238.806e-6 + 60e-6, rel=1e-5)
    assert float(t.compute_s) == pytest.approx(1.617e-6, rel=1e-3)
    assert float(t.bytes_by_level["dram"]) == 4e8  # both instances' weights


def test_attention_on_a_curve_keeps_its_kv_dequantization_on_the_vector_units() -> None:
    # 1e12 FLOPs at 989.4e12 x 0.25 = 4042.85 us on the tensor cores, plus 1e10 conversions of a quantized KV cache
    # at 33.45e12 x 0.5 = 597.91 us on the vector units, in the same kernel: 4640.76 us.
    op = Op("attn", "attention", "attention", 1, Cost(flops=1e12, kv_bytes=1e6, vector_ops=1e10), "bf16",
            gemm_m=1.0, family="fam")
    t = time_on_kernel_curve(op, H100, EFF, CURVE)
    assert float(t.compute_s) == pytest.approx(4640.76e-6, rel=1e-5)


def test_a_gemm_without_rows_takes_them_from_its_flops() -> None:
    # 2·M·K·N FLOPs on a [K, N] = [100, 200] weight: M = 2,560,000 / (2 · 100 · 200) = 64 rows.
    op = Op("g", "gemm", "attention", 1, Cost(flops=2 * 64 * 100 * 200), "bf16", weight_shape=(100, 200))
    assert float(gemm_rows_per_instance(op)) == 64.0


def test_each_kernel_of_each_instance_pays_its_launch() -> None:
    # 2 instances of 3 kernels at 4 us each: 24 us.
    op = Op("g", "gemm", "weight_gemm", 2, Cost(flops=1.0), "bf16", kernels=3)
    eff = Efficiency("calibrated", 0.8, {"default": 0.8}, 4e-6)
    assert float(launch_overhead(op, eff)) == pytest.approx(24e-6)


@pytest.mark.parametrize("work", ["vector_ops", "comm_bytes", "flops", "kv_bytes"])
def test_an_operator_works_where_any_of_its_amounts_does(work: str) -> None:
    # A sweep of two points, the operator idle at the first and busy at the second in this one amount only (a
    # collective moves comm bytes alone; a conversion pass, vector ops alone): it launches at the second only.
    op = Op("x", "elementwise", "other", 1, Cost(**{work: np.array([0.0, 5.0])}), "bf16")
    assert has_work(op).tolist() == [0.0, 1.0]
