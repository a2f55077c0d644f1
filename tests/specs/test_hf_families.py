"""The later families (rooflm.specs.hf_families): parameter counts equal transformers' own, on models built on the meta
device from tiny variants of each family's options and from transformers' default configs (the families' reference
sizes: Glm4Config() is GLM-4-9B, Llama4TextConfig() is Llama 4 Scout's language model, Ernie4_5_MoeConfig() is
ERNIE-4.5-21B-A3B); each layer's experts and attention window equal what transformers builds and configures."""

from __future__ import annotations

from typing import Any

import pytest

from rooflm.specs.hf_config import from_hf_config

TINY = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "intermediate_size": 128, "vocab_size": 256, "max_position_embeddings": 512}
IDS = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}  # within the tiny vocabulary
LLAMA4_TEXT = {"model_type": "llama4_text", **TINY, **IDS, "num_hidden_layers": 4, "num_local_experts": 4,
               "num_experts_per_tok": 1, "intermediate_size_mlp": 96, "head_dim": 16}
# DeepSeek-V3's layout (MLA, shared and routed experts), tiny.
MLA = {**TINY, **IDS, "num_hidden_layers": 3, "num_key_value_heads": 4, "kv_lora_rank": 32, "q_lora_rank": 48,
       "qk_rope_head_dim": 8, "qk_nope_head_dim": 16, "v_head_dim": 16, "n_routed_experts": 8,
       "num_experts_per_tok": 2, "n_shared_experts": 1, "moe_intermediate_size": 32}
