import pytest

import rooflm
from rooflm.specs.quant import load_scheme
from rooflm.specs.quant_costs import costs_for, weight_conversion


@pytest.mark.parametrize(("scheme", "conversion"), [("bf16", None), ("fp8", None), ("fp8-block", None), ("int8", None),
                                                    ("fp4", None), ("w4a16", "int4->bf16"), ("w4a8", "int4->int8"),
                                                    ("w8a16", "int8->bf16"), ("mxfp4", "fp4->bf16")])
def test_which_schemes_dequantize_in_the_main_loop(scheme: str, conversion: str | None) -> None:
    assert weight_conversion(load_scheme(scheme)) == conversion


def test_ideal_mode_hides_every_in_kernel_cost() -> None:
    assert not costs_for(load_scheme("w4a8", "int4"), "ideal").any


def test_calibrated_mode_counts_them_and_overrides_win() -> None:
    c = costs_for(load_scheme("w4a8", "fp8"), "calibrated")
    assert c.weight_ops_per_element == 1.0 and c.weight_tile_m == 128
    assert c.activation_quant and c.kv_ops_per_element == 1.0
    assert len(c.sources) == 3
    o = costs_for(load_scheme("w4a8"), "calibrated", dequant_ops=0.5, act_quant=False)
    assert o.weight_ops_per_element == 0.5 and not o.activation_quant
    with pytest.raises(rooflm.InvalidInputError):
        costs_for(load_scheme("w4a8"), "calibrated", dequant_ops=-1)


def test_dequant_work_is_per_weight_per_m_tile_at_the_vector_rate() -> None:
    # W4A16 q/k/v projection of Llama-3.1-8B (K = 4096, N = 6144) at M = 65 tokens: ⌈65/64⌉ = 2
    # passes over 25,165,824 weights at 1 instruction each, per layer, 32 layers. On a device without measured
    # kernel families (L40S; H100's Marlin curve already includes the conversion, tests/core/test_kernel_curves.py).
    # The ideal run is given the efficiencies the calibrated one uses on the L40S (data/hardware/l40s.toml: memory
    # 0.81, bf16 compute 0.80, 4 us per kernel), so the two differ only by the conversion. Its rate: one instruction
    # per weight (Marlin, arXiv:2408.11743: ~1 lop3/prmt per two values plus a half2 FMA per two) at the CUDA-core
    # rate, the L40S datasheet's 91.6 TFLOP/s fp32 / 2 FLOPs per FMA, times the default compute fraction 0.75.
    r = rooflm.analyze("llama-3.1-8b", "l40s", batch=65, context=128, quant="w4a16", efficiency="calibrated")
    ideal = rooflm.analyze("llama-3.1-8b", "l40s", batch=65, context=128, quant="w4a16", efficiency="ideal",
                           eta_memory=0.81, eta_compute=0.80, kernel_overhead_s=4e-6)
    qkv = next(o for o in r.operators if o.name == "qkv_proj")
    qkv_ideal = next(o for o in ideal.operators if o.name == "qkv_proj")
    vector_s = 32 * 2 * 4096 * 6144 / (91.6e12 / 2 * 0.75)  # L40S fp32 CUDA-core rate; default compute fraction
    assert qkv.compute_time_s == pytest.approx(qkv_ideal.compute_time_s + vector_s, rel=1e-9)


def test_block_scaled_fp8_rescales_partial_sums_per_k_block() -> None:
    # fp8 with 128x128 weight blocks: weight bytes 1 + 4/16384 per element; in calibrated mode one FMA per
    # output element per 128-deep K block. Llama-3.1-8B gate_up (K = 4096, N = 28672) at M = 256, 32 layers:
    # 256 * 28672 * 32 blocks * 32 layers instructions at 91.6e12 / 2 * 0.75 per second (L40S: a device
    # without measured kernel families, where DeepGEMM's measured times would already include it).
    s = load_scheme("fp8-block")
    assert s.weight_bytes_per_element(4096) == pytest.approx(1 + 4 / 16384)
    kw = {"batch": 256, "context": 128, "quant": "fp8-block"}
    cal = rooflm.analyze("llama-3.1-8b", "l40s", efficiency="calibrated", **kw)
    plain = rooflm.analyze("llama-3.1-8b", "l40s", efficiency="calibrated", batch=256, context=128, quant="fp8")
    gate = next(o for o in cal.operators if o.name == "gate_up_proj")
    gate_plain = next(o for o in plain.operators if o.name == "gate_up_proj")
    rescale_s = 256 * 28672 * 32 * 32 / (91.6e12 / 2 * 0.75)
    assert gate.compute_time_s == pytest.approx(gate_plain.compute_time_s + rescale_s, rel=1e-9)
