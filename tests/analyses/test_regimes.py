"""The regime table: rows derived by hand for Llama-3.1-8B on an H100 SXM, the MoE row, the contradiction note."""

import json
import math

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import rooflm
from rooflm.cli import app
from rooflm.errors import InvalidInputError
from rooflm.web.app import create_app

runner = CliRunner()

# Llama-3.1-8B (config.json): 32 layers, hidden 4096, 32 query heads and 8 KV heads of 128, MLP 14336, vocabulary
# 128256; 8,030,261,248 parameters, of which the embedding table (128256 × 4096 = 525,336,576) is read one row a step.
LAYERS, KV_HEADS, Q_HEADS, HEAD = 32, 8, 32, 128
NON_EMBEDDING = 8_030_261_248 - 525_336_576  # 7,504,924,672 weights every decode step reads (with the lm_head)
LM_HEAD = 525_336_576
H100_BW, H100_BF16 = 3.35e12, 989.4e12


@pytest.fixture(scope="module")
def h100() -> rooflm.Regimes:
    return rooflm.regimes("llama-3.1-8b", "h100-sxm")


def _row(t: rooflm.Regimes, name: str) -> rooflm.Regime:
    return next(r for r in t.regimes if r.name == name)


def test_batch1_decode_row_by_hand(h100: rooflm.Regimes) -> None:
    row = _row(h100, "batch-1 decode")
    # Context 1024. FLOPs: 2 per weight, plus attention 4·H_q·C·d per layer = 4·32·1024·128·32 = 536.9 M.
    # Bytes: 2 per weight (bf16), plus the KV cache C·2·H_kv·d·2 B per layer = 1024·2·8·128·2·32 = 134.2 MB.
    flops = 2 * NON_EMBEDDING + 4 * Q_HEADS * 1024 * HEAD * LAYERS
    nbytes = 2 * NON_EMBEDDING + 1024 * 2 * KV_HEADS * HEAD * 2 * LAYERS
    assert flops / nbytes == pytest.approx(1.0266, abs=5e-4)
    # Norm, rope and residual activations add a few MB: the step's intensity is the hand figure within 0.2%.
    assert row.arithmetic_intensity == pytest.approx(flops / nbytes, rel=2e-3)
    assert row.bound == "memory" and row.agrees_with_rule_of_thumb is True
    assert row.time_s == pytest.approx(nbytes / H100_BW, rel=2e-3)  # 4.52 ms
    assert row.ridge_intensity == pytest.approx(H100_BF16 / H100_BW)  # 295.3
    # W4A16: 4.125 bits per weight (one fp16 scale per 128), the lm_head kept in bf16.
    int4_bytes = (NON_EMBEDDING - LM_HEAD) * 4.125 / 8 + 2 * LM_HEAD + 1024 * 2 * KV_HEADS * HEAD * 2 * LAYERS
    assert row.quant_speedup == pytest.approx(nbytes / int4_bytes, rel=3e-3)  # 3.17×
    assert row.scheme_speedup == pytest.approx(1.0)


def test_small_prefill_is_below_the_ridge(h100: rooflm.Regimes) -> None:
    row = _row(h100, "small-batch prefill")
    # 128 tokens: every per-layer GEMM does 2·128 FLOPs per weight it reads in 2 bytes, at most 128 FLOP/B; the
    # lm_head (logits of the last token only) reads 1.05 GB for 2 FLOPs a weight, so the step sits lower still —
    # far below the ridge of 295.
    assert 90 < row.arithmetic_intensity < 128
    assert row.bound == "memory"
    if row.agrees_with_rule_of_thumb is False:  # memory-bound on DRAM: the note says so with the intensity and the ridge
        assert row.note.startswith("contradicts the rule of thumb (L2 / shared memory)")
        assert f"{row.arithmetic_intensity:.3g} FLOP/B against a ridge of 295.3" in row.note


def test_large_prefill_is_compute_bound_and_int4_buys_nothing(h100: rooflm.Regimes) -> None:
    row = _row(h100, "large-batch prefill")
    # 8 × 1024 tokens: a GEMM's intensity ≈ M = 8192 rows... bounded by the activations' bytes, far past the ridge.
    assert row.arithmetic_intensity > 295.3 and row.bound == "compute" and row.level is None
    assert row.quant_speedup == pytest.approx(1.0, abs=0.01)  # W4A16's math runs on the same bf16 roof


def test_moe_row_only_for_models_with_experts(h100: rooflm.Regimes) -> None:
    assert [r.name for r in h100.regimes] == ["batch-1 decode", "small-batch prefill", "large-batch prefill"]
    moe = rooflm.regimes("qwen3-30b-a3b", "h100-sxm")
    row = _row(moe, "MoE, small per-expert batches")
    # Batch 64, top-8 of 128 experts: 512 routed tokens hit 128·(1 − (120/128)^64) = 125.94 experts, 4.065 each.
    hit = 128 * (1 - (120 / 128) ** 64)
    assert row.tokens_per_expert == pytest.approx(512 / hit, rel=1e-4)
    # An expert GEMM of M ≈ 4 rows does 2·4 FLOPs per 2-byte weight: ≈ 4 FLOP/B, memory-bound.
    assert row.arithmetic_intensity == pytest.approx(4.0, rel=0.05) and row.bound == "memory"
    assert row.kernel_efficiency_gap is not None and row.kernel_efficiency_gap > 1
    assert f"{row.kernel_efficiency_gap:.2f}×" in row.note


