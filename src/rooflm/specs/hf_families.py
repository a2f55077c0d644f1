"""config.json readers of the families added after the first: GLM-4 and GLM-4.5 (MoE), OLMo 2 and 3, Seed-OSS,
ERNIE 4.5 (dense and MoE), SmolLM3, Granite (dense and MoE), Command R and A, EXAONE 4, Hunyuan dense, Llama 4,
Mistral 4 and glm4_moe_lite (DeepSeek's layout), DeepSeek-V3.2 (sparse attention), Qwen3-Next and Qwen3.5 (Gated DeltaNet
linear attention), and the language model of the multimodal Mistral 3, Qwen3-VL and
Kimi K2.5 checkpoints. The same rules as rooflm.specs.hf_readers: transformers' keys and defaults, checked against
its parameter counts (tests/specs/test_hf_families.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rooflm.errors import InvalidInputError, UnsupportedModelError
from rooflm.specs.hf_build import gqa, layer_types, layer_windows, moe_spec, sparse_layers, spec
from rooflm.specs.hf_fields import Config, show_value
from rooflm.specs.hf_readers import READERS as FIRST_FAMILIES
from rooflm.specs.model import LinearAttentionSpec, MlpSpec, ModelSpec


def _with_defaults(c: Config, defaults: dict[str, Any]) -> Config:
    """The config with transformers' defaults for keys it leaves out (or sets to null)."""
    return Config({**defaults, **{k: v for k, v in c.raw.items() if v is not None}}, c.where)


def _mlp(c: Config, bias: bool = False) -> MlpSpec:
    return MlpSpec(intermediate_size=c.int("intermediate_size"), bias=bias)


def _llama_like(c: Config, name: str) -> ModelSpec:
    """Llama's layout under another name: SmolLM3 (its NoPE layers change no weight), Granite (its residual and logit
    multipliers are scalars), Hunyuan dense (per-head q/k norms). SmolLM3 ties its embedding by default."""
    model_type = c.raw["model_type"]
    if model_type == "smollm3":
        c = _with_defaults(c, {"tie_word_embeddings": True})
    bias = c.flag("attention_bias")
    attention = gqa(c, qkv_bias=bias, o_bias=bias, qk_norm="head" if model_type == "hunyuan_v1_dense" else "none")
    return spec(c, name, attention, [(False, None)] * c.int("num_hidden_layers"), _mlp(c, c.flag("mlp_bias")), None)


def _glm4(c: Config, name: str) -> ModelSpec:
    """GLM-4-0414: q/k/v biases (attention_bias, on by default), RoPE on part of each head, and a norm after each
    sub-layer as well as before (four per layer); gate and up are one matrix of the same size."""
    c = _with_defaults(c, {"head_dim": 128})  # Glm4Config's default, not hidden_size / heads
    attention = gqa(c, qkv_bias=c.flag("attention_bias", True), o_bias=False)
    return spec(c, name, attention, [(False, None)] * c.int("num_hidden_layers"), _mlp(c), None, norms_per_layer=4)


def _glm4_moe(c: Config, name: str) -> ModelSpec:
    """GLM-4.5, GLM-4.6, GLM-4.5-Air: the first first_k_dense_replace layers dense, the rest n_routed_experts routed
    experts (sigmoid top-k with DeepSeek-V3's score-correction bias) beside n_shared_experts; q/k/v biases with
    attention_bias, per-head q/k norms with use_qk_norm, RoPE on partial_rotary_factor of each head. The MTP layers
    (num_nextn_predict_layers) are the speculative draft, not part of the model's weights."""
    n = c.int("num_hidden_layers")
    first_dense = c.int("first_k_dense_replace", 1, low=0)
    expert = MlpSpec(intermediate_size=c.int("moe_intermediate_size"))
    shared = c.int("n_shared_experts", 1, low=0)
    moe = moe_spec(c, "n_routed_experts", expert, score_correction_bias=True,
                   shared=MlpSpec(intermediate_size=shared * expert.intermediate_size) if shared else None)
    attention = gqa(c, qkv_bias=c.flag("attention_bias"), o_bias=False,
                    qk_norm="head" if c.flag("use_qk_norm") else "none")
    per_layer = [(i >= first_dense, None) for i in range(n)]
    return spec(c, name, attention, per_layer, _mlp(c) if first_dense else None, moe)


