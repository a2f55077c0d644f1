"""A config.json's quantization_config: the checkpoint's own scheme, which modules it leaves in bf16, and its
scale and zero-point sizes (what the `native` scheme reads)."""

from __future__ import annotations

import re
from typing import Any

from rooflm.errors import InvalidInputError
from rooflm.specs.hf_fields import MAX_WIDTH, Config, integral
from rooflm.specs.model import CheckpointQuant

# -- quantization_config ---------------------------------------------------------------------------------------
# How each method's config names its format. The fields follow transformers' quantization configs
# (FineGrainedFP8Config, Mxfp4Config, GPTQConfig, AwqConfig, FbgemmFp8Config, CompressedTensorsConfig) and NVIDIA
# ModelOpt's hf_quant_config; engines (vLLM, SGLang) build their kernels from the same keys.
_FP_BITS = {8: "fp8", 4: "fp4"}
_INT_BITS = {8: "int8", 4: "int4"}
# ModelOpt quant_algo → (weight, activation, weights per scale, scale bits); FP8 is per-tensor (no per-weight bytes).
_MODELOPT: dict[str, tuple[str, str, int | str, int]] = {
    "FP8": ("fp8", "fp8", 0, 0), "NVFP4": ("fp4", "fp4", 16, 8), "W4A8_AWQ": ("int4", "fp8", 128, 16),
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


def _names(q: Config, *keys: str) -> list[str]:
    """The first of ``keys`` present, as a list of module-name patterns."""
    for key in keys:
        value = q.raw.get(key)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise q.fail(key, "a list of module names", value)
        return value
    return []


def _group(q: Config, key: str, default: int) -> int | str:
    """Weights per scale: a positive size, or -1 (one per output channel, GPTQ/AWQ's convention)."""
    value = q.raw.get(key)
    if value is None:
        return default
    return "channel" if integral(value) == -1 else q.in_range(key, value, 1, MAX_WIDTH)


def _bits(q: Config, key: str, table: dict[int, str], default: int | None = None) -> str:
    bits = q.int(key, default)
    if bits not in table:
        raise InvalidInputError(f"{q.where}: {key!r} {bits} is not modelled; rooflm models "
                                f"{', '.join(f'{b}-bit' for b in table)} weights", field="model")
    return table[bits]


def _ct_weights(q: Config, groups: dict[str, Any]) -> dict[str, Any]:
    """compressed-tensors: the first config group that quantizes weights (the one applied to Linear layers)."""
    for name, group in groups.items():
        g = Config(group if isinstance(group, dict) else {}, f"{q.where} config_groups.{name}")
        weights = g.section("weights")
        if not weights:
            continue
        w = Config(weights, f"{g.where}.weights")
        is_float = w.text("type") == "float"
        dtype = _bits(w, "num_bits", _FP_BITS if is_float else _INT_BITS)
        strategy = w.text("strategy") or "tensor"
        block = w.raw.get("block_structure")
        acts = g.section("input_activations")
        activation = "bf16"
        if acts:
            a = Config(acts, f"{g.where}.input_activations")
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


def _method_fields(q: Config, method: str) -> dict[str, Any]:
    """Per method: the quantized weights' format, and the names it lists as left in bf16."""
    if method == "fp8":  # FineGrainedFP8 (DeepSeek-V3, MiniMax-M2, Qwen3-FP8): 128×128 weight blocks, fp32 scales
        block = q.raw.get("weight_block_size")
        out: dict[str, Any] = {"weight": "fp8", "activation": "fp8"}
        if block is not None:
            if not isinstance(block, list) or len(block) != 2:
                raise q.fail("weight_block_size", "two block sizes [N, K]", block)
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
            k = Config(kv, f"{q.where}.kv_cache_scheme")
            out["kv"] = _bits(k, "num_bits", _FP_BITS if k.text("type") == "float" else _INT_BITS)
        return {**out, "ignored": _names(q, "ignore")}
    if method == "modelopt":
        inner = Config(q.section("quantization") or q.raw, q.where)
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


def quantization(c: Config) -> CheckpointQuant | None:
    """The checkpoint's quantization_config, if it has one. Besides what the config lists, the router, the input
    embedding and lm_head stay in bf16 as engines load them (transformers keeps the output embedding out of every
    quantizer; vLLM builds MoE routers and the LM head unquantized), unless a GPTQ config sets lm_head: true."""
    section = c.section("quantization_config")
    if section is None:
        return None
    q = Config(section, f"{c.where} quantization_config")
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
