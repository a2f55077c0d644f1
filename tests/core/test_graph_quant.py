"""Per-module quantization in the step: which GEMM runs in which scheme, and the bytes that follow."""

import json

import pytest
from typer.testing import CliRunner

import rooflm
from rooflm.cli import app


def _ops(report: rooflm.Report) -> dict[str, rooflm.analyses.report.OperatorRow]:
    return {o.name: o for o in report.operators}


def test_gpt_oss_120b_native_decode_reads_5_2_gb_and_holds_60_8_gib() -> None:
    # gpt-oss-120b config: hidden 2880, 36 layers, 64 query heads and 8 KV heads of 64, 128 experts (top-4) of width
    # 2880 with biases, vocab 201,088, attention biases, sliding window 128 on every other layer. Its
    # quantization_config: mxfp4 (4-bit e2m1 + one 8-bit scale per 32 = 0.53125 B/weight) everywhere but
    # self_attn, the router, the embedding and lm_head, which stay bf16.
    r = rooflm.analyze("gpt-oss-120b", "h100-sxm", batch=1, context=4096)
    assert r.quant == "native" and r.weight_dtype == "fp4"
    ops = _ops(r)
    # Reads of one decode step at batch 1 (one token → its 4 experts), bytes over 36 layers:
    #   qkv_proj  2880 × (64·64 + 8·128) = 14,745,600 bf16 + 5120 bias → 29,501,440 → 1,062,051,840
    #   o_proj    4096 × 2880 = 11,796,480 bf16 + 2880 bias → 23,598,720 → 849,553,920
    #   router    2880 × 128 = 368,640 bf16 + 128 bias → 737,536 → 26,551,296
    #   experts   gate_up 2880 × 5760 · 0.53125 + 5760 bias · 2 = 8,824,320; down 2880 × 2880 · 0.53125 + 5760
    #             = 4,412,160; × 4 experts → 1,270,702,080 + 635,351,040
    #   lm_head   2880 × 201,088 bf16 = 1,158,266,880
    #   norms and the embedding row: (2 · 36 + 1) · 2880 · 2 + 5760 = 426,240
    #   weights: 5,002,903,296 B
    assert ops["qkv_proj"].weight_bytes == pytest.approx(1_062_051_840) and ops["qkv_proj"].scheme == "bf16"
    assert ops["o_proj"].weight_bytes == pytest.approx(849_553_920)
    assert ops["router"].weight_bytes == pytest.approx(26_551_296) and ops["router"].weight_dtype == "bf16"
    assert ops["experts.gate_up_proj"].weight_bytes == pytest.approx(1_270_702_080)
    assert (ops["experts.gate_up_proj"].scheme, ops["experts.gate_up_proj"].weight_dtype) == ("mxfp4", "fp4")
    assert ops["experts.down_proj"].weight_bytes == pytest.approx(635_351_040)
    assert ops["lm_head"].weight_bytes == pytest.approx(1_158_266_880) and ops["lm_head"].scheme == "bf16"
    assert r.totals.weight_bytes == pytest.approx(5_002_903_296)
    #   KV cache (bf16, 8 heads × (64 + 64) = 1024 values = 2048 B per token per layer): 18 full layers × 4096
    #   tokens = 150,994,944; 18 sliding layers × 128 = 4,718,592; the new token's write 36 × 2048 = 73,728.
    assert r.totals.kv_bytes == pytest.approx(155_787_264)
    # With ~11.8 MB of activations: 5.17 GB per step (2.92 GB if attention and lm_head were mxfp4 too).
    assert r.totals.bytes == pytest.approx(5.17e9, rel=0.005)
    # Held weights: all 128 experts per layer, (16,588,800 + 8,294,400) · 0.53125 + 8640 · 2 = 13,236,480 B each
    #   × 128 × 36 = 60,993,699,840; attention 36 × 53,100,160 = 1,911,605,760; router 26,551,296; norms 420,480;
    #   lm_head and the embedding table 2 × 1,158,266,880. Total 65,248,811,136 B = 60.77 GiB.
    assert r.memory.weights_bytes == pytest.approx(65_248_811_136)
    assert r.memory.weights_bytes / 2**30 == pytest.approx(60.8, abs=0.05)
    assert r.quant_modules == {"attention": "bf16", "experts": "mxfp4", "router": "bf16", "lm_head": "bf16",
                               "embedding": "bf16"}


def test_llama_w4a16_keeps_a_bf16_lm_head() -> None:
    # Decoder GEMMs per layer: qkv 4096 × 6144, o 4096 × 4096, gate_up 4096 × 28672, down 14336 × 4096 =
    # 218,103,808 weights × 32 layers = 6,979,321,856 at 4 + 16/128 bits = 0.515625 B → 3,598,712,832 B;
    # lm_head 4096 × 128,256 in bf16 = 1,050,673,152 B; norms and the embedding row 540,672 B.
    # Weights read at batch 1: 4,649,926,656 B ≈ 4.65 GB (3.87 GB if lm_head were int4 as well).
    r = rooflm.analyze("llama-3.1-8b", "h100-sxm", batch=1, context=1024, quant="w4a16")
    ops = _ops(r)
    assert (ops["lm_head"].scheme, ops["lm_head"].weight_dtype, ops["lm_head"].compute_dtype) == ("bf16",) * 3
    assert ops["lm_head"].weight_bytes == pytest.approx(1_050_673_152)
    assert ops["gate_up_proj"].scheme == "w4a16" and ops["gate_up_proj"].weight_dtype == "int4"
    assert r.totals.weight_bytes == pytest.approx(4_649_926_656)
    told = rooflm.analyze("llama-3.1-8b", "h100-sxm", batch=1, context=1024, quant="w4a16,lm_head=w4a16")
    # 525,336,576 head weights × 0.515625 = 270,876,672 B instead of 1,050,673,152.
    assert told.totals.weight_bytes == pytest.approx(4_649_926_656 - 1_050_673_152 + 270_876_672)


