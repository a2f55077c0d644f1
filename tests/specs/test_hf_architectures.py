"""Gemma 2, Gemma 3, Phi-3 and Qwen2-MoE: parameter counts equal transformers' own, on models built on the meta
device from transformers' default configs (the reference sizes: Gemma2Config() is gemma-2-2b, Phi3Config() is
Phi-3-mini, Qwen2MoeConfig() is Qwen1.5-MoE-A2.7B) and from tiny variants of each family's options."""

from __future__ import annotations

from typing import Any

import pytest

import rooflm
from rooflm.specs.hf_config import from_hf_config

TINY = {"hidden_size": 64, "num_hidden_layers": 6, "num_attention_heads": 4, "num_key_value_heads": 2,
        "intermediate_size": 128, "vocab_size": 256, "max_position_embeddings": 512}
QWEN2_MOE = {"model_type": "qwen2_moe", **TINY, "moe_intermediate_size": 32, "shared_expert_intermediate_size": 96,
             "num_experts": 8, "num_experts_per_tok": 2}
VARIANTS: dict[str, dict[str, Any]] = {
    "gemma2": {"model_type": "gemma2", **TINY, "head_dim": 32, "sliding_window": 64},
    "gemma2-untied-bias": {"model_type": "gemma2", **TINY, "head_dim": 16, "tie_word_embeddings": False,
                           "attention_bias": True},
    "gemma3_text": {"model_type": "gemma3_text", **TINY, "head_dim": 32, "sliding_window": 64},
    "gemma3_text-pattern-3": {"model_type": "gemma3_text", **TINY, "head_dim": 16, "sliding_window_pattern": 3},
    # Phi3Config's pad and eos tokens are 32000: the vocabulary must hold them.
    "phi3": {"model_type": "phi3", **TINY, "vocab_size": 32064},
    "phi3-window-partial-rotary": {"model_type": "phi3", **TINY, "vocab_size": 32064, "sliding_window": 32,
                                   "partial_rotary_factor": 0.75, "tie_word_embeddings": True},
    "qwen2_moe": QWEN2_MOE,
    "qwen2_moe-sparse-step-dense-layers": {**QWEN2_MOE, "decoder_sparse_step": 2, "mlp_only_layers": [1, 2]},
    "qwen2_moe-no-qkv-bias": {**QWEN2_MOE, "qkv_bias": False},
}
DEFAULTS = {"gemma2": "Gemma2Config", "gemma3_text": "Gemma3TextConfig", "phi3": "Phi3Config",
            "qwen2_moe": "Qwen2MoeConfig"}


def _hf_param_count(config: Any, torch: Any, transformers: Any) -> int:
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_param_counts_equal_transformers(variant: str, torch: Any, transformers: Any) -> None:
    cfg = VARIANTS[variant]
    config = transformers.AutoConfig.for_model(**cfg)
    assert from_hf_config(cfg, variant).total_params == _hf_param_count(config, torch, transformers)


@pytest.mark.parametrize("model_type", list(DEFAULTS))
def test_default_config_param_counts_equal_transformers(model_type: str, torch: Any, transformers: Any) -> None:
    config = getattr(transformers, DEFAULTS[model_type])()
    assert from_hf_config(config.to_dict(), model_type).total_params == _hf_param_count(config, torch, transformers)


def test_gemma2_2b_is_the_published_size(transformers: Any) -> None:
    # Gemma2Config() is gemma-2-2b: embedding 256000*2304 = 589,824,000 (tied); per layer q/o 2304*2048 each,
    # k/v 2304*1024 each = 14,155,776; MLP 3*2304*9216 = 63,700,992; four norms 9,216 -> 77,865,984 x 26 =
    # 2,024,515,584; final norm 2,304. Sum 2,614,341,888 ("2.6B" on the gemma-2-2b card).
    m = from_hf_config(transformers.Gemma2Config().to_dict(), "gemma-2-2b")
    assert m.total_params == 2_614_341_888
    # Every other layer is local: layers 0, 2, ... slide over 4,096 tokens, 1, 3, ... are global.
    assert sorted((g.count, g.sliding_window or 0) for g in m.layers) == [(13, 0), (13, 4096)]


