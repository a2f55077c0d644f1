"""A hybrid model's linear-attention layers: their recurrent state is reported beside the KV cache, stays flat in
the context, and the largest batch accounts for both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import rooflm
from rooflm.cli import app
from rooflm.specs.hf_config import from_hf_config

# 4 layers: 3 Gated DeltaNet (full_attention_interval 4) and 1 full attention of 2 KV heads × 16 (K and V);
# linear layers with 2 key heads of 8 and 4 value heads of 16, a convolution of kernel 4.
HYBRID = {"model_type": "qwen3_next", "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 8,
          "num_key_value_heads": 2, "head_dim": 16, "intermediate_size": 128, "vocab_size": 256,
          "max_position_embeddings": 65536, "linear_num_key_heads": 2, "linear_num_value_heads": 4,
          "linear_key_head_dim": 8, "linear_value_head_dim": 16, "linear_conv_kernel_dim": 4, "num_experts": 8,
          "num_experts_per_tok": 2, "moe_intermediate_size": 32, "shared_expert_intermediate_size": 48}


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(HYBRID))
    return str(path)


def test_state_and_kv_cache_reported_apart(config: str) -> None:
    r = rooflm.analyze(config, "h100-sxm", phase="decode", batch=4, context=1024)
    # KV cache: 1 attention layer × 4 sequences × 1024 tokens × 2 heads × (16 + 16) × 2 bytes = 524288
    assert r.memory.kv_cache_bytes == 524288
    # state per linear layer and sequence: 4 heads × 8 × 16 = 512, plus the convolution's (2·2·8 + 4·16) = 96
    # channels × 3 inputs = 288: 800 elements × 2 bytes; × 3 layers × 4 sequences = 19200
    assert r.memory.state_bytes == 19200


def test_linear_layers_decode_flat_in_context(config: str) -> None:
    short = rooflm.analyze(config, "h100-sxm", phase="decode", batch=4, context=1024)
    long = rooflm.analyze(config, "h100-sxm", phase="decode", batch=4, context=32768)
    ops = {o.name: o for o in short.operators}
    ops_long = {o.name: o for o in long.operators}
    for name in ("linear_attn.recurrence", "linear_attn.conv"):
        assert ops[name].kv_bytes == ops_long[name].kv_bytes > 0
        assert ops[name].flops == ops_long[name].flops
    assert long.memory.state_bytes == short.memory.state_bytes
    assert long.memory.kv_cache_bytes == 32 * short.memory.kv_cache_bytes  # the attention layer alone grows
    assert ops_long["attention"].kv_bytes == 32 * ops["attention"].kv_bytes


def test_max_batch_counts_the_state() -> None:
    """Per sequence the cache is the KV of the attention layers plus the state: removing the state lets more fit."""
    model = from_hf_config(HYBRID, "hybrid")
    with_state = rooflm.analyze(model, "h100-sxm", phase="decode", batch=1, context=1024).memory.max_batch
    no_linear = model.model_copy(update={"linear_attention": None})  # the same layers without their state
    without = rooflm.analyze(no_linear, "h100-sxm", phase="decode", batch=1, context=1024).memory.max_batch
    assert with_state < without


def test_parameters_split_over_the_two_mixers() -> None:
    m = from_hf_config(HYBRID, "hybrid")
    assert (m.attention_layers, m.linear_layers) == (1, 3)
    # one layer's Gated DeltaNet: in_proj_qkvz 64·(2·16 + 2·64) = 10240, in_proj_ba 64·8 = 512, conv 96·4 = 384,
    # dt_bias and A_log 8, the gated norm 16, out_proj 64·64 = 4096: 15256
    assert m.linear_attention is not None and m.linear_attention.params(64) == 15256


@pytest.mark.parametrize("phase", ["prefill", "decode", "e2e"])
@pytest.mark.parametrize("tp", ["1", "8"])
def test_cli_analyze_reports_the_state(config: str, phase: str, tp: str) -> None:
    result = CliRunner().invoke(app, ["analyze", "--model", config, "--hardware", "h100-sxm", "--phase", phase,
                                      "--batch", "2", "--prompt-len", "256", "--gen-len", "4", "--tp", tp, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["memory"]["state_bytes"] > 0 and doc["totals"]["time_s"] > 0
