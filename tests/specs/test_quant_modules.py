"""Per-module quantization: a checkpoint's quantization_config read into the ModelSpec, `native`, and mixes."""

from typing import Any

import pytest

import rooflm
from rooflm.specs.hf_config import load_model, model_from_text
from rooflm.specs.quant import kv_scale_bytes, load_scheme, parse_mix

LLAMA_8B: dict[str, Any] = {
    "model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072,
}


def _with(quantization_config: dict[str, Any]) -> rooflm.ModelSpec:
    return model_from_text({**LLAMA_8B, "quantization_config": quantization_config}, "q")


def test_catalog_checkpoints_read_their_quantization_config() -> None:
    # gpt-oss: quant_method mxfp4, modules_to_not_convert = self_attn, mlp.router, embed_tokens, lm_head.
    oss = load_model("gpt-oss-120b").quantization
    assert oss is not None and (oss.method, oss.weight, oss.activation) == ("mxfp4", "fp4", "bf16")
    assert (oss.scale_group, oss.scale_bits) == (32, 8)  # OCP MX: one e8m0 scale per 32 elements
    assert set(oss.bf16_modules) == {"attention", "router", "embedding", "lm_head"}
    # MiniMax-M2: fp8, weight_block_size [128, 128], modules_to_not_convert = gate, e_score_correction_bias, lm_head.
    mm = load_model("minimax-m2").quantization
    assert mm is not None and (mm.weight, mm.activation, mm.scale_group, mm.scale_bits, mm.k_block) == \
        ("fp8", "fp8", 128 * 128, 32, 128)
    assert set(mm.bf16_modules) == {"router", "embedding", "lm_head"}
    assert load_model("llama-3.1-8b").quantization is None


def test_native_is_the_checkpoints_scheme_per_module() -> None:
    oss = load_scheme("native", model=load_model("gpt-oss-120b"))
    assert oss.label == "native" and oss.weight == "fp4"  # headline: the experts, most of the parameters
    assert oss.for_module("experts").name == "mxfp4"
    assert {oss.for_module(m).name for m in ("attention", "router", "lm_head", "embedding")} == {"bf16"}
    ds = load_scheme("native", model=load_model("deepseek-v3"))
    assert {ds.for_module(m).name for m in ("attention", "mlp", "shared_experts", "experts")} == {"fp8-block"}
    assert ds.for_module("lm_head").name == "bf16"  # not in its config, but no engine quantizes the LM head
    # Without a quantization_config, native is plain bf16 (same name, same numbers).
    assert load_scheme("native", model=load_model("llama-3.1-8b")).label == "bf16"


def test_gptq_and_awq_checkpoints() -> None:
    # GPTQ 4-bit, groups of 128, symmetric: int4 + one fp16 scale per 128 = 4.125 bits; lm_head stays bf16.
    gptq = load_scheme("native", model=_with({"quant_method": "gptq", "bits": 4, "group_size": 128, "sym": True}))
    assert gptq.for_module("mlp").weight_bytes_per_element(4096) == pytest.approx(0.5 + 2 / 128)
    assert gptq.for_module("lm_head").name == "bf16"
    # AWQ: asymmetric (zero_point true), so a 4-bit zero point per group too: 4 + (16 + 4) / 128 bits.
    awq = load_scheme("native", model=_with({"quant_method": "awq", "bits": 4, "group_size": 128,
                                             "zero_point": True, "version": "gemm"}))
    assert awq.for_module("attention").weight_bytes_per_element(4096) == pytest.approx((4 + 20 / 128) / 8)
    # group_size -1: one scale per output channel (K weights); GPTQ lm_head: true quantizes the head too.
    chan = load_scheme("native", model=_with({"quant_method": "gptq", "bits": 8, "group_size": -1, "lm_head": True}))
    assert chan.for_module("mlp").weight_bytes_per_element(4096) == pytest.approx(1 + 2 / 4096)
    assert chan.for_module("lm_head").weight == "int8"


def test_compressed_tensors_and_modelopt() -> None:
    # llm-compressor FP8_DYNAMIC: fp8 weights per channel, dynamic fp8 activations, ignore lm_head; fp8 KV cache.
    ct = _with({"quant_method": "compressed-tensors", "ignore": ["lm_head"],
                "config_groups": {"group_0": {"targets": ["Linear"],
                                              "weights": {"num_bits": 8, "type": "float", "strategy": "channel"},
                                              "input_activations": {"num_bits": 8, "type": "float",
                                                                    "dynamic": True}}},
                "kv_cache_scheme": {"num_bits": 8, "type": "float", "strategy": "tensor"}})
    scheme = load_scheme("native", model=ct)
    assert scheme.for_module("mlp").name == "fp8" and scheme.kv == "fp8"
    # W4A16 group 128 (weight-only: no input_activations).
    w4 = _with({"quant_method": "compressed-tensors", "config_groups": {"g": {
        "weights": {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128}}}})
    assert load_scheme("native", model=w4).for_module("mlp").name == "w4a16"
    # ModelOpt NVFP4 (hf_quant_config nests it under "quantization"): fp4 in blocks of 16 with e4m3 scales.
    mo = _with({"quant_method": "modelopt", "quantization": {"quant_algo": "NVFP4", "group_size": 16,
                                                             "kv_cache_quant_algo": "FP8",
                                                             "exclude_modules": ["lm_head", "model.layers.*.self_attn*"]}})
    nv = load_scheme("native", model=mo)
    assert nv.for_module("mlp").name == "fp4" and nv.for_module("attention").name == "bf16" and nv.kv == "fp8"


