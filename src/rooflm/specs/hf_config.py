"""Read Hugging Face config.json files into ModelSpecs, and the shipped model catalog.

One reader per architecture family; each reads only the keys its family's transformers code
reads, with the same defaults, so that parameter counts match transformers' own.
"""

from __future__ import annotations

import json
import math
import re
import reprlib
import tomllib
from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rooflm.errors import InvalidInputError, UnknownNameError, UnsupportedModelError, blames
from rooflm.specs.files import path_test, read_limited
from rooflm.specs.model import AttentionSpec, CheckpointQuant, LayerGroup, MlpSpec, ModelSpec, MoeSpec
from rooflm.specs.names import closest, normalise_name

MODELS_DIR = Path(__file__).resolve().parent.parent / "data" / "models"
CATALOG_FILE = MODELS_DIR / "catalog.toml"

# Known to transformers but not modelled: say so plainly rather than mis-model them.
NOT_YET = {
    "minimax": "lightning (linear) attention",
}

# Bounds on what a config.json may ask for: ten times today's largest models or more, yet finite, so that a
# typo or a fuzzed value cannot make rooflm build per-layer structures for 1e12 layers or overflow a float.
MAX_LAYERS = 10_000
MAX_WIDTH = 1_000_000  # hidden and intermediate widths, heads, head dims, experts, LoRA ranks
MAX_VOCAB = 10_000_000
MAX_POSITIONS = 1 << 30  # context lengths and sliding windows (about 1.07e9 tokens)
_LIMITS = {"num_hidden_layers": MAX_LAYERS, "first_k_dense_replace": MAX_LAYERS, "moe_layer_freq": MAX_LAYERS,
           "decoder_sparse_step": MAX_LAYERS, "sliding_window_pattern": MAX_LAYERS, "max_window_layers": MAX_LAYERS,
           "mlp_only_layers": MAX_LAYERS, "vocab_size": MAX_VOCAB, "max_position_embeddings": MAX_POSITIONS,
           "original_max_position_embeddings": MAX_POSITIONS, "sliding_window": MAX_POSITIONS}

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 2, 4, 4, 40, 40


