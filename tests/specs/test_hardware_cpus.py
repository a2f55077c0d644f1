"""The desktop and server CPUs: they load, every figure is sourced, and each peak is its note's derivation."""

import re

import pytest

from rooflm.specs.hardware import load_hardware

# Derivations by hand, from the vendors' product pages (cores, base clock) and the cores' FLOP per cycle:
# Ryzen 7 5800X: 8 cores × 32 FP32 FLOP/cycle (Zen 3: 2 × 256-bit FMA) × 3.8 GHz = 972.8 GFLOP/s; bf16 on the same
#   pipes (no AVX512_BF16: converted to fp32); 2 × DDR4-3200 × 8 B = 51.2 GB/s.
# EPYC 9755: 128 cores × 64 FP32 (Zen 5: 2 × 512-bit FMA) × 2.7 GHz = 22.1184 TFLOP/s, × 2 for bf16, × 4 for int8
#   (VNNI); 12 × DDR5-6000 × 8 B = 576 GB/s.
EXPECTED = {
    "ryzen-5800x": ({"fp32": 8 * 32 * 3.8e9, "bf16": 8 * 32 * 3.8e9}, 2 * 3200e6 * 8),
    "epyc-9755": ({"fp32": 128 * 64 * 2.7e9, "bf16": 128 * 128 * 2.7e9, "int8": 128 * 256 * 2.7e9}, 12 * 6000e6 * 8),
}
NOTE = re.compile(r"derived: ([\d.]+) cores x ([\d.]+) (?:\w+ )?(?:FLOP|ops)/cycle.*? x ([\d.]+) GHz")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_peaks_are_the_derivation(name: str) -> None:
    hw = load_hardware(name)
    assert hw.kind == "cpu"
    peaks, bandwidth = EXPECTED[name]
    assert {d: f.value for d, f in hw.peak_flops.items()} == pytest.approx(peaks)
    assert hw.memory_bandwidth.value == pytest.approx(bandwidth)
    for dtype, fig in hw.peak_flops.items():
        # The note carries the derivation the value must equal: cores × FLOP per cycle × clock.
        m = NOTE.search(fig.note or "")
        assert m, f"{name} {dtype}: the note does not derive the peak"
        cores, per_cycle, ghz = (float(g) for g in m.groups())
        assert fig.value == pytest.approx(cores * per_cycle * ghz * 1e9), f"{name} {dtype}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_figure_is_sourced(name: str) -> None:
    hw = load_hardware(name)
    figures = [*hw.peak_flops.values(), hw.memory_bandwidth, hw.memory_capacity, *hw.caches.values(),
               hw.kernel_launch_overhead, hw.efficiency.memory, hw.efficiency.kernel_overhead,
               *hw.efficiency.compute.values()]
    assert all(f.source and f.source != "user-supplied" for f in figures)


def test_desktop_ridge_is_low() -> None:
    # 972.8 GFLOP/s / 51.2 GB/s = 19 FLOP/B: a 128-token prefill (≈ 109 FLOP/B) is compute-bound on it.
    assert load_hardware("5800x").ridge("bf16") == pytest.approx(19.0)