def _olmo(c: Config, name: str) -> ModelSpec:
    """OLMo 2 and 3: q and k normed over their whole width, a norm after each sub-layer (two per layer, none before);
    OLMo 3 has three sliding-window layers to each full one."""
    n = c.int("num_hidden_layers")
    bias = c.flag("attention_bias")
    attention = gqa(c, qkv_bias=bias, o_bias=bias, qk_norm="full")
    if c.raw["model_type"] == "olmo3":
        default = ["sliding_attention" if (i + 1) % 4 else "full_attention" for i in range(n)]
        windows = layer_windows(c, n, default)
    else:
        windows = [None] * n
    return spec(c, name, attention, [(False, w) for w in windows], _mlp(c), None)


def _seed_oss(c: Config, name: str) -> ModelSpec:
    """Seed-OSS: q/k/v biases (attention_bias, on by default) and an o_proj bias of its own (attention_out_bias)."""
    c = _with_defaults(c, {"head_dim": 128})  # SeedOssConfig's default
    attention = gqa(c, qkv_bias=c.flag("attention_bias", True), o_bias=c.flag("attention_out_bias"))
    return spec(c, name, attention, [(False, None)] * c.int("num_hidden_layers"), _mlp(c, c.flag("mlp_bias")), None)


def _ernie(c: Config, name: str) -> ModelSpec:
    """ERNIE 4.5: use_bias puts biases on every projection; the embedding is tied by default. The MoE models route
    to moe_num_experts experts (top moe_k, with a score-correction bias) on every moe_layer_interval-th layer from
    moe_layer_start_index to moe_layer_end_index, beside moe_num_shared_experts shared experts."""
    dense = c.raw["model_type"] == "ernie4_5"
    # Ernie4_5Config's head_dim default is 128 (the MoE config derives it from the hidden size).
    c = _with_defaults(c, {"tie_word_embeddings": True, **({"head_dim": 128} if dense else {})})
    bias = c.flag("use_bias")
    attention = gqa(c, qkv_bias=bias, o_bias=bias)
    n = c.int("num_hidden_layers")
    if dense:
        return spec(c, name, attention, [(False, None)] * n, _mlp(c, bias), None)
    c = _with_defaults(c, {"moe_layer_start_index": 1, "moe_layer_interval": 1, "moe_num_shared_experts": 0})
    start, interval = c.int("moe_layer_start_index", low=0), c.int("moe_layer_interval")
    end = c.raw.get("moe_layer_end_index", -1)
    end = n - 1 if end == -1 else c.int("moe_layer_end_index", low=0)
    per_layer = [((i + 1) % interval == 0 and start <= i <= end, None) for i in range(n)]
    expert = MlpSpec(intermediate_size=c.int("moe_intermediate_size"))
    shared = c.int("moe_num_shared_experts", low=0)
    c = Config({**c.raw, "num_experts_per_tok": c.int("moe_k")}, c.where)
    moe = moe_spec(c, "moe_num_experts", expert, score_correction_bias=True,
                   shared=MlpSpec(intermediate_size=shared * expert.intermediate_size) if shared else None)
    dense = not all(moe_layer for moe_layer, _ in per_layer)
    return spec(c, name, attention, per_layer, _mlp(c) if dense else None, moe)


def _cohere(c: Config, name: str) -> ModelSpec:
    """Command R (cohere) and Command R7B / A (cohere2): attention and MLP side by side after one LayerNorm (weight
    only: one norm per layer), a tied embedding by default, q and k normed per head over their whole width with
    use_qk_norm; Cohere 2 has three sliding-window layers to each full one."""
    n = c.int("num_hidden_layers")
    c = _with_defaults(c, {"tie_word_embeddings": True})
    if c.raw["model_type"] == "cohere2":
        period = c.int("sliding_window_pattern", 4)
        windows = layer_windows(c, n, ["sliding_attention" if (i + 1) % period else "full_attention" for i in range(n)])
    else:
        windows = [None] * n
    bias = c.flag("attention_bias")
    attention = gqa(c, qkv_bias=bias, o_bias=bias, qk_norm="full" if c.flag("use_qk_norm") else "none")
    return spec(c, name, attention, [(False, w) for w in windows], _mlp(c), None, norms_per_layer=1)