def _show(value: object) -> str:
    """A short, one-line quote of a config value, whatever its size or depth."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    try:
        return _REPR.repr(value)
    except (RecursionError, ValueError):  # deep nesting; an int too long to print (Python's 4,300-digit limit)
        return f"a {type(value).__name__}"


def _integral(value: object) -> int | None:
    """``value`` as an int if it is a whole number (``4096`` or ``4096.0``, never ``true`` or ``"4096"``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


class _Config:
    """A parsed config.json with typed accessors whose errors name the key and the file. A key set to null
    reads as absent (transformers then uses its default too)."""

    def __init__(self, raw: dict[str, Any], where: str) -> None:
        self.raw, self.where = raw, where

    def _fail(self, key: str, what: str, value: object) -> InvalidInputError:
        return InvalidInputError(f"{self.where}: {key!r} must be {what}, got {_show(value)}", field="model")

    def in_range(self, key: str, value: object, low: int, high: int) -> int:
        """``value`` as a whole number in [low, high]; the message names ``key``."""
        number = _integral(value)
        if number is None or number < low:
            raise self._fail(key, "a positive integer" if low == 1 else f"an integer of at least {low}", value)
        if number > high:
            raise InvalidInputError(f"{self.where}: {key!r} is {_show(number)}; rooflm models at most {high:,}",
                                    field="model")
        return number

    def int(self, key: str, default: int | None = None, *, low: int = 1) -> int:
        value = self.raw.get(key)
        if value is None:
            value = default
        if value is None:
            raise InvalidInputError(f"{self.where} has no {key!r}; is it a decoder-only model's config.json?",
                                    field="model")
        return self.in_range(key, value, low, _LIMITS.get(key, MAX_WIDTH))

    def opt_int(self, key: str, *, low: int = 1) -> int | None:
        return self.int(key, low=low) if self.raw.get(key) is not None else None

    def number(self, key: str, default: float, *, low: float, high: float) -> float:
        """A finite number in [low, high]."""
        value = self.raw.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._fail(key, f"a number from {low:g} to {high:g}", value)
        try:
            number = float(value)
        except OverflowError:  # an int beyond float range
            number = math.inf
        if not low <= number <= high:  # NaN fails every comparison
            raise self._fail(key, f"a number from {low:g} to {high:g}", value)
        return number

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.raw.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._fail(key, "true or false", value)
        return value

    def text(self, key: str) -> str | None:
        value = self.raw.get(key)
        if value is not None and not isinstance(value, str):
            raise self._fail(key, "a string", value)
        return value

    def int_list(self, key: str) -> list[int]:
        """A list of non-negative integers (layer indices); absent is empty."""
        value = self.raw.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self._fail(key, "a list of layer indices", value)
        return [self.in_range(key, v, 0, _LIMITS.get(key, MAX_WIDTH)) for v in value]

    def section(self, key: str) -> dict[str, Any] | None:
        """A nested object (rope_scaling, text_config), or None when absent."""
        value = self.raw.get(key)
        if value is not None and not isinstance(value, dict):
            raise self._fail(key, "a JSON object", value)
        return value


def _gqa(c: _Config, *, qkv_bias: bool, o_bias: bool, qk_norm: str = "none", sinks: bool = False) -> AttentionSpec:
    hidden = c.int("hidden_size")
    n_q = c.int("num_attention_heads")
    n_kv = c.int("num_key_value_heads", n_q)  # absent: multi-head attention
    head_dim = c.opt_int("head_dim") or hidden // n_q  # Qwen3 gives it; Llama derives it
    if head_dim == 0:
        raise InvalidInputError(f"{c.where}: hidden_size {hidden} is smaller than num_attention_heads {n_q} "
                                "(a head would be 0 wide); give head_dim", field="model")
    if n_q % n_kv:
        raise InvalidInputError(f"{c.where}: {n_q} query heads are not a multiple of {n_kv} KV heads", field="model")
    rotary = c.opt_int("rotary_dim") or int(head_dim * c.number("partial_rotary_factor", 1.0, low=0.0, high=1.0))
    if rotary > head_dim:
        raise InvalidInputError(f"{c.where}: 'rotary_dim' {rotary} is wider than a head ({head_dim})", field="model")
    return AttentionSpec(num_q_heads=n_q, num_kv_heads=n_kv, head_dim=head_dim, v_head_dim=head_dim,
                         rotary_dim=rotary, qkv_bias=qkv_bias, o_bias=o_bias, qk_norm=qk_norm, sinks=sinks)


def _groups(per_layer: list[tuple[bool, int | None]]) -> list[LayerGroup]:
    """Identical layers counted together (their order does not change a step's cost)."""
    counts = Counter(per_layer)
    return [LayerGroup(count=n, moe=moe, sliding_window=w) for (moe, w), n in sorted(counts.items(), key=str)]


# RoPE scalings whose config.json keeps the pre-scaling length (in original_max_position_embeddings, or in
# max_position_embeddings itself) and whose factor extends it: Qwen2.5/Qwen3 document adding
# {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768} for 131,072 tokens. Llama-3.1's
# "llama3" and Gemma 3's "linear" configs already give the extended length, so they are left as they are.
_EXTENDING_ROPE = {"yarn", "dynamic", "longrope"}


def _max_positions(c: _Config) -> int:
    """The longest context: max_position_embeddings, or what a context-extending RoPE scaling stretches it to."""
    limit = c.int("max_position_embeddings")
    scaling = c.section("rope_scaling") or c.section("rope_parameters")  # transformers 5 writes rope_parameters
    if scaling and isinstance(scaling.get("full_attention"), dict):
        scaling = scaling["full_attention"]  # Gemma 3 in transformers 5: one set per attention kind
    if not scaling:
        return limit
    rope = _Config(scaling, f"{c.where} rope_scaling")
    kind = rope.text("rope_type") or rope.text("type")
    if kind not in _EXTENDING_ROPE or scaling.get("factor") is None:
        return limit
    factor = rope.number("factor", 1.0, low=1.0, high=1e4)
    original = (rope.opt_int("original_max_position_embeddings") or c.opt_int("original_max_position_embeddings")
                or limit)
    return max(limit, rope.in_range("original_max_position_embeddings × factor", int(original * factor), 1,
                                      MAX_POSITIONS))


def _spec(c: _Config, name: str, attention: AttentionSpec, per_layer: list[tuple[bool, int | None]],
          mlp: MlpSpec | None, moe: MoeSpec | None, *, norms_per_layer: int = 2) -> ModelSpec:
    return ModelSpec(name=name, model_type=str(c.raw["model_type"]), hidden_size=c.int("hidden_size"),
                     vocab_size=c.int("vocab_size"), max_position_embeddings=_max_positions(c),
                     tie_word_embeddings=c.flag("tie_word_embeddings"), norms_per_layer=norms_per_layer,
                     attention=attention, mlp=mlp, moe=moe, layers=_groups(per_layer), source=c.where,
                     quantization=quantization(c))


def _window(c: _Config) -> int | None:
    return c.opt_int("sliding_window")


_LAYER_TYPES = ("sliding_attention", "full_attention")


def _layer_windows(c: _Config, n: int, default: list[str]) -> list[int | None]:
    """Each layer's attention window from ``layer_types`` (or the family's default pattern): the config's
    sliding_window on "sliding_attention" layers, none on "full_attention" ones."""
    types = c.raw.get("layer_types")
    if types is None:
        types = default
    if not isinstance(types, list) or len(types) != n or any(t not in _LAYER_TYPES for t in types):
        raise InvalidInputError(f"{c.where}: 'layer_types' must list {' or '.join(map(repr, _LAYER_TYPES))} for each "
                                f"of the {n} layers, got {_show(types)}", field="model")
    window = _window(c)
    return [window if t == "sliding_attention" else None for t in types]


def _moe(c: _Config, experts_key: str, expert: MlpSpec, **extra: Any) -> MoeSpec:
    """Routed experts; top-k cannot exceed the experts there are."""
    n_experts, top_k = c.int(experts_key), c.int("num_experts_per_tok")
    if top_k > n_experts:
        raise InvalidInputError(f"{c.where}: 'num_experts_per_tok' {top_k} exceeds the {n_experts} experts "
                                f"({experts_key!r})", field="model")
    return MoeSpec(num_experts=n_experts, top_k=top_k, expert=expert, **extra)


def _dense(c: _Config, name: str) -> ModelSpec:
    model_type = c.raw["model_type"]
    bias = c.flag("attention_bias")
    # Qwen2 always has q/k/v biases (not in its config); Llama's attention_bias also covers o_proj. Phi-3 fuses
    # q/k/v and gate/up into single matrices of the same total size, without biases.
    attention = _gqa(c, qkv_bias=bias or model_type == "qwen2", o_bias=bias and model_type == "llama",
                     qk_norm="head" if model_type == "qwen3" else "none")
    # Mistral and Phi-3 apply their sliding_window (if any) on every layer.
    window = _window(c) if model_type in ("mistral", "phi3") else None
    layers = [(False, window)] * c.int("num_hidden_layers")
    return _spec(c, name, attention, layers, MlpSpec(intermediate_size=c.int("intermediate_size"),
                                                     bias=c.flag("mlp_bias")), None)


def _mixtral(c: _Config, name: str) -> ModelSpec:
    moe = _moe(c, "num_local_experts", MlpSpec(intermediate_size=c.int("intermediate_size")))
    layers = [(True, _window(c))] * c.int("num_hidden_layers")
    return _spec(c, name, _gqa(c, qkv_bias=False, o_bias=False), layers, None, moe)


def _sparse_layers(c: _Config, n: int) -> list[bool]:
    """Qwen-MoE: layer i is MoE unless listed in mlp_only_layers, every decoder_sparse_step-th layer."""
    step = c.int("decoder_sparse_step", 1)
    dense_only = set(c.int_list("mlp_only_layers"))
    return [i not in dense_only and (i + 1) % step == 0 for i in range(n)]


def _qwen3_moe(c: _Config, name: str) -> ModelSpec:
    n = c.int("num_hidden_layers")
    per_layer = [(moe, None) for moe in _sparse_layers(c, n)]
    moe = _moe(c, "num_experts", MlpSpec(intermediate_size=c.int("moe_intermediate_size")))
    mlp = MlpSpec(intermediate_size=c.int("intermediate_size")) if not all(m for m, _ in per_layer) else None
    return _spec(c, name, _gqa(c, qkv_bias=c.flag("attention_bias"), o_bias=False, qk_norm="head"), per_layer,
                 mlp, moe)


def _qwen2_moe(c: _Config, name: str) -> ModelSpec:
    """Qwen1.5/Qwen2-MoE: routed experts plus one shared expert whose output a sigmoid gate (h→1) scales."""
    n = c.int("num_hidden_layers")
    # transformers 5's default layer_types: odd layers below max_window_layers slide, when use_sliding_window.
    use_window, below = c.flag("use_sliding_window"), c.int("max_window_layers", 28, low=0)
    default = ["sliding_attention" if (i + 1) % 2 and i < below and use_window else "full_attention" for i in range(n)]
    windows = _layer_windows(c, n, default) if use_window else [None] * n
    per_layer = list(zip(_sparse_layers(c, n), windows, strict=True))
    moe = _moe(c, "num_experts", MlpSpec(intermediate_size=c.int("moe_intermediate_size")),
               shared=MlpSpec(intermediate_size=c.int("shared_expert_intermediate_size")), shared_gate=True)
    mlp = MlpSpec(intermediate_size=c.int("intermediate_size")) if not all(m for m, _ in per_layer) else None
    return _spec(c, name, _gqa(c, qkv_bias=c.flag("qkv_bias", True), o_bias=False), per_layer, mlp, moe)


def _deepseek(c: _Config, name: str) -> ModelSpec:
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
    moe = _moe(c, "n_routed_experts", expert,
               shared=MlpSpec(intermediate_size=shared * expert.intermediate_size) if shared else None,
               score_correction_bias=c.text("topk_method") == "noaux_tc")
    return _spec(c, name, attention, per_layer, MlpSpec(intermediate_size=c.int("intermediate_size")), moe)


def _minimax_m2(c: _Config, name: str) -> ModelSpec:
    qk_norm = "full" if c.flag("use_qk_norm") else "none"
    moe = _moe(c, "num_local_experts", MlpSpec(intermediate_size=c.int("intermediate_size")),
               score_correction_bias=c.flag("use_routing_bias"))
    layers = [(True, None)] * c.int("num_hidden_layers")
    return _spec(c, name, _gqa(c, qkv_bias=False, o_bias=False, qk_norm=qk_norm), layers, None, moe)


def _gpt_oss(c: _Config, name: str) -> ModelSpec:
    n = c.int("num_hidden_layers")
    default = ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(n)]
    per_layer = [(True, w) for w in _layer_windows(c, n, default)]
    moe = _moe(c, "num_local_experts", MlpSpec(intermediate_size=c.int("intermediate_size"), bias=True),
               router_bias=True)
    bias = c.flag("attention_bias", True)
    return _spec(c, name, _gqa(c, qkv_bias=bias, o_bias=bias, sinks=True), per_layer, None, moe)


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


