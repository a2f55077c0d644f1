"""config.json readers of the first families rooflm modelled: Llama-like dense models, Mixtral, Qwen-MoE, DeepSeek,
MiniMax-M2, gpt-oss and Gemma. Each reads only the keys its family's transformers code reads, with the same defaults,
so that parameter counts match transformers' own (tests/test_against_torch.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from rooflm.errors import UnsupportedModelError
from rooflm.specs.hf_build import gqa, layer_windows, moe_spec, sliding_window, sparse_layers, spec
from rooflm.specs.hf_fields import Config
from rooflm.specs.model import AttentionSpec, MlpSpec, ModelSpec


def _dense(c: Config, name: str) -> ModelSpec:
    model_type = c.raw["model_type"]
    bias = c.flag("attention_bias")
    # Qwen2 always has q/k/v biases (not in its config); Llama's attention_bias also covers o_proj. Phi-3 fuses
    # q/k/v and gate/up into single matrices of the same total size, without biases.
    attention = gqa(c, qkv_bias=bias or model_type == "qwen2", o_bias=bias and model_type == "llama",
                     qk_norm="head" if model_type == "qwen3" else "none")
    # Mistral and Phi-3 apply their sliding_window (if any) on every layer.
    window = sliding_window(c) if model_type in ("mistral", "phi3") else None
    layers = [(False, window)] * c.int("num_hidden_layers")
    return spec(c, name, attention, layers, MlpSpec(intermediate_size=c.int("intermediate_size"),
                                                     bias=c.flag("mlp_bias")), None)


def _mixtral(c: Config, name: str) -> ModelSpec:
    moe = moe_spec(c, "num_local_experts", MlpSpec(intermediate_size=c.int("intermediate_size")))
    layers = [(True, sliding_window(c))] * c.int("num_hidden_layers")
    return spec(c, name, gqa(c, qkv_bias=False, o_bias=False), layers, None, moe)


def _qwen3_moe(c: Config, name: str) -> ModelSpec:
    n = c.int("num_hidden_layers")
    per_layer = [(moe, None) for moe in sparse_layers(c, n)]
    moe = moe_spec(c, "num_experts", MlpSpec(intermediate_size=c.int("moe_intermediate_size")))
    mlp = MlpSpec(intermediate_size=c.int("intermediate_size")) if not all(m for m, _ in per_layer) else None
    return spec(c, name, gqa(c, qkv_bias=c.flag("attention_bias"), o_bias=False, qk_norm="head"), per_layer,
                 mlp, moe)


def _qwen2_moe(c: Config, name: str) -> ModelSpec:
    """Qwen1.5/Qwen2-MoE: routed experts plus one shared expert whose output a sigmoid gate (h→1) scales."""
    n = c.int("num_hidden_layers")
    # transformers 5's default layer_types: odd layers below max_window_layers slide, when use_sliding_window.
    use_window, below = c.flag("use_sliding_window"), c.int("max_window_layers", 28, low=0)
    default = ["sliding_attention" if (i + 1) % 2 and i < below and use_window else "full_attention" for i in range(n)]
    windows = layer_windows(c, n, default) if use_window else [None] * n
    per_layer = list(zip(sparse_layers(c, n), windows, strict=True))
    moe = moe_spec(c, "num_experts", MlpSpec(intermediate_size=c.int("moe_intermediate_size")),
               shared=MlpSpec(intermediate_size=c.int("shared_expert_intermediate_size")), shared_gate=True)
    mlp = MlpSpec(intermediate_size=c.int("intermediate_size")) if not all(m for m, _ in per_layer) else None
    return spec(c, name, gqa(c, qkv_bias=c.flag("qkv_bias", True), o_bias=False), per_layer, mlp, moe)


def _deepseek(c: Config, name: str) -> ModelSpec:
    n_heads = c.int("num_attention_heads")
    nope, rope = c.int("qk_nope_head_dim"), c.int("qk_rope_head_dim")
    attention = AttentionSpec(kind="mla", num_q_heads=n_heads, num_kv_heads=n_heads, head_dim=nope + rope,
                              v_head_dim=c.int("v_head_dim"), rotary_dim=rope, q_lora_rank=c.opt_int("q_lora_rank") or 0,
                              kv_lora_rank=c.int("kv_lora_rank"), qk_nope_head_dim=nope, qk_rope_head_dim=rope)
    n = c.int("num_hidden_layers")
    first_dense, freq = c.int("first_k_dense_replace", 0, low=0), c.int("moe_layer_freq", 1)
    per_layer = [(i >= first_dense and i % freq == 0, None) for i in range(n)]
    expert = MlpSpec(intermediate_size=c.int("moe_intermediate_size"))
    shared = c.opt_int("n_shared_experts", low=0) or 0
    moe = moe_spec(c, "n_routed_experts", expert,
               shared=MlpSpec(intermediate_size=shared * expert.intermediate_size) if shared else None,
               score_correction_bias=c.text("topk_method") == "noaux_tc")
    return spec(c, name, attention, per_layer, MlpSpec(intermediate_size=c.int("intermediate_size")), moe)


def _minimax_m2(c: Config, name: str) -> ModelSpec:
    qk_norm: Literal["full", "none"] = "full" if c.flag("use_qk_norm") else "none"
    moe = moe_spec(c, "num_local_experts", MlpSpec(intermediate_size=c.int("intermediate_size")),
               score_correction_bias=c.flag("use_routing_bias"))
    layers = [(True, None)] * c.int("num_hidden_layers")
    return spec(c, name, gqa(c, qkv_bias=False, o_bias=False, qk_norm=qk_norm), layers, None, moe)


def _gpt_oss(c: Config, name: str) -> ModelSpec:
    n = c.int("num_hidden_layers")
    default = ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(n)]
    per_layer = [(True, w) for w in layer_windows(c, n, default)]
    moe = moe_spec(c, "num_local_experts", MlpSpec(intermediate_size=c.int("intermediate_size"), bias=True),
               router_bias=True)
    bias = c.flag("attention_bias", True)
    return spec(c, name, gqa(c, qkv_bias=bias, o_bias=bias, sinks=True), per_layer, None, moe)


# The defaults of transformers' Gemma2Config and Gemma3TextConfig for the keys read here: Gemma 3's published
# configs leave most of them out (google/gemma-3-4b-it's text_config gives only its widths, layers and window).
_GEMMA_DEFAULTS: dict[str, dict[str, Any]] = {
    "gemma2": {"vocab_size": 256_000, "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26,
               "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "max_position_embeddings": 8192,
               "tie_word_embeddings": True, "sliding_window": 4096},
    "gemma3": {"vocab_size": 262_208, "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26,
               "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "max_position_embeddings": 131_072,
               "tie_word_embeddings": True, "sliding_window": 4096},
}


def _gemma_config(c: Config) -> Config:
    """The language model's config with transformers' defaults filled in. The multimodal Gemma 3 ("gemma3")
    nests it under text_config and keeps tie_word_embeddings at the top; only its language model is modelled."""
    if c.raw["model_type"] == "gemma2":
        return Config({**_GEMMA_DEFAULTS["gemma2"], **c.raw}, c.where)
    if c.raw["model_type"] == "gemma3_text":
        return Config({**_GEMMA_DEFAULTS["gemma3"], **c.raw}, c.where)
    text = c.section("text_config") or {}
    tie = c.flag("tie_word_embeddings", True)
    return Config({**_GEMMA_DEFAULTS["gemma3"], **text, "model_type": "gemma3", "tie_word_embeddings": tie,
                    "quantization_config": c.raw.get("quantization_config")}, f"{c.where} text_config")


def _gemma(outer: Config, name: str) -> ModelSpec:
    """Gemma 2 and 3: local (sliding-window) and global layers interleaved, four RMSNorms per layer, a tied
    embedding scaled by √h (no parameters). Logit soft-capping (Gemma 2) is a tanh per score: a few element-wise
    FLOPs that the cost model leaves out, as it does the other activations inside attention."""
    c = _gemma_config(outer)
    if c.flag("use_bidirectional_attention"):
        raise UnsupportedModelError(f"{c.where}: bidirectional attention (an embedding model) is not supported",
                                    field="model")
    n = c.int("num_hidden_layers")
    gemma3 = c.raw["model_type"] != "gemma2"
    # Gemma 2 alternates local and global layers; Gemma 3 has one global layer in every sliding_window_pattern.
    pattern = c.int("sliding_window_pattern", 6) if gemma3 else 2
    default = ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(n)]
    per_layer = [(False, w) for w in layer_windows(c, n, default)]
    bias = c.flag("attention_bias")
    attention = gqa(c, qkv_bias=bias, o_bias=bias, qk_norm="head" if gemma3 else "none")
    return spec(c, name, attention, per_layer, MlpSpec(intermediate_size=c.int("intermediate_size")), None,
                 norms_per_layer=4)


READERS: dict[str, Callable[[Config, str], ModelSpec]] = {
    "llama": _dense, "mistral": _dense, "qwen2": _dense, "qwen3": _dense, "phi3": _dense,
    "gemma2": _gemma, "gemma3_text": _gemma, "gemma3": _gemma,
    "mixtral": _mixtral, "qwen2_moe": _qwen2_moe, "qwen3_moe": _qwen3_moe, "deepseek_v3": _deepseek,
    "deepseek_v2": _deepseek, "minimax_m2": _minimax_m2, "gpt_oss": _gpt_oss,
}