def _granitemoe(c: Config, name: str) -> ModelSpec:
    """Granite MoE (Granite 3.x MoE): Mixtral's layout (every layer num_local_experts experts of intermediate_size,
    a router without bias); its multipliers are scalars."""
    moe = moe_spec(c, "num_local_experts", MlpSpec(intermediate_size=c.int("intermediate_size")))
    bias = c.flag("attention_bias")
    return spec(c, name, gqa(c, qkv_bias=bias, o_bias=bias), [(True, None)] * c.int("num_hidden_layers"), None, moe)


def _mlp_layer_types(c: Config, n: int) -> list[bool]:
    """Which layers route to experts, from mlp_layer_types ("dense" or "sparse" per layer; by default the first
    layer dense, as Glm4MoeLiteConfig has it)."""
    types = c.raw.get("mlp_layer_types")
    if types is None:
        return [i >= 1 for i in range(n)]
    if not isinstance(types, list) or len(types) != n or any(t not in ("dense", "sparse") for t in types):
        raise InvalidInputError(f"{c.where}: 'mlp_layer_types' must list 'dense' or 'sparse' for each of the {n} "
                                f"layers, got {show_value(types)}", field="model")
    return [t == "sparse" for t in types]


def _deepseek_like(c: Config, name: str) -> ModelSpec:
    """DeepSeek-V3's layout under another name: Mistral 4 (MLA, shared and routed experts, a score-correction bias
    only with topk_method noaux_tc, as DeepSeek's) and glm4_moe_lite (the same with the bias always, its dense layers
    listed in mlp_layer_types). Read by DeepSeek's reader; the model keeps its own type."""
    model_type = c.raw["model_type"]
    raw = {**c.raw, "model_type": "deepseek_v3"}
    if model_type == "glm4_moe_lite":
        sparse = _mlp_layer_types(c, c.int("num_hidden_layers"))
        first_dense = sparse.index(True) if True in sparse else len(sparse)
        if not all(sparse[first_dense:]):
            raise UnsupportedModelError(f"{c.where}: dense layers after the first routed one are not modelled for "
                                        f"glm4_moe_lite (mlp_layer_types {show_value(c.raw['mlp_layer_types'])})",
                                        field="model")
        raw.update(topk_method="noaux_tc", first_k_dense_replace=first_dense, moe_layer_freq=1)
    model = FIRST_FAMILIES["deepseek_v3"](Config(raw, c.where), name)
    return model.model_copy(update={"model_type": model_type})


def _indexer_layers(c: Config, n: int) -> int:
    """GLM-5 (glm_moe_dsa): the layers with their own indexer — "full" in indexer_types, or in index_topk_pattern
    ("F"; "S" reuses the previous layer's selection), or by default every index_topk_freq-th layer from
    index_skip_topk_offset on (all of them with the defaults), as GlmMoeDsaConfig derives them."""
    types = c.raw.get("indexer_types")
    if types is None and isinstance(c.raw.get("index_topk_pattern"), str):
        types = [{"F": "full", "S": "shared"}.get(ch, ch) for ch in c.raw["index_topk_pattern"]]
    elif types is None:
        types = c.raw.get("index_topk_pattern")
    if types is None:
        freq, offset = c.int("index_topk_freq", 1), c.int("index_skip_topk_offset", 2, low=0)
        return sum(max(i - offset + 1, 0) % freq == 0 for i in range(n))
    if not isinstance(types, list) or len(types) != n or any(t not in ("full", "shared") for t in types):
        raise InvalidInputError(f"{c.where}: 'indexer_types' must list 'full' or 'shared' for each of the {n} layers, "
                                f"got {show_value(types)}", field="model")
    return types.count("full")


# DeepseekV32Config's and GlmMoeDsaConfig's defaults for the keys they add to DeepSeek-V3's.
_DSA_DEFAULTS: dict[str, dict[str, Any]] = {
    "deepseek_v32": {"index_topk": 2048, "index_head_dim": 128, "index_n_heads": 64, "first_k_dense_replace": 3},
    "glm_moe_dsa": {"index_topk": 2048, "index_head_dim": 128, "index_n_heads": 32, "first_k_dense_replace": 3,
                    "q_lora_rank": 2048},
}