def _gemma_config(c: _Config) -> _Config:
    """The language model's config with transformers' defaults filled in. The multimodal Gemma 3 ("gemma3")
    nests it under text_config and keeps tie_word_embeddings at the top; only its language model is modelled."""
    if c.raw["model_type"] == "gemma2":
        return _Config({**_GEMMA_DEFAULTS["gemma2"], **c.raw}, c.where)
    if c.raw["model_type"] == "gemma3_text":
        return _Config({**_GEMMA_DEFAULTS["gemma3"], **c.raw}, c.where)
    text = c.section("text_config") or {}
    tie = c.flag("tie_word_embeddings", True)
    return _Config({**_GEMMA_DEFAULTS["gemma3"], **text, "model_type": "gemma3", "tie_word_embeddings": tie,
                    "quantization_config": c.raw.get("quantization_config")}, f"{c.where} text_config")


def _gemma(outer: _Config, name: str) -> ModelSpec:
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
    per_layer = [(False, w) for w in _layer_windows(c, n, default)]
    bias = c.flag("attention_bias")
    attention = _gqa(c, qkv_bias=bias, o_bias=bias, qk_norm="head" if gemma3 else "none")
    return _spec(c, name, attention, per_layer, MlpSpec(intermediate_size=c.int("intermediate_size")), None,
                 norms_per_layer=4)


