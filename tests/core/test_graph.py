"""Operators of MoE, MLA and sliding-window models, and what parallel layouts add."""

import numpy as np
import pytest

import rooflm


def _ops(report: rooflm.Report, prefix: str) -> list:
    return [o for o in report.operators if o.name.startswith(prefix)]


def _expert_weight_bytes(batch: int) -> float:
    r = rooflm.analyze("qwen3-30b-a3b", "h100-sxm", batch=batch, context=128)
    return sum(o.weight_bytes for o in _ops(r, "experts"))


def _simulated_experts_hit(batch: int, trials: int) -> tuple[float, float]:
    """Uniform top-8 routing over 128 experts, simulated: each token takes the 8 smallest of 128 i.i.d. uniforms.
    Returns the mean number of distinct experts hit and its standard error."""
    rng = np.random.default_rng(batch)
    hits = [len(np.unique(np.argpartition(rng.random((batch, 128)), 7, axis=1)[:, :8])) for _ in range(trials)]
    return float(np.mean(hits)), float(np.std(hits, ddof=1) / np.sqrt(trials))


def test_moe_weight_reads_grow_from_active_to_all_experts() -> None:
    # Qwen3-30B-A3B: 48 layers, 128 experts of 3 * 2048 * 768 bf16 weights = 9,437,184 B each.
    per_expert = 3 * 2048 * 768 * 2 * 48
    # By hand: an expert is missed by one token with chance 120/128, by B tokens with (120/128)^B, so
    # E[experts hit] = 128 (1 − (120/128)^B): B = 1 → 8; B = 8 → 128 (1 − 0.59671) = 51.62; B = 64 → 128 (1 − 0.01608)
    # = 125.94; B ≥ 512 → 128 (the miss chance is below 5e-15).
    by_hand = {1: 8.0, 8: 51.620, 64: 125.941, 512: 128.0, 4096: 128.0}
    for batch, experts in by_hand.items():
        assert _expert_weight_bytes(batch) == pytest.approx(experts * per_expert, rel=1e-4)
        # And against a simulation: within 4 standard errors plus 1/trials (a mean of integer counts resolves no
        # finer; every trial hits all 128 at B ≥ 512).
        trials = 40
        simulated, standard_error = _simulated_experts_hit(batch, trials)
        assert _expert_weight_bytes(batch) / per_expert == pytest.approx(simulated, abs=4 * standard_error + 1 / trials)


def test_expert_gemm_sees_tokens_times_k_over_distinct_experts() -> None:
    r = rooflm.analyze("qwen3-30b-a3b", "h100-sxm", batch=256, context=128)
    assert r.moe is not None
    # 256 tokens miss an expert with chance (120/128)^256 = e^(256 ln 0.9375) = 6.7e-8: all 128 are hit, and the
    # 256 * 8 = 2048 routed tokens give each 16.
    assert r.moe.distinct_experts == pytest.approx(128, rel=1e-6)
    assert r.moe.tokens_per_expert == pytest.approx(16, rel=1e-6)
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
    # Per device: 16 sequences / dp 8 = 2 of 4096 tokens, 128 heads, per layer (x 61 layers on both sides):
    # absorbed: the latent cache 2 * 4096 * 576 * 2 B = 9,437,184, q (128 * 576) and o (128 * 512) in bf16
    # 2 * 128 * 1088 * 2 = 557,056, and kv_cache_write's 4,608 B (the new latent rows): 9,998,848 B.
    # naive: kv_b_proj reads the cached rows (9,437,184), its fp8 weights 512 * 128 * 256 = 16,777,216 B plus 1,024
    # fp32 block scales (4,096), and writes K_nope and V for 128 heads: 2 * 4096 * 128 * 256 * 2 = 536,870,912; then
    # attention reads K (128 nope + 64 rope per head) and V (128): 2 * 4096 * 128 * 320 * 2 = 671,088,640, q and o
    # 2 * 128 * (192 + 128) * 2 = 163,840; plus the same 4,608 B of cache writes: 1,234,346,496 B.
    # Ratio 1,234,346,496 / 9,998,848 = 123.45 (the rough 128 * 256 * 2 * 2 / (576 * 2) ≈ 114 leaves out the rope
    # keys broadcast to every head and the weights).
    def attention_bytes(r: rooflm.Report) -> float:
        return sum(o.bytes for o in r.operators if o.op_class == "attention")
    assert attention_bytes(naive) / attention_bytes(absorbed) == pytest.approx(1_234_346_496 / 9_998_848, rel=1e-6)
    # FLOPs per layer: absorbed 2 seqs * 2 * 128 * 4096 * (2 * 512 + 64) = 2,281,701,376; naive kv_b_proj
    # 2 * 8192 * 512 * 32768 = 274,877,906,944 plus attention 2 * 128 * 4096 * 2 * (192 + 128) * 2 = 671,088,640.
    def attention_flops(r: rooflm.Report) -> float:
        return sum(o.flops for o in r.operators if o.op_class == "attention")
    assert attention_flops(absorbed) == pytest.approx(61 * 2_281_701_376, rel=1e-9)
    assert attention_flops(naive) == pytest.approx(61 * (274_877_906_944 + 671_088_640), rel=1e-9)


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


@pytest.mark.parametrize("deployment", [{}, {"mla_decode": "naive"}, {"quant": "w4a16"}, {"tp": 2}],
                         ids=["bf16", "naive-mla", "w4a16", "tp2"])
def test_every_gemm_of_every_catalog_model_carries_its_rows(deployment: dict) -> None:
    """The tile model (rooflm.core.levels) and the small-M compute curves read a GEMM's M from the operator: one built
    without it (naive MLA's up-projection was) is timed as if it had no input rows at the cache levels."""
    from rooflm.core import graph
    from rooflm.core.inputs import setup
    from rooflm.errors import RooflmError
    from rooflm.specs.hf_config import model_names

    checked = 0
    for name in model_names():
        try:
            s = setup(name, "h200", **deployment)
        except RooflmError:  # a layout the model does not divide into, a scheme it has no roof for
            continue
        ops = (graph.decode_ops(s.model, s.quant, np.float64(8), np.float64(1024), s.options)
               + graph.prefill_ops(s.model, s.quant, np.float64(2), np.float64(512), False, s.options))
        missing = [o.name for o in ops if o.kind == "gemm" and not np.all(np.asarray(o.gemm_m) > 0)]
        assert not missing, (name, missing)
        checked += 1
    assert checked >= 10, checked