VARIANTS: dict[str, dict[str, Any]] = {
    "glm4": {"model_type": "glm4", **TINY, **IDS, "head_dim": 16, "partial_rotary_factor": 0.5},
    "glm4-default-head-dim-no-bias": {"model_type": "glm4", **TINY, **IDS, "attention_bias": False},
    "glm4_moe": {"model_type": "glm4_moe", **TINY, "num_hidden_layers": 3, "head_dim": 16, "attention_bias": True,
                 "moe_intermediate_size": 32, "n_routed_experts": 8, "num_experts_per_tok": 2, "n_shared_experts": 1,
                 "first_k_dense_replace": 1, "partial_rotary_factor": 0.5, "num_nextn_predict_layers": 1},
    "glm4_moe-qk-norm-two-shared-no-dense": {"model_type": "glm4_moe", **TINY, "head_dim": 16, "use_qk_norm": True,
                                             "moe_intermediate_size": 32, "n_routed_experts": 8,
                                             "num_experts_per_tok": 2, "n_shared_experts": 2,
                                             "first_k_dense_replace": 0},
    "olmo2": {"model_type": "olmo2", **TINY, **IDS},
    "olmo3": {"model_type": "olmo3", **TINY, **IDS, "num_hidden_layers": 4, "sliding_window": 64},
    "seed_oss": {"model_type": "seed_oss", **TINY, **IDS, "head_dim": 16, "attention_out_bias": True},
    "ernie4_5-bias-default-head-dim": {"model_type": "ernie4_5", **TINY, **IDS, "use_bias": True},
    "ernie4_5_moe": {"model_type": "ernie4_5_moe", **TINY, **IDS, "num_hidden_layers": 3, "moe_num_experts": 8,
                     "moe_k": 2, "moe_intermediate_size": 32, "moe_layer_start_index": 1, "moe_num_shared_experts": 2},
    "smollm3": {"model_type": "smollm3", **TINY, **IDS},
    "granite-bias": {"model_type": "granite", **TINY, **IDS, "attention_bias": True},
    "hunyuan_v1_dense": {"model_type": "hunyuan_v1_dense", **TINY, **IDS, "head_dim": 16},
    "cohere-qk-norm": {"model_type": "cohere", **TINY, **IDS, "use_qk_norm": True},
    "cohere2": {"model_type": "cohere2", **TINY, **IDS, "num_hidden_layers": 4, "sliding_window": 64},
    "granitemoe": {"model_type": "granitemoe", **TINY, **IDS, "num_local_experts": 4, "num_experts_per_tok": 2},
    "exaone4": {"model_type": "exaone4", **TINY, **IDS, "num_hidden_layers": 4, "sliding_window": 64},
    "llama4_text-interleaved": {**LLAMA4_TEXT, "interleave_moe_layer_step": 2},
    # Multimodal checkpoints: the language model only (transformers' language_model and lm_head parameters).
    "llama4": {"model_type": "llama4", "tie_word_embeddings": False,
               "text_config": {**LLAMA4_TEXT, "tie_word_embeddings": False}},
    "mistral3": {"model_type": "mistral3", "tie_word_embeddings": False,
                 "text_config": {"model_type": "mistral", **TINY, "tie_word_embeddings": False}},
    "qwen3_vl-default-head-dim": {"model_type": "qwen3_vl", "tie_word_embeddings": False,
                                  "text_config": {"model_type": "qwen3_vl_text", **TINY}},
    "qwen3_vl-tied": {"model_type": "qwen3_vl", "tie_word_embeddings": True,
                      "text_config": {"model_type": "qwen3_vl_text", **TINY, "head_dim": 16}},
    "mistral4": {"model_type": "mistral4", **MLA, "first_k_dense_replace": 1},
    "glm4_moe_lite": {"model_type": "glm4_moe_lite", **MLA, "mlp_layer_types": ["dense", "sparse", "sparse"]},
    "kimi_k25": {"model_type": "kimi_k25", "tie_word_embeddings": False,
                 "text_config": {"model_type": "deepseek_v3", **MLA, "first_k_dense_replace": 1,
                                 "topk_method": "noaux_tc"}},
    "qwen3_vl_moe": {"model_type": "qwen3_vl_moe", "tie_word_embeddings": False,
                     "text_config": {"model_type": "qwen3_vl_moe_text", **TINY, "tie_word_embeddings": False,
                                     "head_dim": 16, "moe_intermediate_size": 32, "num_experts": 8,
                                     "num_experts_per_tok": 2}},
    # Gated DeltaNet on 3 of 4 layers (full_attention_interval), routed experts with a gated shared expert, and a
    # dense MLP on the layer mlp_only_layers names.
    "qwen3_next": {"model_type": "qwen3_next", **TINY, **IDS, "num_hidden_layers": 4, "head_dim": 16,
                   "linear_num_key_heads": 2, "linear_num_value_heads": 4, "linear_key_head_dim": 8,
                   "linear_value_head_dim": 16, "linear_conv_kernel_dim": 4, "num_experts": 8,
                   "num_experts_per_tok": 2, "moe_intermediate_size": 32, "shared_expert_intermediate_size": 48,
                   "mlp_only_layers": [0]},
    "qwen3_next-layer-types-dense": {"model_type": "qwen3_next", **TINY, **IDS, "num_hidden_layers": 3,
                                     "head_dim": 16, "num_experts": 0, "linear_num_key_heads": 2,
                                     "linear_num_value_heads": 2, "linear_key_head_dim": 16,
                                     "linear_value_head_dim": 16,
                                     "layer_types": ["full_attention", "linear_attention", "linear_attention"]},
    # DeepSeek sparse attention: an indexer of 4 heads × 16 on every layer, the first layer dense.
    "deepseek_v32": {"model_type": "deepseek_v32", **MLA, "first_k_dense_replace": 1, "index_n_heads": 4,
                     "index_head_dim": 16, "index_topk": 64},
    # GLM-5: the indexer on layers 0 and 2 only; layer 1 reuses layer 0's selection.
    "glm_moe_dsa": {"model_type": "glm_moe_dsa", **MLA, "first_k_dense_replace": 1, "index_n_heads": 4,
                    "index_head_dim": 16, "index_topk": 64, "indexer_types": ["full", "shared", "full"]},
    "glm_moe_dsa-pattern": {"model_type": "glm_moe_dsa", **MLA, "first_k_dense_replace": 1, "index_n_heads": 4,
                            "index_head_dim": 16, "index_topk": 64, "index_topk_pattern": "FSS"},
    "qwen3_5": {"model_type": "qwen3_5", "tie_word_embeddings": False,
                "text_config": {"model_type": "qwen3_5_text", **TINY, **IDS, "num_hidden_layers": 4, "head_dim": 16,
                                "linear_num_key_heads": 2, "linear_num_value_heads": 4, "linear_key_head_dim": 8,
                                "linear_value_head_dim": 16}},
    "qwen3_5_moe": {"model_type": "qwen3_5_moe", "tie_word_embeddings": False,
                    "text_config": {"model_type": "qwen3_5_moe_text", **TINY, **IDS, "num_hidden_layers": 4,
                                    "head_dim": 16, "linear_num_key_heads": 2, "linear_num_value_heads": 4,
                                    "linear_key_head_dim": 8, "linear_value_head_dim": 16, "num_experts": 8,
                                    "num_experts_per_tok": 2, "moe_intermediate_size": 32,
                                    "shared_expert_intermediate_size": 48}},
}
# transformers' default configs of the families (Hunyuan's cannot build a model without its rope settings).
DEFAULTS = {"glm4": "Glm4Config", "glm4_moe": "Glm4MoeConfig", "olmo2": "Olmo2Config", "olmo3": "Olmo3Config",
            "seed_oss": "SeedOssConfig", "ernie4_5": "Ernie4_5Config", "ernie4_5_moe": "Ernie4_5_MoeConfig",
            "smollm3": "SmolLM3Config", "granite": "GraniteConfig", "exaone4": "Exaone4Config",
            "llama4_text": "Llama4TextConfig", "cohere": "CohereConfig", "cohere2": "Cohere2Config",
            "granitemoe": "GraniteMoeConfig", "glm4_moe_lite": "Glm4MoeLiteConfig", "mistral4": "Mistral4Config",
            "qwen3_next": "Qwen3NextConfig", "qwen3_5_text": "Qwen3_5TextConfig",
            "qwen3_5_moe_text": "Qwen3_5MoeTextConfig", "deepseek_v32": "DeepseekV32Config",
            "glm_moe_dsa": "GlmMoeDsaConfig"}