# -- quantization_config ---------------------------------------------------------------------------------------
# How each method's config names its format. The fields follow transformers' quantization configs
# (FineGrainedFP8Config, Mxfp4Config, GPTQConfig, AwqConfig, FbgemmFp8Config, CompressedTensorsConfig) and NVIDIA
# ModelOpt's hf_quant_config; engines (vLLM, SGLang) build their kernels from the same keys.
_FP_BITS = {8: "fp8", 4: "fp4"}
_INT_BITS = {8: "int8", 4: "int4"}
# ModelOpt quant_algo → (weight, activation, weights per scale, scale bits); FP8 is per-tensor (no per-weight bytes).
_MODELOPT = {"FP8": ("fp8", "fp8", 0, 0), "NVFP4": ("fp4", "fp4", 16, 8), "W4A8_AWQ": ("int4", "fp8", 128, 16),
             "W4A16_AWQ": ("int4", "bf16", 128, 16), "INT4_AWQ": ("int4", "bf16", 128, 16),
             "W8A16": ("int8", "bf16", "channel", 16), "INT8_SQ": ("int8", "int8", "channel", 32)}
_MODELOPT_KV = {"FP8": "fp8", "NVFP4": "fp4", "INT8": "int8"}
_SHOWN_IGNORED = 8
_LAYER_INDEX = re.compile(r"layers?[._\\]+\d+[._\\]")


