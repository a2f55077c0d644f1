"""Hand-checkable figures for Llama-3.1-8B on H100 SXM (ideal mode unless stated)."""

import numpy as np
import pytest

import rooflm


def _op(report: rooflm.Report, name: str):
    return next(o for o in report.operators if o.name == name)


def test_batch1_decode_reads_every_weight_but_the_embedding_once(llama8b: rooflm.ModelSpec) -> None:
    # (8,030,261,248 - 525,336,576 embedding) * 2 B = 15,009,849,344 B / 3.35e12 B/s = 4.4806 ms.
    # At context 128 the KV cache adds 32*128*2*8*128*2 = 16.8 MB and activations are ~10 MB: < 0.2%.
    r = rooflm.analyze(llama8b, "h100-sxm", phase="decode", batch=1, context=128)
    assert r.totals.time_s == pytest.approx(4.4806e-3, rel=0.005)
    assert r.totals.bound == "memory"
    assert r.totals.arithmetic_intensity == pytest.approx(1.0, abs=0.05)
    assert r.totals.tokens_per_s == pytest.approx(1 / r.totals.time_s)


def test_decode_gemm_intensity_grows_linearly_with_batch(llama8b: rooflm.ModelSpec) -> None:
    # AI of a bf16 GEMM at M = B: 2BKN / (2KN + 2B(K+N)) ~= B while B << K, N.
    for b in (1, 4, 16, 64):
        gemm = _op(rooflm.analyze(llama8b, "h100-sxm", batch=b, context=128), "gate_up_proj")
        assert gemm.arithmetic_intensity == pytest.approx(b, rel=0.03)


def test_critical_batch_bf16_and_w4a16(llama8b: rooflm.ModelSpec) -> None:
    # bf16: B* = ridge / (1 - ridge*(1/K + 1/N)) per GEMM: gate_up (4096x28672) 322, qkv 336, o 346;
    # together ~326. W4A16 (0.515625 B/weight) keeps lm_head in bf16, as GPTQ/AWQ checkpoints do. Together the GEMMs
    # cross where B*F/ridge = W + B*c, i.e. B* = W / (F/ridge - c), per token:
    #   W = 6,979,321,856 decoder-GEMM weights * 0.515625 + 525,336,576 lm_head weights * 2 = 4,649,385,984 B
    #   F = 2 * (6,979,321,856 + 525,336,576) = 15,009,316,864 FLOP
    #   c = activations in + out in bf16: 32 * 2 * (10240 + 8192 + 32768 + 18432) + 2 * (4096 + 128256) = 4,721,152 B
    #   B* = 4,649,385,984 / (15,009,316,864 / 295.34 - 4,721,152) = 100.9 -> 101 (84 with an int4 lm_head).
    bf16 = rooflm.critical_batch(llama8b, "h100-sxm", context=128)
    assert 300 <= bf16.critical_batch <= 350
    w4 = rooflm.critical_batch(llama8b, "h100-sxm", context=128, quant="w4a16")
    assert w4.critical_batch == 101
    assert bf16.ridge_intensity == pytest.approx(295.34, abs=0.01)


def test_critical_batch_agrees_with_brute_force(llama8b: rooflm.ModelSpec) -> None:
    cb = rooflm.critical_batch(llama8b, "h100-sxm", context=128).critical_batch
    for b, compute_bound in ((cb - 1, False), (cb, True)):
        r = rooflm.analyze(llama8b, "h100-sxm", batch=b, context=128)
        gemms = [o for o in r.operators if o.op_class == "weight_gemm"]
        assert (sum(o.compute_time_s for o in gemms) >= sum(o.memory_time_s for o in gemms)) is compute_bound


def test_decode_attention_intensity_stays_at_the_gqa_ratio(llama8b: rooflm.ModelSpec) -> None:
    # 32 query heads / 8 KV heads = 4 FLOP/B with a bf16 cache, at any batch.
    for b in (1, 64, 512):
        attn = _op(rooflm.analyze(llama8b, "h100-sxm", batch=b, context=4096), "attention")
        assert attn.arithmetic_intensity == pytest.approx(4.0, rel=0.01)
        assert attn.bound == "memory"


def test_prefill_2048_is_compute_bound_with_expected_flops(llama8b: rooflm.ModelSpec) -> None:
    # 2 * non-embedding params * tokens + causal attention 4 * L(L+1)/2 * Hq * d per layer;
    # the last-token lm_head (1 GFLOP) and element-wise ops are < 0.1% of 29.7 TFLOP.
    r = rooflm.analyze(llama8b, "h100-sxm", phase="prefill", batch=1, prompt_len=2048)
    tokens = 2048
    attention = 32 * 4 * 32 * 128 * 2048 * 2049 / 2
    expected = 2 * llama8b.non_embedding_params * tokens + attention
    assert r.totals.flops == pytest.approx(expected, rel=0.001)
    assert r.totals.bound == "compute"


