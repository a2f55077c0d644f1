"""roofline.time_on_kernel_curve: an operator timed on a measured kernel family, against hand arithmetic.

The family here is made up (memory 0.5, fill 10 µs per kernel, compute 0.25 at every M) so that each term of the
formula shows; the device is h100-sxm as data/hardware/h100-sxm.toml has it: HBM 3.35e12 B/s, bf16 989.4e12 FLOP/s,
fp32 66.9e12 FLOP/s (the vector units: 33.45e12 instructions/s, an FMA counting 2 FLOPs)."""

from __future__ import annotations

import pytest

from rooflm.ops.cost import Cost, Op
from rooflm.roofline import Efficiency, time_on_kernel_curve
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


def test_attention_on_a_curve_keeps_its_kv_dequantization_on_the_vector_units() -> None:
    # 1e12 FLOPs at 989.4e12 x 0.25 = 4042.85 us on the tensor cores, plus 1e10 conversions of a quantized KV cache
    # at 33.45e12 x 0.5 = 597.91 us on the vector units, in the same kernel: 4640.76 us.
    op = Op("attn", "attention", "attention", 1, Cost(flops=1e12, kv_bytes=1e6, vector_ops=1e10), "bf16",
            gemm_m=1.0, family="fam")
    t = time_on_kernel_curve(op, H100, EFF, CURVE)
    assert float(t.compute_s) == pytest.approx(4640.76e-6, rel=1e-5)