def _module_classes(pattern: str) -> set[str]:
    """Module classes a modules_to_not_convert / ignore entry covers in every layer. An entry naming one layer
    ("model.layers.0.mlp") covers a class only partly and is left out: rooflm treats a class alike in all layers."""
    p = pattern.lower()
    if _LAYER_INDEX.search(p) or "e_score_correction" in p:
        return set()
    for words, classes in (
        (("lm_head",), {"lm_head"}), (("embed",), {"embedding"}), (("shared_expert",), {"shared_experts"}),
        (("experts",), {"experts"}), (("router",), {"router"}),
        (("attn", "attention", "q_proj", "k_proj", "v_proj", "o_proj", "qkv", "q_a_proj", "q_b_proj", "kv_a_proj",
          "kv_b_proj"), {"attention"}),
        (("gate_proj", "up_proj", "down_proj", "gate_up"), {"mlp"}), (("gate",), {"router"}),
        (("mlp", "moe"), {"mlp", "router", "experts", "shared_experts"}),
    ):
        if any(w in p for w in words):
            return classes
    return set()


def _names(q: _Config, *keys: str) -> list[str]:
    """The first of ``keys`` present, as a list of module-name patterns."""
    for key in keys:
        value = q.raw.get(key)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise q._fail(key, "a list of module names", value)
        return value
    return []


def _group(q: _Config, key: str, default: int) -> int | str:
    """Weights per scale: a positive size, or -1 (one per output channel, GPTQ/AWQ's convention)."""
    value = q.raw.get(key)
    if value is None:
        return default
    return "channel" if _integral(value) == -1 else q.in_range(key, value, 1, MAX_WIDTH)


def _bits(q: _Config, key: str, table: dict[int, str], default: int | None = None) -> str:
    bits = q.int(key, default)
    if bits not in table:
        raise InvalidInputError(f"{q.where}: {key!r} {bits} is not modelled; rooflm models "
                                f"{', '.join(f'{b}-bit' for b in table)} weights", field="model")
    return table[bits]