def test_contradiction_when_small_prefill_is_compute_bound() -> None:
    # A CPU's ridge is low enough that one 128-token prompt is already compute-bound: not "L2 / shared memory".
    t = rooflm.regimes("llama-3.1-8b", "ryzen-5800x")
    row = _row(t, "small-batch prefill")
    assert row.bound == "compute" and row.agrees_with_rule_of_thumb is False
    assert row.note.startswith("contradicts the rule of thumb") and "compute-bound, not cache-bound" in row.note


def test_scheme_speedup_is_bf16_over_the_scheme() -> None:
    t = rooflm.regimes("llama-3.1-8b", "h100-sxm", quant="w4a16")
    row = _row(t, "batch-1 decode")
    assert row.scheme_speedup == pytest.approx(row.quant_speedup)
    assert row.bf16_time_s / row.time_s == pytest.approx(row.scheme_speedup)


def test_sizes_are_checked() -> None:
    with pytest.raises(InvalidInputError) as e:
        rooflm.regimes(small_prefill=0)
    assert e.value.field == "small_prefill"


def test_cli_json_and_table() -> None:
    result = runner.invoke(app, ["regimes", "-m", "qwen3-30b-a3b", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    for row in doc["regimes"]:
        assert {"name", "arithmetic_intensity", "bound", "level", "time_s", "quant_speedup"} <= set(row)
        assert math.isfinite(row["time_s"])
    assert len(doc["regimes"]) == 4
    table = runner.invoke(app, ["regimes", "--context", "512"])
    assert table.exit_code == 0 and "small-batch prefill" in table.stdout and "rule of thumb" in table.stdout
    bad = runner.invoke(app, ["regimes", "--moe-batch", "0"])
    assert bad.exit_code == 2 and "moe-batch must be a positive integer" in bad.output


def test_api_equals_cli() -> None:
    client = TestClient(create_app(), base_url="http://localhost", raise_server_exceptions=False)
    reply = client.post("/api/regimes", json={"model": "qwen3-30b-a3b", "quant": "fp8"})
    assert reply.status_code == 200, reply.text
    cli = runner.invoke(app, ["regimes", "-m", "qwen3-30b-a3b", "--quant", "fp8", "--json"])
    assert reply.json() == json.loads(cli.stdout)
    refused = client.post("/api/regimes", json={"small_prefill": -1})
    assert refused.status_code == 422 and refused.json()["field"] == "small_prefill"


def test_moe_gap_is_against_the_roofline_whatever_the_overrides() -> None:
    # The gap compares calibrated kernels with the roofline (η = 1): an --eta-memory given for the calibrated run must
    # not reach the ideal one. Halving η_memory roughly doubles the calibrated experts' (memory-bound) time.
    base = _row(rooflm.regimes("qwen3-30b-a3b", "h100-sxm"), "MoE, small per-expert batches")
    slow = _row(rooflm.regimes("qwen3-30b-a3b", "h100-sxm", efficiency="calibrated", eta_memory=0.4),
                "MoE, small per-expert batches")
    assert base.kernel_efficiency_gap is not None and slow.kernel_efficiency_gap is not None
    assert slow.kernel_efficiency_gap > 1.5 * base.kernel_efficiency_gap


def test_the_verdict_follows_the_claim_as_data_not_its_words() -> None:
    # The same small prefill judged twice: the rule of thumb's words reworded change the note's quote only; the row
    # whose `binds` says DRAM agrees where the cache claim did not (DRAM-bound on an H100, as derived above).
    from dataclasses import replace

    from rooflm.analyses import regimes as module
    from rooflm.specs.hardware import load_hardware
    from rooflm.specs.hf_config import load_model

    spec, hw = load_model("llama-3.1-8b"), load_hardware("h100-sxm")
    small = module.WORKLOADS[1]
    reworded, _ = module._regime(spec, hw, replace(small, rule_of_thumb="on-chip memory"), {})
    as_dram, _ = module._regime(spec, hw, replace(small, binds="dram"), {})
    assert small.binds == "cache" and reworded.agrees_with_rule_of_thumb is False
    assert reworded.note.startswith("contradicts the rule of thumb (on-chip memory): DRAM-bound, not cache-bound")
    assert as_dram.agrees_with_rule_of_thumb is True and as_dram.note.startswith("memory-bound (dram)")
    assert "binds" not in reworded.__dict__  # the JSON carries the words, the test stays internal