# Text-only models that transformers maps under image-text-to-text, not causal LM.
IMAGE_TEXT_AUTO = {"mistral4"}


def _meta_model(config: Any, multimodal: bool, torch: Any, transformers: Any) -> Any:
    image_text = multimodal or config.model_type in IMAGE_TEXT_AUTO
    auto = transformers.AutoModelForImageTextToText if image_text else transformers.AutoModelForCausalLM
    with torch.device("meta"):
        return auto.from_config(config)


def _language_model_params(model: Any, multimodal: bool) -> int:
    """Parameters of the language model, with the router's score-correction bias that transformers keeps as a buffer
    and checkpoints store (GLM-4.5's, as DeepSeek-V3's)."""
    params = [(n, p) for n, p in model.named_parameters()
              if not multimodal or n.startswith(("model.language_model.", "language_model.", "lm_head."))]
    stored = sum(b.numel() for n, b in model.named_buffers() if n.endswith("e_score_correction_bias"))
    return sum(p.numel() for _, p in params) + stored


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_param_counts_equal_transformers(variant: str, torch: Any, transformers: Any) -> None:
    cfg = VARIANTS[variant]
    multimodal = "text_config" in cfg
    model = _meta_model(transformers.AutoConfig.for_model(**cfg), multimodal, torch, transformers)
    assert from_hf_config(cfg, variant).total_params == _language_model_params(model, multimodal)


