"""Grouped (MoE) kernel curves of data/kernels.toml against the published fused_moe kernel timings they were fitted
to: vLLM's benchmarks/kernels/benchmark_moe.py times one whole fused_moe call (routing metadata, the two grouped
GEMMs, the activation) replayed from a CUDA graph, for a batch of tokens routed at random."""

from __future__ import annotations

import pytest

from rooflm.core.roofline import efficiency_for, time_op
from rooflm.ops import gemm, moe
from rooflm.ops.cost import Op
from rooflm.specs.hardware import HARDWARE_DIR, HardwareSpec, hardware_from_text, load_hardware
from rooflm.specs.kernels import kernel_family
from rooflm.specs.quant import load_scheme


def a100_pcie_40gb() -> HardwareSpec:
    """The A100 the Qwen3 fused_moe benchmark ran on: an A100-SXM file with the 40GB PCIe card's 1.555 TB/s
    (NVIDIA A100 datasheet, 40GB PCIe column)."""
    text = (HARDWARE_DIR / "a100-sxm.toml").read_text().replace("value = 2.039e12", "value = 1.555e12")
    return hardware_from_text(text, "a100-pcie-40gb (test)")


def fused_moe_time(hw: HardwareSpec, scheme: str, tokens: int, experts: int, n: int, k: int, top_k: int,
                   launched: int) -> float:
    """rooflm's time of one fused_moe call: the grouped gate_up ([k, 2n]) and down ([n, k]) GEMMs over the experts
    the tokens hit (uniform routing), without their launch, plus ``launched`` graph launches: the kernels of the call
    rooflm prices as operators of their own (top-k routing, gate_up, activation, down; fp8 adds two activation
    quantizations)."""
    q = load_scheme(scheme)
    p_pick = top_k / experts
    hit = float(moe.distinct_experts(tokens, experts, p_pick))
    per_expert = float(moe.tokens_per_expert(tokens, experts, p_pick))
    eff = efficiency_for(hw, "calibrated")
    total = 0.0
    for kk, nn in ((k, 2 * n), (n, k)):
        cost = gemm.linear(per_expert, kk, nn, weight_bytes_per_el=q.weight_bytes_per_element(kk),
                           in_bytes=q.act_bytes, out_bytes=2.0).scaled(hit)
        op = Op("g", "gemm", "expert", 1, cost, q.compute, (kk, nn), gemm_m=per_expert, instances=hit,
                family=kernel_family(q if not q.plain else None, grouped=True))
        t = time_op(op, hw, eff)
        total += float(t.time_s - t.overhead_s)
    assert hw.runtime is not None
    return total + launched * hw.runtime.graph_kernel_overhead.value


# vllm-project/vllm PR #24700 (H100), Mixtral-8x7B bf16 at TP2: E=8, N=7168 per rank, K=4096, top-2, tuned config.
MIXTRAL_H100_US = {1: 144.03, 4: 351.10, 8: 434.98, 64: 483.14}
# Same PR, Qwen3-30B-A3B fp8_w8a8 (per tensor) at TP1: E=128, N=768, K=2048, top-8, main-branch configs.
QWEN3_FP8_H100_US = {1: 44.54, 8: 129.77, 32: 238.37, 128: 273.72}
# sgl-project/sglang PR #6825 (= vllm-project/vllm PR #19049), A100-PCIE-40GB, Qwen3-30B-A3B bf16, default config.
QWEN3_BF16_A100_US = {1: 109.21, 2: 159.81, 8: 403.13, 16: 611.19, 64: 917.45}


@pytest.mark.parametrize("batch", sorted(MIXTRAL_H100_US))
def test_hopper_bf16_grouped_curve_reproduces_mixtral_fused_moe(batch: int) -> None:
    # e.g. batch 1: 2 experts × 3·7168·4096·2 B = 352.3 MB at 0.93 · 3.35 TB/s = 113.1 us, + 2 × 13 us fill
    # + 4 × 1.3 us launches = 144.3 us (published 144.03 us).
    t = fused_moe_time(load_hardware("h100-sxm"), "bf16", batch, 8, 7168, 4096, 2, launched=4)
    assert t == pytest.approx(MIXTRAL_H100_US[batch] * 1e-6, rel=0.05)


@pytest.mark.parametrize("batch", sorted(QWEN3_FP8_H100_US))
def test_hopper_fp8_grouped_curve_reproduces_qwen3_fused_moe(batch: int) -> None:
    # e.g. batch 1: 8 experts × 3·768·2048·1 B = 37.7 MB at 0.74 · 3.35 TB/s = 15.2 us, + 2 × 11 us fill
    # + 6 × 1.3 us launches = 45.0 us (published 44.54 us).
    t = fused_moe_time(load_hardware("h100-sxm"), "fp8", batch, 128, 768, 2048, 8, launched=6)
    assert t == pytest.approx(QWEN3_FP8_H100_US[batch] * 1e-6, rel=0.05)


