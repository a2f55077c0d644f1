import numpy as np

import rooflm


def test_issue_sweep_returns_every_point() -> None:
    # 4096 batches x 3 contexts = 12,288 points.
    s = rooflm.sweep("llama-3.1-8b", "h100-sxm", batch=range(1, 4097), context=[128, 1024, 8192])
    assert len(s) == 12_288
    assert len(s.points()) == 12_288


# Llama-3.1-8B bf16 on H100 SXM (3.35 TB/s, 989.4 TFLOP/s), ideal mode, by hand. A decode step of B sequences reads
# every weight but the embedding table (of which one row per token): 2 * (8,030,261,248 − 525,336,576) =
# 15,009,849,344 B, and B * context * 131,072 B of KV (2 * 32 layers * 8 heads * 128 * 2 B per token).
# Activations, norms and the embedding rows add < 0.2% at B ≤ 2 (2 * 2,360,576 B per token through the GEMMs alone).
WEIGHT_BYTES = 15_009_849_344
KV_PER_TOKEN = 131_072


def _decode_by_hand(batch: int, context: int) -> float:
    return (WEIGHT_BYTES + batch * context * KV_PER_TOKEN) / 3.35e12


def test_decode_points_equal_the_weight_and_kv_reads() -> None:
    s = rooflm.sweep("llama-3.1-8b", "h100-sxm", batch=[1, 2], context=[128, 4096])
    for p in s.points():
        expected = _decode_by_hand(p["batch"], p["context"])
        assert expected <= p["time_s"] <= expected * 1.002
        assert p["bound"] == "memory" and p["fits"]


def test_prefill_point_is_compute_bound_above_the_gemm_and_attention_flops() -> None:
    s = rooflm.sweep("llama-3.1-8b", "h100-sxm", phase="prefill", batch=[1], prompt_len=[8192])
    # GEMMs except lm_head (2 * 8192 tokens * 6,979,321,856 weights) and causal attention (QK and PV: 32 layers * 2 * 2
    # * 32 heads * 128 * 8192 * 8193 / 2) at 989.4 TFLOP/s: 133.4 ms; the element-wise operators can only add to it.
    flops = 2 * 8192 * 6_979_321_856 + 32 * 4 * 32 * 128 * 8192 * 8193 / 2
    (point,) = s.points()
    assert point["bound"] == "compute"
    assert flops / 989.4e12 <= point["time_s"] <= 1.2 * flops / 989.4e12


def test_e2e_point_is_the_prefill_then_one_decode_step_per_further_token() -> None:
    s = rooflm.sweep("llama-3.1-8b", "h100-sxm", phase="e2e", batch=[1], prompt_len=[256], gen_len=16)
    (point,) = s.points()
    # The prefill yields the first token; 15 decode steps follow over contexts 257 ... 271 (the KV grows a token per
    # step): 67.36 ms by hand, and the prefill reads the weights at least once.
    decode = sum(_decode_by_hand(1, c) for c in range(257, 272))
    assert decode <= point["time_s"] - point["ttft_s"] <= decode * 1.002
    assert point["ttft_s"] >= WEIGHT_BYTES / 3.35e12


def test_decode_turns_compute_bound_past_the_critical_batch() -> None:
    s = rooflm.sweep("llama-3.1-8b", "h100-sxm", batch=[1, 64, 1024, 4096], context=[128])
    assert list(s.columns["bound"]) == ["memory", "memory", "compute", "compute"]
    ai = s.columns["arithmetic_intensity"]
    assert np.all(np.diff(ai) > 0)


def test_csv_has_a_header_and_one_row_per_point() -> None:
    s = rooflm.sweep("llama-3.1-8b", "h100-sxm", batch=[1, 2], context=[128, 256])
    lines = s.to_csv().strip().splitlines()
    assert lines[0].startswith("batch,context,time_s")
    assert len(lines) == 5
