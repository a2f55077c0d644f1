"""Operators of MoE, MLA and sliding-window models, and what parallel layouts add."""

import numpy as np
import pytest

import rooflm
from rooflm.ops.moe import distinct_experts


def _ops(report: rooflm.Report, prefix: str) -> list:
    return [o for o in report.operators if o.name.startswith(prefix)]


def _expert_weight_bytes(batch: int) -> float:
    r = rooflm.analyze("qwen3-30b-a3b", "h100-sxm", batch=batch, context=128)
    return sum(o.weight_bytes for o in _ops(r, "experts"))


def test_moe_weight_reads_grow_from_active_to_all_experts() -> None:
    # Qwen3-30B-A3B: 48 layers, 128 experts of 3 * 2048 * 768 bf16 weights = 9,437,184 B each.
    per_expert = 3 * 2048 * 768 * 2 * 48
    for batch in (1, 8, 64, 512, 4096):
        # The formula E(1 - (1 - k/E)^B), and a direct simulation of uniform top-8 routing.
        rng = np.random.default_rng(batch)
        picks = np.argsort(rng.random((200, batch, 128)), axis=2)[:, :, :8]
        simulated = np.mean([len(np.unique(p)) for p in picks])
        assert _expert_weight_bytes(batch) == pytest.approx(distinct_experts(batch, 128, 8 / 128) * per_expert)
        assert _expert_weight_bytes(batch) == pytest.approx(simulated * per_expert, rel=0.02)
    assert _expert_weight_bytes(1) == pytest.approx(8 * per_expert)
    assert _expert_weight_bytes(4096) == pytest.approx(128 * per_expert)


def test_expert_gemm_sees_tokens_times_k_over_distinct_experts() -> None:
    r = rooflm.analyze("qwen3-30b-a3b", "h100-sxm", batch=256, context=128)
    hit = distinct_experts(256, 128, 8 / 128)
    assert r.moe is not None
    assert r.moe.distinct_experts == pytest.approx(hit)
    assert r.moe.tokens_per_expert == pytest.approx(256 * 8 / hit)
    # The expert GEMMs' FLOPs do not depend on routing: 2 * T * k * 3 * h * I per layer.
    flops = sum(o.flops for o in _ops(r, "experts") if o.kind == "gemm")
    assert flops == pytest.approx(48 * 2 * 256 * 8 * 3 * 2048 * 768)


def test_mla_absorbed_decode_attention_is_far_denser_than_gqa() -> None:
    mla = rooflm.analyze("deepseek-v3", "h200", batch=64, context=8192, dp=8, ep=8)
    latent = next(o for o in mla.operators if o.name == "attention_latent")
    # 128 heads on each device (attention is data-parallel), 8 sequences each. Per sequence: FLOPs
    # 2 * 128 * 8192 * (2*512 + 64); bytes: the latent cache 8192 * 576 * 2 plus q in and o out,
    # 128 * 1088 * 2. AI = 2,281,701,376 / (9,437,184 + 278,528) = 234.8 FLOP/B (→ 242 at long
    # context), vs Llama's 4.
    assert latent.arithmetic_intensity == pytest.approx(234.85, rel=1e-3)
    gqa = rooflm.analyze("llama-3.1-8b", "h200", batch=64, context=8192)
    assert next(o for o in gqa.operators if o.name == "attention").arithmetic_intensity == pytest.approx(4, rel=0.01)


def test_mla_naive_decode_moves_far_more_bytes_than_absorbed() -> None:
    kw = {"batch": 16, "context": 4096, "dp": 8, "ep": 8}
    absorbed = rooflm.analyze("deepseek-v3", "h200", mla_decode="absorbed", **kw)
    naive = rooflm.analyze("deepseek-v3", "h200", mla_decode="naive", **kw)
    # Naive up-projects every cached latent to 128 heads of K and V (128 * 256 values per token per
    # layer, vs 576 cached), writes them and reads them back: the attention work per step grows
    # by ≈ 128 * 256 * 2 * 2 / (576 * 2) ≈ 114x in bytes.
    def attention_bytes(r: rooflm.Report) -> float:
        return sum(o.bytes for o in r.operators if o.op_class == "attention")
    assert attention_bytes(naive) > 50 * attention_bytes(absorbed)
    assert naive.totals.flops > 10 * absorbed.totals.flops


def test_sliding_window_layers_read_at_most_the_window() -> None:
    r = rooflm.analyze("gpt-oss-120b", "h100-sxm", batch=8, context=65536)
    windowed = next(o for o in r.operators if o.name == "attention[window=128]")
    full = next(o for o in r.operators if o.name == "attention")
    # 18 layers each: KV bytes scale as 128 vs 65,536 tokens.
    assert full.kv_bytes / windowed.kv_bytes == pytest.approx(65536 / 128)


def test_tensor_parallel_adds_two_all_reduces_per_layer_matching_the_ring_formula() -> None:
    r = rooflm.analyze("llama-3.1-70b", "h100-sxm", batch=8, context=1024, tp=2, comm_algorithm="ring")
    ar = next(o for o in r.operators if o.name == "attn_all_reduce")
    mlp = next(o for o in r.operators if o.name == "mlp_all_reduce")
    assert ar.count == mlp.count == 80
    # Message: 8 tokens * 8192 * 2 B = 131,072 B. Ring over 2: 2 * S * 1/2 = 131,072 B at 450 GB/s
    # (NVLink 4, per direction) + 2 * (2-1) steps * 2 us latency = 0.2913 us + 4 us per all-reduce.
    per = 131_072 / 450e9 + 2 * 2e-6
    assert ar.time_s == pytest.approx(80 * per)
    assert ar.bound == "communication"


def test_expert_parallel_adds_dispatch_and_combine() -> None:
    r = rooflm.analyze("mixtral-8x7b", "h100-sxm", batch=64, context=1024, dp=8, ep=8)
    names = {o.name for o in r.operators}
    assert {"ep_dispatch", "ep_combine"} <= names
    assert "moe_all_reduce" not in names
    dispatch = next(o for o in r.operators if o.name == "ep_dispatch")
    # Each device sends its 64/8 = 8 tokens * top-2 * 4096 * 2 B (bf16), 7/8 of it off-device,
    # in 7 steps over NVLink: 32 layers.
    per = 8 * 2 * 4096 * 2 * 7 / 8 / 450e9 + 7 * 2e-6
    assert dispatch.time_s == pytest.approx(32 * per)


def test_communication_binds_small_decode_on_many_devices() -> None:
    # An explicit ring pays 2 × 7 steps × 2 us per all-reduce: 65 of them are 1.8 ms against 0.6 ms of weight reads.
    r = rooflm.analyze("llama-3.1-8b", "h100-sxm", batch=1, context=128, tp=8, comm_algorithm="ring")
    assert r.totals.bound == "communication"