@pytest.mark.parametrize("model_type", list(DEFAULTS))
def test_default_config_param_counts_equal_transformers(model_type: str, torch: Any, transformers: Any) -> None:
    config = getattr(transformers, DEFAULTS[model_type])()
    model = _meta_model(config, False, torch, transformers)
    assert from_hf_config(config.to_dict(), model_type).total_params == _language_model_params(model, False)


@pytest.mark.parametrize("variant", ["olmo3", "exaone4", "cohere2", "llama4_text-interleaved", "glm4_moe", "glm4_moe_lite",
                                     "ernie4_5_moe"])
def test_each_layers_experts_and_window_are_transformers(variant: str, torch: Any, transformers: Any) -> None:
    """Per layer: routed experts where transformers' layer holds an ``experts`` module, and the window its config
    gives the layer (sliding_window on a sliding layer, attention_chunk_size on a chunked one, none on a full one)."""
    cfg = VARIANTS[variant]
    config = transformers.AutoConfig.for_model(**cfg)
    model = _meta_model(config, False, torch, transformers)
    types = getattr(config, "layer_types", None) or ["full_attention"] * config.num_hidden_layers
    window = {"sliding_attention": getattr(config, "sliding_window", None),
              "chunked_attention": getattr(config, "attention_chunk_size", None), "full_attention": None}
    expected: dict[tuple[bool, int | None], int] = {}
    for i, layer in enumerate(model.model.layers):
        key = (any(".experts." in n for n, _ in layer.named_parameters(prefix="x")), window[types[i]])
        expected[key] = expected.get(key, 0) + 1
    groups = {(g.moe, g.sliding_window): g.count for g in from_hf_config(cfg, variant).layers}
    assert groups == expected


def test_exaone4_pattern_as_letters() -> None:
    """EXAONE 4.0's documented "LLLG" form of sliding_window_pattern (transformers' own default list cannot read it,
    so published configs list layer_types too): "LLG" over 6 layers is L L G L L G, 4 sliding layers and 2 full."""
    cfg = {"model_type": "exaone4", **TINY, "num_hidden_layers": 6, "sliding_window": 64,
           "sliding_window_pattern": "LLG"}
    groups = {(g.moe, g.sliding_window): g.count for g in from_hf_config(cfg, "exaone4").layers}
    assert groups == {(False, 64): 4, (False, None): 2}


def test_a_model_read_by_another_familys_reader_keeps_its_type() -> None:
    assert from_hf_config(VARIANTS["mistral4"], "m").model_type == "mistral4"
    assert from_hf_config(VARIANTS["kimi_k25"], "k").model_type == "kimi_k25"


def test_glm4_moe_lite_dense_layers_between_routed_ones_are_refused() -> None:
    from rooflm.errors import UnsupportedModelError

    cfg = {**VARIANTS["glm4_moe_lite"], "mlp_layer_types": ["sparse", "dense", "sparse"]}
    with pytest.raises(UnsupportedModelError, match="dense layers after the first routed one"):
        from_hf_config(cfg, "g")


def test_a_multimodal_config_without_its_language_model_is_refused() -> None:
    from rooflm.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="has no 'text_config'"):
        from_hf_config({"model_type": "mistral3"}, "x")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_family_is_analyzed_end_to_end(variant: str, tmp_path: Any) -> None:
    """Each family's operators build and time: a prefill, a decode step and a whole request from its config.json, on
    one device and at TP 2 (every tiny variant has an even head count), each a positive, finite time whose
    operators' FLOPs add up to the step's."""
    import json
    import math

    import rooflm

    path = tmp_path / "config.json"
    path.write_text(json.dumps(VARIANTS[variant]))
    for phase in ("prefill", "decode", "e2e"):
        for layout in ({}, {"tp": 2}):
            r = rooflm.analyze(str(path), "h100-sxm", phase=phase, batch=4, prompt_len=96, context=128, gen_len=8,
                               **layout)
            assert 0 < r.totals.time_s < math.inf, (phase, layout)
            assert sum(o.flops for o in r.operators) == pytest.approx(r.totals.flops, rel=1e-12)