def _ct_weights(q: _Config, groups: dict[str, Any]) -> dict[str, Any]:
    """compressed-tensors: the first config group that quantizes weights (the one applied to Linear layers)."""
    for name, group in groups.items():
        g = _Config(group if isinstance(group, dict) else {}, f"{q.where} config_groups.{name}")
        weights = g.section("weights")
        if not weights:
            continue
        w = _Config(weights, f"{g.where}.weights")
        is_float = w.text("type") == "float"
        dtype = _bits(w, "num_bits", _FP_BITS if is_float else _INT_BITS)
        strategy = w.text("strategy") or "tensor"
        block = w.raw.get("block_structure")
        acts = g.section("input_activations")
        activation = "bf16"
        if acts:
            a = _Config(acts, f"{g.where}.input_activations")
            activation = _bits(a, "num_bits", _FP_BITS if a.text("type") == "float" else _INT_BITS)
        out: dict[str, Any] = {"weight": dtype, "activation": activation}
        # Scales: fp32 for fp8 weights, fp8 (e4m3) per 16 for NVFP4, bf16/fp16 for integer groups.
        scale_bits = 8 if dtype == "fp4" else 32 if dtype == "fp8" else 16
        if strategy == "channel":
            out.update(scale_group="channel", scale_bits=scale_bits)
        elif strategy in ("group", "tensor_group"):
            out.update(scale_group=w.int("group_size", 16 if dtype == "fp4" else 128), scale_bits=scale_bits)
        elif strategy == "block" and isinstance(block, list) and len(block) == 2:
            n_blk, k_blk = (w.in_range("block_structure", v, 1, MAX_WIDTH) for v in block)
            out.update(scale_group=n_blk * k_blk, scale_bits=scale_bits, k_block=k_blk)
        if not w.flag("symmetric", True) and out.get("scale_group"):
            out["zero_bits"] = 8 if dtype == "int8" else 4 if dtype == "int4" else 0
        return out
    return {"weight": None}


def _method_fields(q: _Config, method: str) -> dict[str, Any]:
    """Per method: the quantized weights' format, and the names it lists as left in bf16."""
    if method == "fp8":  # FineGrainedFP8 (DeepSeek-V3, MiniMax-M2, Qwen3-FP8): 128×128 weight blocks, fp32 scales
        block = q.raw.get("weight_block_size")
        out: dict[str, Any] = {"weight": "fp8", "activation": "fp8"}
        if block is not None:
            if not isinstance(block, list) or len(block) != 2:
                raise q._fail("weight_block_size", "two block sizes [N, K]", block)
            n_blk, k_blk = (q.in_range("weight_block_size", v, 1, MAX_WIDTH) for v in block)
            out.update(scale_group=n_blk * k_blk, scale_bits=32, k_block=k_blk)
        return {**out, "ignored": _names(q, "modules_to_not_convert")}
    if method == "fbgemm_fp8":  # per-channel fp8 weights, dynamic per-token fp8 activations
        return {"weight": "fp8", "activation": "fp8", "scale_group": "channel", "scale_bits": 32,
                "ignored": _names(q, "modules_to_not_convert")}
    if method == "mxfp4":  # OCP MX: e2m1 in blocks of 32 with one e8m0 scale; gpt-oss runs bf16 activations
        return {"weight": "fp4", "scale_group": 32, "scale_bits": 8, "ignored": _names(q, "modules_to_not_convert")}
    if method in ("gptq", "awq"):
        dtype = _bits(q, "bits" if "bits" in q.raw or method == "gptq" else "w_bit", _INT_BITS, 4)
        group = _group(q, "group_size" if "group_size" in q.raw else "q_group_size", 128)
        zero = not q.flag("sym", True) if method == "gptq" else q.flag("zero_point", True)
        bits = 8 if dtype == "int8" else 4
        ignored = _names(q, "modules_to_not_convert")
        if method == "gptq" and q.flag("lm_head"):
            ignored = [i for i in ignored if "lm_head" not in i] + ["!lm_head"]  # marker: lm_head is quantized
        return {"weight": dtype, "scale_group": group, "scale_bits": 16, "zero_bits": bits if zero else 0,
                "ignored": ignored}
    if method == "compressed-tensors":
        groups = q.section("config_groups") or {}
        out = _ct_weights(q, groups)
        kv = q.section("kv_cache_scheme")
        if kv:
            k = _Config(kv, f"{q.where}.kv_cache_scheme")
            out["kv"] = _bits(k, "num_bits", _FP_BITS if k.text("type") == "float" else _INT_BITS)
        return {**out, "ignored": _names(q, "ignore")}
    if method == "modelopt":
        inner = _Config(q.section("quantization") or q.raw, q.where)
        algo = (inner.text("quant_algo") or "").upper()
        if algo not in _MODELOPT:
            return {"weight": None}
        weight, activation, group, scale_bits = _MODELOPT[algo]
        out = {"weight": weight, "activation": activation, "scale_group": group, "scale_bits": scale_bits}
        if group and group != "channel" and inner.raw.get("group_size") is not None:
            out["scale_group"] = inner.int("group_size")
        kv_algo = (inner.text("kv_cache_quant_algo") or "").upper()
        if kv_algo in _MODELOPT_KV:
            out["kv"] = _MODELOPT_KV[kv_algo]
        return {**out, "ignored": _names(inner, "exclude_modules", "ignore")}
    return {"weight": None}


