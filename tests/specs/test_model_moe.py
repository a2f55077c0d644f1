"""MoE, MLA and sliding-window models: totals, active parameters and KV bytes against published figures."""

import pytest

import rooflm
from rooflm.specs.hf_config import from_hf_config

# MiniMax-M2 as shared/reference/models.md describes it (independent of the shipped file).
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
    # Mistral AI: 46.7B total, 12.9B active (embeddings included).
    assert m.total_params == pytest.approx(46.7e9, rel=0.005)
    assert m.active_params == pytest.approx(12.9e9, rel=0.005)


@pytest.mark.parametrize(("name", "total", "active"), [("gpt-oss-120b", 117e9, 5.1e9), ("gpt-oss-20b", 21e9, 3.6e9)])
def test_gpt_oss_totals(name: str, total: float, active: float) -> None:
    # OpenAI's model card counts active parameters without the embedding table.
    m = rooflm.load_model(name)
    assert m.total_params == pytest.approx(total, rel=0.01)
    assert m.active_params_without_embedding == pytest.approx(active, rel=0.01)
    assert m.attention.sinks
    windows = {g.sliding_window for g in m.layers}
    assert windows == {None, 128}


@pytest.mark.parametrize(("name", "total", "active"), [("qwen3-30b-a3b", 30.5e9, 3.3e9),
                                                       ("qwen3-235b-a22b", 235e9, 22e9)])
def test_qwen3_moe_totals(name: str, total: float, active: float) -> None:
    m = rooflm.load_model(name)
    assert m.total_params == pytest.approx(total, rel=0.01)
    assert m.active_params == pytest.approx(active, rel=0.02)


def test_sliding_window_caps_the_kv_cache() -> None:
    m = rooflm.load_model("gpt-oss-120b")
    # 18 full + 18 sliding (W = 128) layers; 8 KV heads * (64 + 64) * 2 B = 2048 B per layer per token.
    # At 32,768 tokens: (18 * 32768 + 18 * 128) * 2048 / 32768 per token.
    assert m.kv_bytes_per_token(2.0, context=32768) == pytest.approx((18 * 32768 + 18 * 128) * 2048 / 32768)