def _deepseek_v32(c: Config, name: str) -> ModelSpec:
    """DeepSeek-V3.2 and GLM-5 (glm_moe_dsa): DeepSeek-V3's layout (MLA, first_k_dense_replace dense layers, routed
    and shared experts with the score-correction bias) and DeepSeek sparse attention: an indexer of index_n_heads ×
    index_head_dim choosing the index_topk tokens each query attends to (on every layer, or GLM-5's "full" ones)."""
    model_type = str(c.raw["model_type"])
    c = _with_defaults(c, _DSA_DEFAULTS[model_type])
    if not c.opt_int("q_lora_rank"):
        raise InvalidInputError(f"{c.where}: DeepSeek sparse attention's indexer reads the query latent; give "
                                "'q_lora_rank'", field="model")
    types = c.raw.get("layer_types")
    if types is not None and (not isinstance(types, list) or set(types) != {"indexed_attention"}):
        raise UnsupportedModelError(f"{c.where}: layer_types other than 'indexed_attention' are not modelled for "
                                    f"deepseek_v32 ({show_value(types)})", field="model")
    n = c.int("num_hidden_layers")
    sparse = _mlp_layer_types(c, n) if c.raw.get("mlp_layer_types") is not None else None
    raw = {**{k: v for k, v in c.raw.items() if k != "layer_types"}, "model_type": "deepseek_v3",
           "topk_method": "noaux_tc", "moe_layer_freq": 1}
    if sparse is not None:
        first_dense = sparse.index(True) if True in sparse else n
        if not all(sparse[first_dense:]):
            raise UnsupportedModelError(f"{c.where}: dense layers after the first routed one are not modelled for "
                                        f"{model_type}", field="model")
        raw["first_k_dense_replace"] = first_dense
    model = FIRST_FAMILIES["deepseek_v3"](Config(raw, c.where), name)
    attention = model.attention.model_copy(update={
        "index_topk": c.int("index_topk"), "index_heads": c.int("index_n_heads"),
        "index_head_dim": c.int("index_head_dim")})
    indexers = n if model_type == "deepseek_v32" else _indexer_layers(c, n)
    return model.model_copy(update={"model_type": model_type, "attention": attention, "indexer_layers": indexers})


def _exaone4(c: Config, name: str) -> ModelSpec:
    """EXAONE 4.0: per-head q/k norms, a norm after each sub-layer (two per layer); sliding-window layers in the
    pattern sliding_window_pattern gives (4, or "LLLG": three local to one global), none without a sliding_window."""
    n = c.int("num_hidden_layers")
    pattern = c.raw.get("sliding_window_pattern", 4)
    if c.raw.get("sliding_window") is None:
        default = ["full_attention"] * n
    elif isinstance(pattern, str) and pattern and set(pattern) <= {"L", "G"}:
        default = ["sliding_attention" if pattern[i % len(pattern)] == "L" else "full_attention" for i in range(n)]
    else:
        period = c.int("sliding_window_pattern", 4)
        default = ["sliding_attention" if (i + 1) % period else "full_attention" for i in range(n)]
    per_layer = [(False, w) for w in layer_windows(c, n, default)]
    return spec(c, name, gqa(c, qkv_bias=False, o_bias=False, qk_norm="head"), per_layer, _mlp(c), None)


def _llama4_layers(c: Config, n: int) -> list[tuple[bool, int | None]]:
    """Each layer: MoE (moe_layers, or every interleave_moe_layer_step-th) and its window. A chunked-attention layer
    attends within its chunk of attention_chunk_size tokens: read as a sliding window of the chunk, what such a layer
    keeps and, at most, reads (over a long request a step reads half a chunk on average)."""
    step = c.int("interleave_moe_layer_step", 1)
    moe_layers = set(c.int_list("moe_layers")) if c.raw.get("moe_layers") is not None \
        else set(range(step - 1, n, step))
    chunk = c.opt_int("attention_chunk_size")
    default: list[str] = []  # read only where layer_types is absent: the RoPE layers are the chunked ones
    if c.raw.get("layer_types") is None:
        no_rope = c.int_list("no_rope_layers") or [int((i + 1) % 4 != 0) for i in range(n)]
        default = ["chunked_attention" if rope and chunk else "full_attention" for rope in no_rope]
    types = layer_types(c, n, default, windowed="chunked_attention")
    return [(i in moe_layers, chunk if t == "chunked_attention" else None) for i, t in enumerate(types)]