def test_e2e_is_prefill_plus_growing_decode_steps(llama8b: rooflm.ModelSpec) -> None:
    r = rooflm.analyze(llama8b, "h100-sxm", phase="e2e", batch=4, prompt_len=512, gen_len=4)
    prefill = rooflm.analyze(llama8b, "h100-sxm", phase="prefill", batch=4, prompt_len=512).totals.time_s
    steps = [rooflm.analyze(llama8b, "h100-sxm", batch=4, context=512 + i).totals.time_s for i in (1, 2, 3)]
    assert r.totals.ttft_s == pytest.approx(prefill)
    assert r.totals.tpot_s == pytest.approx(np.mean(steps))
    assert r.totals.time_s == pytest.approx(prefill + sum(steps))
    assert r.totals.output_tokens_per_s == pytest.approx(4 * 4 / r.totals.time_s)


def test_quantized_weights_and_kv_change_the_right_bytes(llama8b: rooflm.ModelSpec) -> None:
    base = rooflm.analyze(llama8b, "h100-sxm", batch=1, context=128)
    w4 = rooflm.analyze(llama8b, "h100-sxm", batch=1, context=128, quant="w4a16")
    # 4.125 / 16 bits per decoder GEMM weight; lm_head (4096 x 128256) and the norms stay bf16 under W4A16:
    #   bf16: 6,979,321,856 * 2 + 525,336,576 * 2 + 540,672 (norms, one embedding row) = 15,009,857,536 B
    #   W4A16: 6,979,321,856 * 0.515625 + 525,336,576 * 2 + 540,672 = 4,649,926,656 B -> 3.228x fewer.
    assert base.totals.weight_bytes == pytest.approx(15_009_857_536)
    assert w4.totals.weight_bytes == pytest.approx(4_649_926_656)
    kv8 = rooflm.analyze(llama8b, "h100-sxm", batch=64, context=32768, kv_dtype="fp8")
    kv16 = rooflm.analyze(llama8b, "h100-sxm", batch=64, context=32768)
    assert kv16.totals.kv_bytes / kv8.totals.kv_bytes == pytest.approx(2.0)
    assert _op(kv8, "qkv_proj").time_s == pytest.approx(_op(kv16, "qkv_proj").time_s)


def test_calibrated_mode_is_slower_and_shows_overhead(llama8b: rooflm.ModelSpec) -> None:
    ideal = rooflm.analyze(llama8b, "h100-sxm", batch=1, context=128)
    # Eager launches and no CPU step cost, to isolate the kernels (the engine's defaults are tested in test_engine).
    cal = rooflm.analyze(llama8b, "h100-sxm", batch=1, context=128, efficiency="calibrated", cuda_graphs=False,
                         step_overhead_s=0.0)
    # Memory-bound at 81% of the bandwidth: 4.48 ms / 0.81 = 5.53 ms, plus 4 us per kernel launch, plus the decode
    # attention's fixed 16 us per layer (split-KV merge and page walks: the FA2 paged-decode fit on H100 in
    # data/kernels.toml, onnxruntime PR #21414), 32 × 16 us = 0.51 ms: its 0.5 MB of KV per layer is nothing.
    kernels = sum(o.count for o in cal.operators)
    attention_fill = 32 * 16e-6
    assert cal.totals.time_s == pytest.approx(ideal.totals.time_s / 0.81 + kernels * 4e-6 + attention_fill, rel=0.01)
    assert cal.totals.overhead_time_s == pytest.approx(kernels * 4e-6)


def test_memory_fit_and_max_batch(llama8b: rooflm.ModelSpec) -> None:
    r = rooflm.analyze(llama8b, "h100-sxm", batch=1, context=8192)
    # bf16 weights 16.06 GB; KV 128 KiB/token * 8192 = 1.07 GB per sequence -> ~59 sequences in 80 GB.
    assert r.memory.weights_bytes == pytest.approx(8_030_261_248 * 2, rel=1e-6)
    mb = r.memory.max_batch
    assert 55 <= mb <= 60
    assert rooflm.analyze(llama8b, "h100-sxm", batch=mb, context=8192).memory.fits
    over = rooflm.analyze(llama8b, "h100-sxm", batch=mb + 1, context=8192).memory
    assert not over.fits and over.shortfall_bytes > 0


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"batch": 0}, "batch must be a positive integer"),
    ({"prompt_len": -5}, "^prompt_len must be a positive integer"),  # the keyword (the CLI: prompt-len)
    ({"context": 200_000}, "exceeds the model's maximum"),
    ({"phase": "train"}, "phase must be one of"),
    ({"efficiency": "fast"}, "efficiency 'fast': use ideal or calibrated"),
    ({"quant": "fp8", "hardware": "a100-sxm"}, "no fp8 compute roof"),
])
def test_user_mistakes_raise_typed_errors(llama8b: rooflm.ModelSpec, kwargs: dict, match: str) -> None:
    args = {"hardware": "h100-sxm", **kwargs}
    with pytest.raises(rooflm.RooflmError, match=match):
        rooflm.analyze(llama8b, **args)
