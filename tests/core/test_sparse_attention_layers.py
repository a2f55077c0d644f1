"""DeepSeek sparse attention in a step: decode attention reads at most top-k tokens per sequence, the indexer reads
its whole key cache, and the cache keeps every token."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import rooflm
from rooflm.cli import app
from rooflm.specs.hf_config import from_hf_config

# 3 layers of MLA (8 heads, latent 32 + RoPE key 8), DSA with 4 indexer heads of 16 and top-64.
DSA = {"model_type": "deepseek_v32", "hidden_size": 64, "num_hidden_layers": 3, "num_attention_heads": 8,
       "num_key_value_heads": 8, "intermediate_size": 128, "vocab_size": 256, "max_position_embeddings": 1 << 20,
       "kv_lora_rank": 32, "q_lora_rank": 48, "qk_rope_head_dim": 8, "qk_nope_head_dim": 16, "v_head_dim": 16,
       "n_routed_experts": 8, "num_experts_per_tok": 2, "n_shared_experts": 1, "moe_intermediate_size": 32,
       "first_k_dense_replace": 1, "index_n_heads": 4, "index_head_dim": 16, "index_topk": 64}


def _decode(context: int) -> rooflm.Report:
    return rooflm.analyze(from_hf_config(DSA, "dsa"), "h100-sxm", phase="decode", batch=2, context=context)


def test_decode_attention_bytes_bounded_by_top_k() -> None:
    ops = {c: {o.name: o for o in _decode(c).operators} for c in (64, 4096, 65536)}
    # absorbed MLA over top-64 tokens: 3 layers × 2 sequences × 64 × (32 + 8) × 2 bytes = 30720 at any context ≥ 64
    for c in (64, 4096, 65536):
        assert ops[c]["attention_latent"].kv_bytes == 30720
    # the indexer scans every cached key: 3 × 2 × C × (16 + 4) bytes
    assert ops[65536]["indexer"].kv_bytes == 3 * 2 * 65536 * 20
    assert ops[65536]["indexer"].kv_bytes == 16 * ops[4096]["indexer"].kv_bytes


def test_cache_keeps_every_token() -> None:
    """DSA saves reads, not memory: the latent and the indexer keys of every token stay cached."""
    r = _decode(4096)
    # 3 layers × 2 sequences × 4096 × ((32 + 8) × 2 + 20) bytes
    assert r.memory.kv_cache_bytes == 3 * 2 * 4096 * 100


def test_indexer_parameters() -> None:
    a = from_hf_config(DSA, "dsa").attention
    # wq_b 48·4·16 = 3072, wk 64·16 = 1024, LayerNorm 2·16 = 32, weights_proj 64·4 = 256
    assert a.indexer_params(64) == 4384


def test_regimes_and_explain_say_attention_stops_growing() -> None:
    model = from_hf_config(DSA, "dsa")
    notes = " ".join(r.note for r in rooflm.regimes(model, "h100-sxm").regimes)
    assert "no longer grows with context beyond the top-64" in notes
    text = rooflm.explain(model, "h100-sxm", phase="decode", batch=2, context=8192).to_markdown()
    assert "no longer grows with context beyond" in text


def test_without_top_k_attention_grows() -> None:
    """A control: the same model with dense attention reads the whole context."""
    model = from_hf_config(DSA, "dsa")
    dense = model.model_copy(update={"attention": model.attention.model_copy(update={"index_topk": 0})})
    r = rooflm.analyze(dense, "h100-sxm", phase="decode", batch=2, context=4096)
    assert {o.name: o for o in r.operators}["attention_latent"].kv_bytes == 3 * 2 * 4096 * 40 * 2


@pytest.mark.parametrize("phase", ["prefill", "decode", "e2e"])
@pytest.mark.parametrize("tp", ["1", "8"])
def test_cli_analyze_runs_sparse_attention(tmp_path: Path, phase: str, tp: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(DSA))
    result = CliRunner().invoke(app, ["analyze", "--model", str(path), "--hardware", "h100-sxm", "--phase", phase,
                                      "--batch", "2", "--prompt-len", "256", "--gen-len", "4", "--tp", tp, "--json"])
    assert result.exit_code == 0, result.output
    names = {o["name"].split("/")[-1] for o in json.loads(result.output)["operators"]}  # e2e: "decode/indexer"
    assert "indexer" in names