def _llama4(outer: Config, name: str) -> ModelSpec:
    """Llama 4 (Scout, Maverick): routed experts (top num_experts_per_tok, no bias) and one shared expert of
    intermediate_size on its MoE layers, dense layers of intermediate_size_mlp between them (Maverick), weightless
    q/k L2 norms; the multimodal checkpoint's language model is its text_config."""
    c = _with_defaults(_text_config(outer) if outer.raw["model_type"] == "llama4" else outer,
                       {"head_dim": 128, "attention_chunk_size": 8192})  # Llama4TextConfig's defaults
    n = c.int("num_hidden_layers")
    per_layer = _llama4_layers(c, n)
    expert = MlpSpec(intermediate_size=c.int("intermediate_size"))
    moe = moe_spec(c, "num_local_experts", expert, shared=expert)
    dense = not all(moe_layer for moe_layer, _ in per_layer)
    mlp = MlpSpec(intermediate_size=c.int("intermediate_size_mlp")) if dense else None
    return spec(c, name, gqa(c, qkv_bias=c.flag("attention_bias"), o_bias=c.flag("attention_bias")), per_layer, mlp,
                moe)


_QWEN3_NEXT = {"head_dim": 256, "partial_rotary_factor": 0.25, "linear_conv_kernel_dim": 4, "linear_key_head_dim": 128,
               "linear_value_head_dim": 128, "linear_num_key_heads": 16, "linear_num_value_heads": 32,
               "shared_expert_intermediate_size": 512, "moe_intermediate_size": 512, "num_experts": 512,
               "num_experts_per_tok": 10, "intermediate_size": 5632}  # Qwen3NextConfig's defaults


def _qwen3_next(c: Config, name: str) -> ModelSpec:
    """Qwen3-Next: Gated DeltaNet linear attention on the layers layer_types marks "linear_attention" (by default
    three of every full_attention_interval = 4), gated full attention (q_proj also computes a sigmoid gate on the
    output; per-head q/k norms) on the others; Qwen2-MoE's routed experts with one gated shared expert, dense MLPs
    on mlp_only_layers."""
    c = _with_defaults(c, _QWEN3_NEXT)
    n = c.int("num_hidden_layers")
    interval = c.int("full_attention_interval", 4)
    default = ["linear_attention" if (i + 1) % interval else "full_attention" for i in range(n)]
    types = layer_types(c, n, default, windowed="linear_attention")
    linear = LinearAttentionSpec(num_k_heads=c.int("linear_num_key_heads"),
                                 num_v_heads=c.int("linear_num_value_heads"),
                                 head_k_dim=c.int("linear_key_head_dim"), head_v_dim=c.int("linear_value_head_dim"),
                                 conv_kernel=c.int("linear_conv_kernel_dim"))
    if linear.num_v_heads % linear.num_k_heads:
        raise InvalidInputError(f"{c.where}: {linear.num_v_heads} linear value heads are not a multiple of "
                                f"{linear.num_k_heads} key heads", field="model")
    sparse = sparse_layers(c, n) if c.int("num_experts", 0, low=0) else [False] * n
    expert = MlpSpec(intermediate_size=c.int("moe_intermediate_size"))
    shared = MlpSpec(intermediate_size=c.int("shared_expert_intermediate_size"))
    moe = moe_spec(c, "num_experts", expert, shared=shared, shared_gate=True) if any(sparse) else None
    bias = c.flag("attention_bias")
    attention = gqa(c, qkv_bias=bias, o_bias=bias, qk_norm="head").model_copy(update={"output_gate": True})
    return spec(c, name, attention, [(s, None) for s in sparse], None if all(sparse) else _mlp(c), moe,
                linear=[t == "linear_attention" for t in types], linear_attention=linear)


