"""Speed checks of `rooflm measure`'s microbenchmarks on this machine, kept out of the test suite because a shared
machine can deschedule any run: the GEMM curve gains throughput with M (at M = 1 each bf16 weight is used once,
≈ 1 FLOP/B; at M = 256 it is reused 256 times, 90.7 FLOP/B), and one kernel dispatch costs well under 10 ms.

    python benchmarks/bench_measure.py
"""

from __future__ import annotations

from rooflm.measure.bench import Plan, measure_machine
from rooflm.measure.machine import describe_machine

MiB = 2**20


def main() -> None:
    plan = Plan(device="cpu", bandwidth_bytes=(64 * MiB,), matmul_size=256, matmul_dtypes=("bf16",),
                curve_dtypes=("bf16",), curve_m=(1, 256), layer=(256, 512), pool_bytes=64 * MiB, repeats=5,
                quick=True, eager_layers=(1,), dispatch_inner=20, kernel_rows=0)
    m = measure_machine(describe_machine("cpu"), plan)
    by_m = {p.m: p for p in m.curve}
    gain = by_m[256].best_flops_per_s / by_m[1].best_flops_per_s
    print(f"GEMM curve bf16: M=1 {by_m[1].best_flops_per_s / 1e9:.2f} GFLOP/s, "
          f"M=256 {by_m[256].best_flops_per_s / 1e9:.2f} GFLOP/s ({gain:.1f}x)")
    print(f"dispatch: {m.dispatch.median_s * 1e6:.1f} us (median)")
    assert gain > 1, "the GEMM curve should gain throughput with M"
    assert m.dispatch.median_s < 1e-2, "one dispatch should cost well under 10 ms"


if __name__ == "__main__":
    main()