def quantization(c: _Config) -> CheckpointQuant | None:
    """The checkpoint's quantization_config, if it has one. Besides what the config lists, the router, the input
    embedding and lm_head stay in bf16 as engines load them (transformers keeps the output embedding out of every
    quantizer; vLLM builds MoE routers and the LM head unquantized), unless a GPTQ config sets lm_head: true."""
    section = c.section("quantization_config")
    if section is None:
        return None
    q = _Config(section, f"{c.where} quantization_config")
    method = (q.text("quant_method") or "").lower()
    if not method:
        raise InvalidInputError(f"{q.where} has no 'quant_method'", field="model")
    fields = _method_fields(q, method)
    ignored: list[str] = fields.pop("ignored", [])
    keep = {"router", "embedding", "lm_head"}
    for pattern in ignored:
        keep |= _module_classes(pattern)
    if "!lm_head" in ignored:
        keep.discard("lm_head")
    shown = tuple(i for i in ignored if i != "!lm_head")[:_SHOWN_IGNORED]
    return CheckpointQuant(method=method, bf16_modules=tuple(sorted(keep)), ignored=shown, **fields)


READERS: dict[str, Callable[[_Config, str], ModelSpec]] = {
    "llama": _dense, "mistral": _dense, "qwen2": _dense, "qwen3": _dense, "phi3": _dense,
    "gemma2": _gemma, "gemma3_text": _gemma, "gemma3": _gemma,
    "mixtral": _mixtral, "qwen2_moe": _qwen2_moe, "qwen3_moe": _qwen3_moe, "deepseek_v3": _deepseek,
    "deepseek_v2": _deepseek, "minimax_m2": _minimax_m2, "gpt_oss": _gpt_oss,
}


@blames("model")
def from_hf_config(cfg: dict[str, Any], name: str, where: str = "config.json") -> ModelSpec:
    """Read the sizes of a supported architecture from a parsed config.json."""
    if not isinstance(cfg, dict):
        raise InvalidInputError(f"{where} is not a JSON object")
    model_type = cfg.get("model_type")
    if model_type is None:
        raise InvalidInputError(f"{where} has no 'model_type'; is it a Hugging Face config.json?")
    if not isinstance(model_type, str):
        raise InvalidInputError(f"{where}: 'model_type' must be a string, got {_show(model_type)}")
    reader = READERS.get(model_type)
    if reader is None:
        why = f" ({NOT_YET[model_type]})" if model_type in NOT_YET else ""
        raise UnsupportedModelError(
            f"{where}: architecture {_show(model_type)}{why} is not supported; supported: {', '.join(READERS)}")
    try:
        return reader(_Config(cfg, where), name)
    except ValidationError as exc:  # the readers check what they read; this is the backstop for what they missed
        first = exc.errors()[0]
        raise InvalidInputError(f"{where}: {'.'.join(map(str, first['loc']))} {first['msg']}") from None


@lru_cache(maxsize=1)
def catalog() -> dict[str, dict[str, Any]]:
    """Catalog entries (name → facts from catalog.toml), for models whose config.json is shipped."""
    with CATALOG_FILE.open("rb") as fh:
        table = tomllib.load(fh)
    return {name: entry for name, entry in table.items() if (MODELS_DIR / name / "config.json").is_file()}