# Qwen3_5TextConfig's and Qwen3_5MoeTextConfig's defaults where they differ from Qwen3NextConfig's; Qwen3.5's dense
# models have an MLP on every layer, its MoE models experts on every layer (neither reads mlp_only_layers).
_QWEN3_5 = {"qwen3_5": {"intermediate_size": 12288, "num_experts": 0},
            "qwen3_5_moe": {"num_experts": 256, "num_experts_per_tok": 8}}


def _qwen3_5(outer: Config, name: str) -> ModelSpec:
    """Qwen3.5 (dense and MoE): Qwen3-Next's layers (Gated DeltaNet and gated attention; its in_proj split in four
    holds the same weights); the multimodal checkpoint's language model is its text_config."""
    model_type = str(outer.raw["model_type"])
    family = model_type.removesuffix("_text")
    c = _text_config(outer) if outer.section("text_config") is not None else outer
    raw = {k: v for k, v in c.raw.items() if k not in ("mlp_only_layers", "decoder_sparse_step")}
    model = _qwen3_next(_with_defaults(Config(raw, c.where), _QWEN3_5[family]), name)
    return model.model_copy(update={"model_type": model_type})


def _text_config(outer: Config) -> Config:
    """A multimodal checkpoint's language model: its text_config, with the outer quantization_config (and
    tie_word_embeddings, where only the outer config gives it: the language model's own setting comes first)."""
    text = outer.section("text_config")
    if text is None:
        raise InvalidInputError(f"{outer.where} has no 'text_config' (the language model of a "
                                f"{outer.raw['model_type']!r} checkpoint)", field="model")
    inner = dict(text)
    for key in ("quantization_config", "tie_word_embeddings"):
        if inner.get(key) is None and outer.raw.get(key) is not None:
            inner[key] = outer.raw[key]
    return Config(inner, f"{outer.where} text_config")


def _multimodal(outer: Config, name: str) -> ModelSpec:
    """Mistral 3 (Mistral Small 3.x), Qwen3-VL and Kimi K2.5: the language model only (the vision tower and the image tokens
    it adds to a prompt are not modelled), read by its own family's reader."""
    c = _text_config(outer)
    text_type, defaults = _TEXT_MODELS[outer.raw["model_type"]]
    model = FIRST_FAMILIES[text_type](_with_defaults(Config({**c.raw, "model_type": text_type}, c.where), defaults),
                                      name)
    return model.model_copy(update={"model_type": outer.raw["model_type"]})


# A multimodal checkpoint's language model: the reader that reads it, and the defaults of its text config class where
# they differ from that reader's family (Qwen3VLTextConfig's head_dim; Qwen3VLMoeTextConfig ties its embedding).
_TEXT_MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "mistral3": ("mistral", {}), "qwen3_vl": ("qwen3", {"head_dim": 128}),
    "qwen3_vl_moe": ("qwen3_moe", {"tie_word_embeddings": True}), "kimi_k25": ("deepseek_v3", {}),
}


READERS: dict[str, Callable[[Config, str], ModelSpec]] = {
    "glm4": _glm4, "glm4_moe": _glm4_moe, "olmo2": _olmo, "olmo3": _olmo, "seed_oss": _seed_oss,
    "ernie4_5": _ernie, "ernie4_5_moe": _ernie, "smollm3": _llama_like, "granite": _llama_like,
    "hunyuan_v1_dense": _llama_like, "exaone4": _exaone4, "llama4": _llama4, "llama4_text": _llama4,
    "mistral3": _multimodal, "qwen3_vl": _multimodal, "qwen3_vl_moe": _multimodal, "cohere": _cohere,
    "cohere2": _cohere, "granitemoe": _granitemoe, "kimi_k25": _multimodal, "mistral4": _deepseek_like,
    "glm4_moe_lite": _deepseek_like, "qwen3_next": _qwen3_next,
    "deepseek_v32": _deepseek_v32, "glm_moe_dsa": _deepseek_v32,
    "qwen3_5": _qwen3_5, "qwen3_5_text": _qwen3_5, "qwen3_5_moe": _qwen3_5, "qwen3_5_moe_text": _qwen3_5,
}
