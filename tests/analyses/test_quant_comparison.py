"""The quantization question, hand-derived: Llama-3.1-8B on H100 SXM."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from rooflm.analyses.quant_comparison import compare_quant
from rooflm.cli import app


def _speedup(scheme: str, baseline: str, batch: int, efficiency: str = "ideal", context: int = 128) -> float:
    cmp = compare_quant("llama-3.1-8b", "h100-sxm", schemes=[baseline, scheme], batch=[batch], context=[context],
                        efficiency=efficiency)
    return float(cmp.speedup[scheme][0])


def test_w4a8_over_fp8_halves_batch1_and_fades_at_2048() -> None:
    # Batch 1 reads each weight once. Decoder GEMMs: 32 × 218,103,808 = 6.979e9 weights; fp8 1 B each plus a fp32
    # scale per output channel (5.5 MB) = 6.985 GB, W4A8 0.5 + 2/128 B = 3.599 GB. Both keep lm_head in bf16 as their
    # checkpoints do (128256 · 4096 · 2 B = 1.051 GB) and read 28.3 MB of KV cache and activations:
    # (6.985 + 1.051 + 0.028) / (3.599 + 1.051 + 0.028) = 1.724 (1.94 on the decoder GEMMs alone).
    assert _speedup("w4a8", "fp8", 1) == pytest.approx(1.724, rel=0.005)
    # Batch 2048 is past both critical batches (fp8: ≈ 600, W4A8 at the same int8/fp8 roof: ≈ 160):
    # both are compute-bound on the same roof.
    assert _speedup("w4a8", "fp8", 2048) <= 1.15


def test_w4a16_over_bf16_is_about_4x_at_batch1_and_gone_past_its_critical_batch() -> None:
    # Batch 1, context 128, bytes per step: bf16 15.009 GB of weights; W4A16 4.650 GB (16 / 4.125 bits on the decoder
    # GEMMs, lm_head's 1.051 GB left in bf16); both add 16.9 MB of KV cache and 11.4 MB of activations:
    # (15.009 + 0.028) / (4.650 + 0.028) = 3.21 (3.74 if lm_head were int4 too).
    assert 3.1 <= _speedup("w4a16", "bf16", 1) <= 3.3
    # Past W4A16's critical batch (≈ 84) only the bf16 GEMMs' own memory-bound share is left to save.
    assert _speedup("w4a16", "bf16", 1024) < 1.1
    # With the dequantization in the main loop (calibrated mode) W4A16 is slower than bf16 there.
    assert _speedup("w4a16", "bf16", 1024, "calibrated") < 1.0


def test_kv_fp8_speeds_attention_2x_and_leaves_weight_gemms_alone() -> None:
    cmp = compare_quant("llama-3.1-8b", "h100-sxm", schemes=["bf16", "bf16+kv-fp8"], batch=[64], context=[32768])
    attention = cmp.class_time("bf16", "attention")[0] / cmp.class_time("bf16+kv-fp8", "attention")[0]
    # Decode attention is KV-bound: half the bytes, half the time (the KV write is tiny here).
    assert attention == pytest.approx(2.0, rel=0.02)
    assert cmp.class_time("bf16+kv-fp8", "weight_gemm")[0] == pytest.approx(cmp.class_time("bf16", "weight_gemm")[0])


def test_summary_batches_agree_with_the_speedups() -> None:
    batches = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048]
    cmp = compare_quant("llama-3.1-8b", "h100-sxm", schemes=["bf16", "w4a16"], batch=batches, context=[128],
                        efficiency="calibrated")
    sp = cmp.speedup["w4a16"]
    summary = cmp.summaries[0]
    fade = summary.batch_gain_below_threshold
    assert fade is not None
    i = batches.index(fade)
    assert np.all(sp[i:] < 1.1) and sp[i - 1] >= 1.1
    lose = summary.batch_slower_than_baseline
    assert lose is not None and np.all(sp[batches.index(lose):] < 1.0)


def test_breakdown_explains_where_the_gain_comes_from() -> None:
    cmp = compare_quant("llama-3.1-8b", "h100-sxm", schemes=["bf16", "w4a16"], batch=[1, 2048], context=[4096])
    points = [p for p in cmp.points() if p["scheme"] == "w4a16"]
    small, large = points
    # At batch 1 the saving is in the weight GEMMs; at 2048 the GEMMs are compute-bound and save nothing,
    # while attention (KV-bound) is untouched by weight quantization.
    assert small["time_saved_by_class_s"]["weight_gemm"] > 0.9 * (small["time_saved_by_class_s"]["weight_gemm"]
                                                                   + small["time_saved_by_class_s"]["attention"])
    assert "weight_gemm" in small["memory_bound_classes"]
    assert "weight_gemm" not in large["memory_bound_classes"] and "attention" in large["memory_bound_classes"]
    assert large["time_saved_by_class_s"]["attention"] == pytest.approx(0.0, abs=1e-12)


def test_quant_cli_json_contract() -> None:
    result = CliRunner().invoke(app, ["quant", "--schemes", "bf16,fp8,w4a16,w4a8", "--batch", "1,64,2048",
                                      "--context", "128", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["baseline"] == "bf16"
    assert len(doc["points"]) == 4 * 3
    assert {"scheme", "batch", "time_s", "speedup"} <= set(doc["points"][0])
    base = [p for p in doc["points"] if p["scheme"] == "bf16"]
    assert all(p["speedup"] == 1.0 for p in base)


def test_quant_cli_rejects_unknown_scheme_in_one_line() -> None:
    result = CliRunner().invoke(app, ["quant", "--schemes", "bf16,w3a16"])
    assert result.exit_code == 2 and "unknown quantization scheme" in result.stderr


def test_a_decode_comparison_says_it_weighs_steps_and_gives_whole_requests_beside() -> None:
    """Llama-3.1-70B on 2× H100 at 64 users: int4 weights (w4a16) are fastest on decode steps, but its 1,024-token
    prefills run on a dequantizing kernel, and on a whole request fp8 wins (as `rooflm serving` finds: more tokens/s
    with fp8). The request view is the ratio of analyze's e2e times, computed here on its own."""
    from rooflm.analyses.analyze import analyze

    cmp = compare_quant("llama-3.1-70b", "h100-sxm", schemes=["bf16", "fp8", "w4a16"], batch=[64], tp=2)
    assert cmp.compares == "decode steps at batch 64, context 1024"
    v = cmp.request
    assert v is not None and (v.prompt_len, v.gen_len, v.batch) == (1024, 256, [64])

    def time(scheme: str, phase: str) -> float:
        return analyze("llama-3.1-70b", "h100-sxm", phase=phase, batch=64, prompt_len=1024, gen_len=256, tp=2,
                       quant=scheme, efficiency="calibrated").totals.time_s

    whole = {s: time(s, "e2e") for s in ("bf16", "fp8", "w4a16")}
    steps = {s: time(s, "decode") for s in ("bf16", "fp8", "w4a16")}
    for s in whole:
        assert v.speedup[s][0] == pytest.approx(whole["bf16"] / whole[s], rel=1e-9)
        assert float(cmp.speedup[s][0]) == pytest.approx(steps["bf16"] / steps[s], rel=1e-9)
    assert min(steps, key=steps.__getitem__) == v.best_on_steps == "w4a16"
    assert min(whole, key=whole.__getitem__) == v.best_on_request == "fp8"
    assert v.verdict_changes
    doc = cmp.to_json_dict()
    assert doc["compares"] == "decode steps at batch 64, context 1024"
    assert doc["request"]["best_on_request"] == "fp8" and doc["request"]["verdict_changes"] is True


def test_the_quant_table_points_to_serving_when_the_prefill_changes_the_verdict() -> None:
    result = CliRunner().invoke(app, ["quant", "-m", "llama-3.1-70b", "--tp", "2", "--batch", "64",
                                      "--quant", "bf16,fp8,w4a16"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert "decode steps at batch 64, context 1024" in result.output
    assert "whole request (prefill of 1,024 tokens + 256 decode steps" in result.output
    assert "the prefill changes the verdict: w4a16 is fastest on decode steps at batch 64, fp8 on whole" in result.output
    assert ("rooflm serving --model llama-3.1-70b --hardware h100-sxm --tp 2 --concurrency 64 --prompt-len 1024 "
            "--gen-len 256 --quant fp8, then --quant w4a16") in result.output
    # One scheme ahead on both: no such line (fp8 beats bf16 on steps and on requests on one H100).
    same = CliRunner().invoke(app, ["quant", "--batch", "64", "--quant", "bf16,fp8"], env={"COLUMNS": "400"})
    assert same.exit_code == 0 and "changes the verdict" not in same.output and "whole request" in same.output