def model_names() -> list[str]:
    return list(catalog())


def _alias_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for name, entry in catalog().items():
        table[normalise_name(name)] = name
        for alias in [entry.get("hf_repo", ""), *entry.get("aliases", [])]:
            if alias:
                table[normalise_name(alias)] = name
                table[normalise_name(alias.split("/")[-1])] = name
    return table


# A config.json is a few kilobytes; reading more than this is a mistake (or an attack on a server), not a model.
MAX_CONFIG_BYTES = 1 << 20


def parse_config_text(text: str | bytes, where: str) -> dict[str, Any]:
    """A config.json's text as a dict; a message that quotes none of the text when it is not one."""
    if len(text) > MAX_CONFIG_BYTES:
        raise InvalidInputError(f"{where} is {len(text):,} bytes; a config.json is at most {MAX_CONFIG_BYTES:,}")
    try:
        cfg = json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{where} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except UnicodeDecodeError:
        raise InvalidInputError(f"{where} is not UTF-8 text") from None
    except RecursionError:
        raise InvalidInputError(f"{where} nests too deeply to be a config.json") from None
    if not isinstance(cfg, dict):
        raise InvalidInputError(f"{where} must be a JSON object (the content of a config.json)")
    return cfg


def read_config_file(path: Path, name: str | None = None, where: str | None = None) -> ModelSpec:
    """A config.json (or a folder holding one). ``where`` names it in messages (the path, by default)."""
    if path.is_dir():
        path = path / "config.json"
    where = where or str(path)
    if not path.is_file():
        raise InvalidInputError(f"no config.json at {where}")
    raw = read_limited(path, MAX_CONFIG_BYTES, where, "a config.json")
    return from_hf_config(parse_config_text(raw, where), name or path.parent.name, where)


def _is_path(text: str) -> bool:
    """Whether a --model value names a file rather than a catalog entry (a name too long for the OS is not one)."""
    return text.endswith(".json") or path_test(text, Path.exists)


def _unknown(text: str, advice_for_ids: str) -> UnknownNameError:
    """A name the catalog lacks. An "org/name" Hugging Face id is told how to bring its config, not offered the
    closest catalog name (Mistral-7B is not Mixtral)."""
    aliases = _alias_table()
    if "/" in text.strip("/"):
        return UnknownNameError("model", text, [], "rooflm models list", advice=advice_for_ids)
    return UnknownNameError("model", text, closest(text, list(aliases), aliases), "rooflm models list")


_CACHE: dict[str, ModelSpec] = {}


def _catalog_spec(key: str) -> ModelSpec:
    return read_config_file(MODELS_DIR / key / "config.json", key, where=f"the catalog's {key}/config.json")


@blames("model")
def load_model(name_or_path: str | Path | ModelSpec) -> ModelSpec:
    """A catalog name or alias (any case, HF repo ids too), or a config.json path or its folder."""
    if isinstance(name_or_path, ModelSpec):
        return name_or_path
    text = str(name_or_path)
    if text in _CACHE:
        return _CACHE[text]
    key = _alias_table().get(normalise_name(text))
    if key is None:
        if _is_path(text):
            return read_config_file(Path(text))  # a user's file may change: never cached
        raise _unknown(text, "it is not in the catalog and not a file here: download its config.json from the "
                             "Hugging Face Hub and pass its path (--model path/to/config.json)")
    _CACHE[text] = _catalog_spec(key)
    return _CACHE[text]


@blames("model")
def catalog_model(name: str) -> ModelSpec:
    """A catalog model by name or alias, never a file: all a server may open on a request's behalf."""
    key = _alias_table().get(normalise_name(name))
    if key is None:
        raise _unknown(name, "it is not in the catalog: paste its config.json in the `config` field")
    return load_model(key)


@blames("model")
def model_from_text(text: str | bytes | dict[str, Any], name: str = "pasted-config") -> ModelSpec:
    """A model from a config.json's content (its text, or the parsed object), as a server receives one."""
    cfg = text if isinstance(text, dict) else parse_config_text(text, "config")
    return from_hf_config(cfg, name, "config")
