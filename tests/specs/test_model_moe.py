"""MoE, MLA and sliding-window models: totals, active parameters and KV bytes against published figures."""

import pytest

import rooflm
from rooflm.specs.hf_config import from_hf_config

# MiniMax-M2 as its published config.json gives it (huggingface.co/MiniMaxAI/MiniMax-M2; typed here, independent of
# the shipped file).
MINIMAX_M2 = {"model_type": "minimax_m2", "hidden_size": 3072, "num_hidden_layers": 62, "num_attention_heads": 48,
              "num_key_value_heads": 8, "head_dim": 128, "rotary_dim": 64, "use_qk_norm": True,
              "num_local_experts": 256, "num_experts_per_tok": 8, "intermediate_size": 1536, "vocab_size": 200064,
              "max_position_embeddings": 196608, "use_routing_bias": True}


def test_minimax_m2_sizes() -> None:
    m = from_hf_config(MINIMAX_M2, "minimax-m2")
    # Experts: 62 layers * 256 * 3 * 3072 * 1536 = 224.6B; attention 62 * (3072*(6144+2048) + 6144*3072)
    # = 2.73B; embeddings 2 * 200064 * 3072 = 1.23B -> ~228.7B (published ≈ 229B, "230B").
    assert m.total_params == pytest.approx(229e9, rel=0.01)
    # Active without the embedding table: ~10.4B (published ≈ 10B).
    assert m.active_params_without_embedding == pytest.approx(10e9, rel=0.05)
    # KV: 62 layers * 2 (K,V) * 8 heads * 128 * 2 B = 253,952 B = 248 KiB.
    assert m.kv_bytes_per_token() == 248 * 1024
    assert m.attention.rotary_dim == 64 and m.attention.qk_norm == "full"


def test_catalog_minimax_m2_matches_the_reference_config() -> None:
    assert rooflm.load_model("minimax-m2").total_params == from_hf_config(MINIMAX_M2, "x").total_params


def test_deepseek_v3_mla_and_dense_layers() -> None:
    m = rooflm.load_model("deepseek-v3")
    # 671B without the MTP module (num_hidden_layers = 61 excludes it); 37B activated.
    assert m.total_params == pytest.approx(671e9, rel=0.01)
    assert m.active_params_without_embedding == pytest.approx(37e9, rel=0.02)
    # First three layers dense, 58 MoE.
    assert sorted((g.count, g.moe) for g in m.layers) == [(3, False), (58, True)]
    # MLA cache: 61 layers * (512 latent + 64 rope) * 2 B = 70,272 B = 68.6 KiB.
    assert m.kv_bytes_per_token() == 61 * 576 * 2
    assert m.kv_bytes_per_token() / 1024 == pytest.approx(68.6, abs=0.05)


def test_mixtral_totals() -> None:
    m = rooflm.load_model("mixtral-8x7b")
    # Mistral AI's announcement (mistral.ai/news/mixtral-of-experts): 46.7B total, 12.9B active (embeddings included).
    # By hand from config.json (32 layers, h 4096, 8 experts of I 14336, top-2, 32 q / 8 kv heads of 128, vocab 32000):
    # experts 32 * 8 * 3 * 4096 * 14336 = 45.10B; attention 32 * 4096 * (4096 + 2 * 1024 + 4096) = 1.34B;
    # embedding + lm_head 2 * 32000 * 4096 = 0.26B; total 46.70B. Active: 32 * 2 * 3 * 4096 * 14336 = 11.27B
    # + 1.34B + 0.26B = 12.88B.
    assert m.total_params == pytest.approx(46.7e9, rel=0.005)
    assert m.active_params == pytest.approx(12.9e9, rel=0.005)


@pytest.mark.parametrize(("name", "total", "active"), [("gpt-oss-120b", 117e9, 5.1e9), ("gpt-oss-20b", 21e9, 3.6e9)])
def test_gpt_oss_totals(name: str, total: float, active: float) -> None:
    # OpenAI's gpt-oss model card (arXiv:2508.10925, Table 1): 116.8B total / 5.1B active and 20.9B / 3.6B; it counts
    # active parameters without the embedding table. By hand for 120b (36 layers, 128 experts, top-4, h = I = 2880,
    # 64 q / 8 kv heads of 64, vocab 201088): one expert 3 * 2880 * 2880 = 24.88M, experts 36 * 128 * 24.88M =
    # 114.66B; attention 36 * 2880 * (4096 + 2 * 512 + 4096) = 0.96B; embedding + lm_head 2 * 201088 * 2880 =
    # 1.16B: 116.8B. Active without the embedding: 36 * 4 * 24.88M = 3.58B + 0.96B + lm_head 0.58B = 5.12B.
    # 20b (24 layers, 32 experts): 24 * 32 * 24.88M = 19.11B + 0.64B + 1.16B = 20.9B; active 2.39 + 0.64 + 0.58 = 3.61B.
    m = rooflm.load_model(name)
    assert m.total_params == pytest.approx(total, rel=0.01)
    assert m.active_params_without_embedding == pytest.approx(active, rel=0.01)
    assert m.attention.sinks
    windows = {g.sliding_window for g in m.layers}
    assert windows == {None, 128}


@pytest.mark.parametrize(("name", "total", "active"), [("qwen3-30b-a3b", 30.5e9, 3.3e9),
                                                       ("qwen3-235b-a22b", 235e9, 22e9)])
def test_qwen3_moe_totals(name: str, total: float, active: float) -> None:
    # Qwen's model cards (Qwen/Qwen3-30B-A3B, Qwen/Qwen3-235B-A22B): 30.5B / 3.3B and 235B / 22B. By hand, 30B-A3B
    # (48 layers, h 2048, 128 experts of I 768, top-8, 32 q / 4 kv heads of 128, vocab 151936): experts
    # 48 * 128 * 3 * 2048 * 768 = 28.99B; attention 48 * 2048 * (4096 + 2 * 512 + 4096) = 0.91B; embedding + lm_head
    # 2 * 151936 * 2048 = 0.62B: 30.53B. Active: 48 * 8 * 3 * 2048 * 768 = 1.81B + 0.91B + 0.62B = 3.35B.
    # 235B-A22B (94 layers, h 4096, I 1536, 64 q heads): experts 227.0B + attention 94 * 4096 * 17408 = 6.70B
    # + 1.25B = 235.0B; active 94 * 8 * 3 * 4096 * 1536 = 14.19B + 6.70B + 1.25B = 22.1B.
    m = rooflm.load_model(name)
    assert m.total_params == pytest.approx(total, rel=0.01)
    assert m.active_params == pytest.approx(active, rel=0.02)


def test_sliding_window_caps_the_kv_cache() -> None:
    m = rooflm.load_model("gpt-oss-120b")
    # 18 full + 18 sliding (W = 128) layers; 8 KV heads * (64 + 64) * 2 B = 2048 B per layer per token.
    # At 32,768 tokens: (18 * 32768 + 18 * 128) * 2048 / 32768 per token.
    assert m.kv_bytes_per_token(2.0, context=32768) == pytest.approx((18 * 32768 + 18 * 128) * 2048 / 32768)