def test_gemma3_one_global_layer_in_six() -> None:
    m = from_hf_config({"model_type": "gemma3_text", **TINY, "num_hidden_layers": 12, "sliding_window": 64}, "g3")
    # Layers 5 and 11 are global ((i + 1) % 6 == 0), the other ten local.
    assert sorted((g.count, g.sliding_window or 0) for g in m.layers) == [(2, 0), (10, 64)]
    assert m.attention.qk_norm == "head" and m.tie_word_embeddings


def test_gemma3_layer_types_override_the_pattern() -> None:
    types = ["full_attention"] * 4 + ["sliding_attention"] * 2
    m = from_hf_config({"model_type": "gemma3_text", **TINY, "layer_types": types, "sliding_window": 64}, "g3")
    assert sorted((g.count, g.sliding_window or 0) for g in m.layers) == [(2, 64), (4, 0)]


def test_multimodal_gemma3_reads_its_text_config(torch: Any, transformers: Any) -> None:
    # Shaped like google/gemma-3-4b-it's config.json: the language model's sizes under text_config, most keys
    # left to Gemma3TextConfig's defaults, the vision tower beside it (not modelled).
    text = {"hidden_size": 2560, "intermediate_size": 10240, "model_type": "gemma3_text", "num_hidden_layers": 34,
            "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 1024}
    cfg = {"model_type": "gemma3", "text_config": text, "vision_config": {"model_type": "siglip_vision_model"}}
    m = from_hf_config(cfg, "gemma-3-4b")
    language_model = transformers.Gemma3Config(**cfg).text_config
    assert m.total_params == _hf_param_count(language_model, torch, transformers)
    # Linear RoPE scaling: max_position_embeddings is already the extended length (Gemma3TextConfig: 131,072).
    assert m.max_position_embeddings == 131_072
    assert m.num_layers == 34 and m.model_type == "gemma3"


def test_multimodal_gemma3_language_model_equals_transformers_language_model(torch: Any, transformers: Any) -> None:
    cfg = {"model_type": "gemma3", "text_config": {"model_type": "gemma3_text", **TINY, "head_dim": 16},
           "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 32, "intermediate_size": 64,
                             "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 28, "patch_size": 14}}
    with torch.device("meta"):
        model = transformers.Gemma3ForConditionalGeneration(transformers.Gemma3Config(**cfg))
    # The lm_head is tied to the language model's embedding, so it adds no parameters of its own.
    language = sum(p.numel() for p in model.model.language_model.parameters())
    assert from_hf_config(cfg, "g3").total_params == language


def test_bidirectional_gemma_is_refused() -> None:
    with pytest.raises(rooflm.UnsupportedModelError, match="bidirectional"):
        from_hf_config({"model_type": "gemma3_text", **TINY, "use_bidirectional_attention": True}, "embedding")


def test_qwen2_moe_layers_and_shared_expert() -> None:
    m = from_hf_config(VARIANTS["qwen2_moe-sparse-step-dense-layers"], "q")
    # decoder_sparse_step 2: layers 1, 3, 5 are MoE; mlp_only_layers [1, 2] takes layer 1 back to dense.
    assert sorted((g.count, g.moe) for g in m.layers) == [(2, True), (4, False)]
    assert m.moe is not None and m.moe.shared is not None and m.moe.shared.intermediate_size == 96
    # Shared expert 3*64*96 = 18,432 plus its gate 64 per MoE layer.
    assert m.params_by_group()["shared_experts"] == 2 * (18_432 + 64)


def test_qwen2_moe_sliding_window_follows_transformers() -> None:
    cfg = {**QWEN2_MOE, "use_sliding_window": True, "sliding_window": 32, "max_window_layers": 4}
    m = from_hf_config(cfg, "q")
    # transformers 5: layer i slides when (i + 1) % 2 and i < max_window_layers: layers 0 and 2 of 6.
    assert sorted((g.count, g.sliding_window or 0) for g in m.layers) == [(2, 32), (4, 0)]
    assert from_hf_config(QWEN2_MOE, "q").layers[0].sliding_window is None


def test_phi3_windows_every_layer() -> None:
    # Phi-3-mini-4k's config.json sets sliding_window 2047; transformers applies it on every layer.
    m = from_hf_config({"model_type": "phi3", **TINY, "sliding_window": 2047}, "phi3")
    assert [(g.count, g.sliding_window) for g in m.layers] == [(6, 2047)]
