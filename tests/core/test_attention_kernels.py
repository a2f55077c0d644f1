"""Attention kernel families (data/kernels.toml): calibrated attention reproduces the published kernel timings
the curves come from, through the whole graph (the families and query rows graph.py puts on attention operators)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import rooflm
from rooflm.specs.hardware import HARDWARE_DIR
from rooflm.specs.hf_config import MODELS_DIR


def _attention(report: rooflm.Report, name: str = "attention") -> rooflm.analyses.report.OperatorRow:
    return next(o for o in report.operators if o.name == name)


@pytest.mark.parametrize(("prompt", "measured_us"), [(1024, 141.63), (2048, 368.35), (8192, 4817.44)])
def test_prefill_attention_runs_at_flashattention3s_rate_for_its_prompt_length(prompt: int, measured_us: float) -> None:
    # meta-pytorch/tritonbench PR #1267: FA3 causal forward on H100, bf16, batch 4, 48 heads, head dim 128, measured
    # 141.63 / 368.35 / 4817.44 us at S = 1024 / 2048 / 8192. Llama-3.1-8B's prefill of one S-token prompt runs the
    # same kernel with batch 1 and 32 heads (head dim 128): 32 / (4 × 48) = 1/6 of the FLOPs at the same S, so 1/6 of
    # the time per layer, × 32 layers. Short prompts lose most to the masked diagonal blocks: per FLOP, S = 1024 is
    # 4817.44 / 141.63 / 64 ≈ 0.53× as fast as S = 8192 (64 = the FLOP ratio).
    report = rooflm.analyze("llama-3.1-8b", "h100-sxm", phase="prefill", batch=1, prompt_len=prompt,
                            efficiency="calibrated")
    expected = 32 * measured_us * 1e-6 / 6
    assert _attention(report).compute_time_s == pytest.approx(expected, rel=0.01)


def test_decode_attention_reproduces_the_paged_decode_measurement() -> None:
    # microsoft/onnxruntime PR #21414 (nvbench, H100 SXM): FlashAttention-2 paged decode with Llama-3-70B's heads
    # (64 q / 8 kv, head dim 128), 64 sequences of 256 cached tokens: 43.563 us per kernel. Llama-3.1-70B on one
    # H100 at batch 64, context 256 runs that kernel once per layer (80 layers); the line fitted through the PR's
    # four points has residuals ≤ 1.1 us, so a layer's time lands within 3% of the measurement.
    report = rooflm.analyze("llama-3.1-70b", "h100-sxm", phase="decode", batch=64, context=256,
                            efficiency="calibrated")
    op = _attention(report)
    assert op.memory_time_s / 80 == pytest.approx(43.563e-6, rel=0.03)


def test_decode_attention_has_a_fixed_cost_that_short_contexts_cannot_hide() -> None:
    # Same PR: 64 sequences of 32 tokens take 21.135 us, of 256 tokens 43.563 us: 8× the KV for 2.06× the time.
    # A flat bandwidth fraction would give 8×; the fitted fill (16 us per kernel) gives (16 + 8.4 MB / 2.58 TB/s)
    # = 19.3 us and (16 + 67.1 / 2.58) = 42.0 us, 2.2×.
    def per_layer(context: int) -> float:
        report = rooflm.analyze("llama-3.1-70b", "h100-sxm", phase="decode", batch=64, context=context,
                                efficiency="calibrated")
        return _attention(report).memory_time_s / 80
    ratio = per_layer(256) / per_layer(32)
    assert ratio == pytest.approx(43.563 / 21.135, rel=0.1)


def test_blackwell_decode_attention_reproduces_trtllm_gen() -> None:
    # flashinfer-ai/flashinfer PR #1415 (B200): TRT-LLM-gen paged decode, 64 q / 8 kv heads of dim 64, batch 128 ×
    # 4096 tokens: 175.79 us. gpt-oss-120b has those heads; its full-attention layers (18 of 36) at batch 128,
    # context 4096 run that kernel. The six-point line's residual there is 0.7 us: within 3%.
    report = rooflm.analyze("gpt-oss-120b", "b200", phase="decode", batch=128, context=4096, efficiency="calibrated")
    op = _attention(report)
    assert op.memory_time_s / op.count == pytest.approx(175.79e-6, rel=0.03)


def test_ideal_mode_has_no_attention_curves() -> None:
    # Ideal mode is the datasheet bound: one prompt of 2048 tokens, 32 layers × 2·32·256·2048·2049/2 FLOP
    # = 1.1004e12 FLOP at 989.4 TFLOP/s = 1.112 ms.
    report = rooflm.analyze("llama-3.1-8b", "h100-sxm", phase="prefill", batch=1, prompt_len=2048)
    assert _attention(report).compute_time_s == pytest.approx(32 * 2 * 32 * 256 * 2048 * 2049 / 2 / 989.4e12, rel=1e-3)


def test_ampere_decode_attention_reproduces_the_mha_measurement(tmp_path: Path) -> None:
    # microsoft/onnxruntime PR #21414, second table (A100-SXM4-80GB: its bandwidth percentages imply 2.039 TB/s):
    # FA2 paged decode, MHA 32 / 32 heads of dim 128, 64 sequences of 256 tokens at 1.443 TB/s for KV + Q + O =
    # 64·256·32·128·2·2 + 64·32·128·2·2 B = 269.5 MB, so 186.8 us per kernel. A Llama-2-7B-shaped model (MHA, 32 layers)
    # at batch 64, context 256 runs it once per layer; the line through the PR's three points fits it within 2%.
    config = json.loads((MODELS_DIR / "llama-3.1-8b" / "config.json").read_text())
    config.update(num_key_value_heads=32, max_position_embeddings=4096, rope_scaling=None)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    report = rooflm.analyze(str(path), "a100-sxm", phase="decode", batch=64, context=256, efficiency="calibrated")
    assert _attention(report).memory_time_s / 32 == pytest.approx(186.8e-6, rel=0.03)


def test_mla_decode_reproduces_flashmla_on_h100() -> None:
    # deepseek-ai/FlashMLA issue #19 (reproduced in ai-bot-pro/achatbot PR #123), H100: batch 128, mean 4096 cached
    # tokens, 16 query heads, d = 576 (512 latent + 64 RoPE), s_q = 1: 0.215 ms. DeepSeek-V3 at TP=8 has 128 / 8 = 16
    # heads per device and the same latent cache, so one layer's latent decode at batch 128, context 4096 is that
    # kernel. Memory-bound: its 2·128·16·4096·(2·512 + 64) = 1.83e10 FLOP take 28 us at FlashMLA's 660 TFLOP/s.
    report = rooflm.analyze("deepseek-v3", "h100-sxm", phase="decode", batch=128, context=4096, tp=8,
                            efficiency="calibrated")
    op = _attention(report, "attention_latent")
    assert op.kv_bytes / op.count == pytest.approx(128 * 4096 * 576 * 2)
    assert op.memory_time_s / op.count == pytest.approx(215e-6, rel=0.03)
    assert op.compute_time_s / op.count == pytest.approx(1.826e10 / 660e12, rel=0.02)


def test_a_chunks_attention_over_its_past_runs_at_the_prefill_kernels_rate() -> None:
    # A 16,384-token prompt in chunks of 8192 (the default max_num_batched_tokens): the second chunk's 8192 queries
    # attend to the first chunk's 8192 cached tokens in the prefill kernel, so that work runs at FlashAttention-3's
    # rate for 8192 query rows: tritonbench PR #1267 measured 49152·8192·8193 = 3.299e12 FLOP in 4817.44 us
    # (684.8 TFLOP/s). Priced as a decode kernel it would run at the flat bf16 fraction instead (0.80: 791 TFLOP/s).
    report = rooflm.analyze("llama-3.1-8b", "h100-sxm", phase="prefill", batch=1, prompt_len=16384,
                            efficiency="calibrated")
    past = _attention(report, "attention.past_chunks")
    rate = 49152 * 8192 * 8193 / 4817.44e-6
    assert past.compute_time_s == pytest.approx(past.flops / rate, rel=0.01)


def test_small_heads_run_flashattention4s_head_dim_64_rate_on_blackwell() -> None:
    # Dao-AILab/flash-attention PR #2605 (FA4, Blackwell), causal forward at 2048 tokens: head dim 64 (batch 16)
    # 785 TFLOP/s, head dim 128 (batch 16) 1172 TFLOP/s. gpt-oss-120b's heads have 64 dimensions: its full-attention
    # layers' prefill of one 2048-token prompt does 2·64·128·2048·2049/2 = 3.44e10 FLOP per layer (64 heads,
    # d_qk + d_v = 128) at 785 TFLOP/s; Llama-3.1-8B's heads (128) run at 1172.
    gpt = _attention(rooflm.analyze("gpt-oss-120b", "b200", phase="prefill", batch=1, prompt_len=2048,
                                    efficiency="calibrated"))
    assert gpt.flops / gpt.count == pytest.approx(2 * 64 * 128 * 2048 * 2049 / 2)
    assert gpt.compute_time_s / gpt.count == pytest.approx(2 * 64 * 128 * 2048 * 2049 / 2 / 785e12, rel=0.01)
    llama = _attention(rooflm.analyze("llama-3.1-8b", "b200", phase="prefill", batch=1, prompt_len=2048,
                                      efficiency="calibrated"))
    assert llama.flops / llama.compute_time_s == pytest.approx(1172e12, rel=0.01)
    # Hopper has no head-dim-64 entry: gpt-oss falls back to the head-dim-128 curve (FA3, 560 TFLOP/s at 2048).
    hopper = _attention(rooflm.analyze("gpt-oss-120b", "h100-sxm", phase="prefill", batch=1, prompt_len=2048,
                                       efficiency="calibrated"))
    assert hopper.flops / hopper.compute_time_s == pytest.approx(49152 * 2048 * 2049 / 368.35e-6, rel=0.01)


def test_a_devices_own_attention_bandwidth_outranks_its_class_curve(tmp_path: Path) -> None:
    # An H100 file that states its own measured attention bandwidth (memory_by_kind, as `rooflm measure` writes it):
    # decode attention is then its KV bytes at that fraction, with no class fill. Llama-3.1-70B at batch 64, context
    # 256: 64·256·8·128·2·2 B = 67.1 MB of KV per layer (+ 2.1 MB of Q and O) at 0.5 × 3.35 TB/s = 41.3 us, where the
    # class curve gives 42.8 us.
    text = (HARDWARE_DIR / "h100-sxm.toml").read_text().replace(
        "[efficiency.compute]",
        '[efficiency.memory_by_kind]\nattention = { value = 0.5, source = "my measurement" }\n\n[efficiency.compute]', 1)
    path = tmp_path / "my-h100.toml"
    path.write_text(text)
    report = rooflm.analyze("llama-3.1-70b", str(path), phase="decode", batch=64, context=256, efficiency="calibrated")
    op = _attention(report)
    per_layer_bytes = 64 * 256 * 8 * 128 * 2 * 2 + 64 * 64 * 128 * 2 * 2
    assert op.bytes / op.count == pytest.approx(per_layer_bytes)
    assert op.memory_time_s / op.count == pytest.approx(per_layer_bytes / (0.5 * 3.35e12), rel=1e-6)