def test_a_mix_runs_each_class_in_its_scheme() -> None:
    r = rooflm.analyze("minimax-m2", "h200", batch=1, context=1024,
                       quant="experts=w4a8,attention=fp8,lm_head=bf16", efficiency="calibrated")
    ops = _ops(r)
    assert [ops[n].scheme for n in ("qkv_proj", "o_proj", "experts.gate_up_proj", "router", "lm_head")] == \
        ["fp8", "fp8", "w4a8", "bf16", "bf16"]
    assert ops["experts.down_proj"].compute_dtype == "int8" and ops["qkv_proj"].compute_dtype == "fp8"
    # Calibrated mode quantizes the inputs of the GEMMs with 8-bit activations, and of those only.
    assert {"qkv_proj.act_quant", "experts.gate_up_proj.act_quant"} <= set(ops)
    assert "lm_head.act_quant" not in ops and "router.act_quant" not in ops
    # MiniMax-M2 (hidden 3072, 256 experts of width 1536, 62 layers): one token's 8 experts in W4A8 read
    # 8 · 3 · 3072 · 1536 · (0.5 + 2/128) B per layer = 58,392,576 → × 62 = 3,620,339,712 B.
    expert_bytes = ops["experts.gate_up_proj"].weight_bytes + ops["experts.down_proj"].weight_bytes
    assert expert_bytes == pytest.approx(3_620_339_712)


def test_catalog_models_default_to_their_checkpoint() -> None:
    assert rooflm.analyze("minimax-m2", "h200", batch=1).quant == "native"
    assert rooflm.analyze("llama-3.1-8b", "h100-sxm", batch=1).quant == "bf16"  # no quantization_config
    explicit = rooflm.analyze("gpt-oss-20b", "h100-sxm", batch=1, quant="native")
    assert explicit.totals == rooflm.analyze("gpt-oss-20b", "h100-sxm", batch=1).totals


def test_dp8_at_batch1_keeps_fp8_qkv_at_2_flop_per_byte() -> None:
    # One sequence on 8 replicas runs whole on one of them: qkv_proj does 2 · 4096 · 6144 FLOP for 4096 · 6144
    # fp8 weights (+ 6144 fp32 channel scales, 4096 + 6144 activations): ≈ 2 FLOP/B, not 2/8.
    r = rooflm.analyze("llama-3.1-8b", "h100-sxm", batch=1, context=1024, quant="fp8", dp=8)
    assert _ops(r)["qkv_proj"].arithmetic_intensity == pytest.approx(2.0, rel=0.01)


def test_analyze_json_names_each_operators_scheme() -> None:
    out = CliRunner().invoke(app, ["analyze", "--model", "gpt-oss-20b", "--quant", "native", "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    rows = {o["name"]: o for o in doc["operators"]}
    assert (rows["experts.down_proj"]["scheme"], rows["experts.down_proj"]["weight_dtype"]) == ("mxfp4", "fp4")
    assert rows["qkv_proj"]["weight_dtype"] == "bf16" and rows["attention"]["scheme"] is None
    assert doc["quant_modules"]["experts"] == "mxfp4"


def test_quantized_kv_cache_reads_its_scales() -> None:
    # int8 KV with one fp16 scale + fp16 zero per head per token: 1 + 4/128 B per element on Llama (head_dim 128).
    i8 = rooflm.analyze("llama-3.1-8b", "h100-sxm", batch=8, context=8192, kv_dtype="int8")
    f8 = rooflm.analyze("llama-3.1-8b", "h100-sxm", batch=8, context=8192, kv_dtype="fp8")
    assert i8.totals.kv_bytes / f8.totals.kv_bytes == pytest.approx(1 + 4 / 128)
    assert i8.memory.kv_cache_bytes / f8.memory.kv_cache_bytes == pytest.approx(1 + 4 / 128)


def test_a_device_without_a_modules_roof_is_refused() -> None:
    with pytest.raises(rooflm.RooflmError, match="fp8") as err:
        rooflm.analyze("llama-3.1-8b", "a100-sxm", quant="bf16,attention=fp8")
    assert err.value.field in ("quant", "hardware")


def test_quant_comparison_and_explain_resolve_native() -> None:
    from rooflm.analyses.quant_comparison import compare_quant
    from rooflm.explain.prose import explain

    cmp = compare_quant("gpt-oss-20b", "h100-sxm", schemes=["native", "mxfp4"], batch=[1], context=[1024])
    single = rooflm.analyze("gpt-oss-20b", "h100-sxm", batch=1, context=1024, efficiency="calibrated")  # quant's mode
    assert float(cmp.results["native"].columns["time_s"][0]) == pytest.approx(single.totals.time_s)
    # Named mxfp4 also stores attention in fp4 (the checkpoint keeps it bf16): fewer bytes, faster at batch 1.
    assert float(cmp.speedup["mxfp4"][0]) > 1.0
    # explain's levers start from the checkpoint's scheme (mxfp4 experts, 0.53 B per weight), not from bf16: fp8
    # (1 B per weight) is no weight-quantization lever there.
    ex = explain("gpt-oss-20b", "h100-sxm", batch=1)
    assert ex.to_json_dict()["quant"] == "native"
    assert not any(lever.change == "--quant fp8" for lever in ex.levers)