def test_unmodelled_methods_load_but_native_is_refused() -> None:
    model = _with({"quant_method": "bitsandbytes", "load_in_4bit": True})
    with pytest.raises(rooflm.InvalidInputError, match="not modelled") as err:
        load_scheme("native", model=model)
    assert err.value.field == "quant"
    assert load_scheme("bf16", model=model).name == "bf16"


@pytest.mark.parametrize("config", [
    {"quant_method": 7},
    {"quant_method": "gptq", "bits": 3},
    {"quant_method": "fp8", "weight_block_size": [128]},
    {"quant_method": "mxfp4", "modules_to_not_convert": "lm_head"},
    {"bits": 4},
])
def test_malformed_quantization_configs_name_the_key(config: dict[str, Any]) -> None:
    with pytest.raises(rooflm.InvalidInputError, match="quantization_config") as err:
        _with(config)
    assert err.value.field == "model"


def test_layer_specific_ignores_do_not_cover_a_whole_class() -> None:
    # DeepSeek-style: one layer's projection left unquantized says nothing about the other 31.
    m = _with({"quant_method": "fp8", "weight_block_size": [128, 128],
               "modules_to_not_convert": ["model.layers.0.self_attn.q_proj", "re:.*mlp.gate$"]})
    assert m.quantization is not None and set(m.quantization.bf16_modules) == {"router", "embedding", "lm_head"}


def test_mix_syntax() -> None:
    assert parse_mix("experts=w4a8,attention=fp8,mlp=bf16,lm_head=bf16") == (
        None, {"experts": "w4a8", "attention": "fp8", "mlp": "bf16", "lm_head": "bf16"}, None)
    assert parse_mix("fp8+kv-fp8") == ("fp8", {}, "fp8")  # the comparison's scheme+kv-dtype reads the same
    assert parse_mix("w4a16, head=w4a16, kv=int8") == ("w4a16", {"lm_head": "w4a16"}, "int8")
    for bad, word in (("fp8,w4a16", "two base"), ("expert=fp8,experts=w4a8", "twice"), ("fp8,,", "empty"),
                      ("ffn=fp8", "module class")):
        with pytest.raises(rooflm.InvalidInputError, match=word) as err:
            parse_mix(bad)
        assert err.value.field == "quant"
    with pytest.raises(rooflm.UnknownNameError, match="w4a16"):
        load_scheme("experts=w4a61", model=load_model("minimax-m2"))


def test_a_mix_applies_per_class_on_top_of_native() -> None:
    mm = load_model("minimax-m2")
    mix = load_scheme("experts=w4a8,attention=fp8,lm_head=fp8", model=mm)
    assert mix.label == "native+attention=fp8+experts=w4a8+lm_head=fp8"
    assert [mix.for_module(m).name for m in ("attention", "experts", "lm_head", "router")] == \
        ["fp8", "w4a8", "fp8", "bf16"]
    # The experts hold most of the parameters: the headline scheme (and ridge) is theirs.
    assert mix.compute == "int8"


def test_weight_only_schemes_keep_lm_head_in_bf16_unless_told() -> None:
    llama = load_model("llama-3.1-8b")
    for name in ("w4a16", "w8a16", "mxfp4"):
        assert load_scheme(name, model=llama).for_module("lm_head").name == "bf16"
    assert load_scheme("w4a16,lm_head=w4a16", model=llama).for_module("lm_head").name == "w4a16"
    # W8A8, W4A8 and fp4 checkpoints keep it too (llm-compressor's FP8/INT8 configs list lm_head in "ignore",
    # TensorRT Model Optimizer disables its lm_head quantizers); a mix that names it quantizes it.
    for name in ("fp8", "fp8-block", "int8", "w4a8", "fp4"):
        assert load_scheme(name, model=llama).for_module("lm_head").name == "bf16", name
    assert load_scheme("fp8,lm_head=fp8", model=llama).for_module("lm_head").name == "fp8"


def test_kv_cache_scales() -> None:
    # fp8: per-tensor scales (one per layer): nothing per token. int8: one fp16 scale + one fp16 zero point per
    # head per token: 32 bits per head_dim elements (128 for Llama: 1/32 B per element; 64 for gpt-oss: 1/16 B).
    assert kv_scale_bytes("fp8") == 0
    assert load_scheme("bf16", "int8", model=load_model("llama-3.1-8b")).kv_bytes == pytest.approx(1 + 4 / 128)
    assert load_scheme("bf16", "int8", model=load_model("gpt-oss-120b")).kv_bytes == pytest.approx(1 + 4 / 64)
    assert load_scheme("bf16", "fp4").kv_bytes == pytest.approx(0.5 + 1 / 16)  # NVFP4: e4m3 scale per 16