@pytest.mark.parametrize("batch", sorted(QWEN3_BF16_A100_US))
def test_ampere_bf16_grouped_curve_reproduces_qwen3_fused_moe(batch: int) -> None:
    # e.g. batch 1: 8 experts × 3·768·2048·2 B = 75.5 MB at 0.89 · 1.555 TB/s = 54.6 us, + 2 × 25 us fill
    # + 4 × 1.3 us launches = 109.8 us (published 109.21 us). Before the grouped Ampere curve the experts fell back
    # to ampere.dense (0.73, 4 us fill): 66.5 + 8 + 5.2 = 80 us, 27% fast.
    t = fused_moe_time(a100_pcie_40gb(), "bf16", batch, 128, 768, 2048, 8, launched=4)
    # 7%: batch 4-8 sit a few % off the two-point line (random routing hits a varying number of experts).
    assert t == pytest.approx(QWEN3_BF16_A100_US[batch] * 1e-6, rel=0.07)


def test_one_token_per_expert_is_dominated_by_the_fixed_cost() -> None:
    """At one token (8 small experts) the call's fixed part (fill + launches) is over half its time on A100: why
    MoE decode at batch 1 is slower than its bytes say."""
    hw = a100_pcie_40gb()
    t = fused_moe_time(hw, "bf16", 1, 128, 768, 2048, 8, launched=4)
    fixed = 2 * 25e-6 + 4 * 1.3e-6
    assert fixed / t > 0.5


def h20() -> HardwareSpec:
    """The Hopper part the Marlin MoE sweep ran on: an H100 file with the H20's 4.0 TB/s (NVIDIA H20 product brief)."""
    text = (HARDWARE_DIR / "h100-sxm.toml").read_text().replace("value = 3.35e12", "value = 4.0e12")
    return hardware_from_text(text, "h20 (test)")


# flagos-ai/FlagGems PR #3609, vLLM fused_marlin_moe W4A16 on H20, DeepSeek-V3 shape: E=256, K=7168, N=2048, top-8.
MARLIN_MOE_H20_US = {1: 143.0, 16: 1395.0, 64: 2973.0}


@pytest.mark.parametrize("batch", sorted(MARLIN_MOE_H20_US))
def test_hopper_w4a16_grouped_curve_reproduces_marlin_moe(batch: int) -> None:
    # e.g. 1 token: 8 experts × 3·2048·7168 · 0.515625 B = 181.6 MB at 0.43 · 4.0 TB/s = 105.6 us, + 2 × 16 us fill
    # + 4 × 1.3 us launches = 142.8 us (published 143 us). Before: 0.55 and 4 us fill gave 96 us, 33% fast.
    t = fused_moe_time(h20(), "w4a16", batch, 256, 2048, 7168, 8, launched=4)
    assert t == pytest.approx(MARLIN_MOE_H20_US[batch] * 1e-6, rel=0.05)


def test_ep_with_fewer_sequences_than_replicas_routes_only_the_real_tokens() -> None:
    """Regression: under EP over data-parallel replicas an EP group routed dp × the busiest replica's
    tokens, so batch 1 on dp = ep = 8 routed 8 tokens. Qwen3-30B-A3B (128 experts, top-8, 48 layers, expert
    gate_up 2·768 × 2048 in bf16 = 6.29 MB): one token hits 8 experts over 8 devices, one per device, so a device's
    gate_up reads 48 × 6,291,456 B = 302.0 MB (was 51.6 experts hit → 6.45 per device, 1.95 GB). Batch 9 (replicas
    of 2 and 1): 9 tokens hit 128·(1 − (15/16)^9) = 56.4 experts, 7.05 per device → 2.13 GB."""
    import rooflm

    def gate_up_bytes(batch: int) -> float:
        r = rooflm.analyze("qwen3-30b-a3b", "h100-sxm", batch=batch, context=1024, dp=8, ep=8)
        return next(o.bytes for o in r.operators if o.name == "experts.gate_up_proj")

    weights_1 = 48 * 2 * 768 * 2048 * 2
    assert gate_up_bytes(1) == pytest.approx(weights_1, rel=0.01)  # + the one token's activations
    hit_9 = 128 * (1 - (15 / 16) ** 9)
    assert gate_up_bytes(9) == pytest.approx(hit_9 / 8 * weights_1, rel=0.01)
