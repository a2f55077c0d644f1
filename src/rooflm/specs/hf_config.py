"""Read Hugging Face config.json files into ModelSpecs, and the shipped model catalog.

One reader per architecture family; each reads only the keys its family's transformers code
reads, with the same defaults, so that parameter counts match transformers' own.
"""

from __future__ import annotations

import json
import tomllib
from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from rooflm.errors import InvalidInputError, UnknownNameError, UnsupportedModelError, blames
from rooflm.specs.model import AttentionSpec, LayerGroup, MlpSpec, ModelSpec, MoeSpec
from rooflm.specs.names import closest, normalise_name

MODELS_DIR = Path(__file__).resolve().parent.parent / "data" / "models"
CATALOG_FILE = MODELS_DIR / "catalog.toml"

# Known to transformers but not modelled: say so plainly rather than mis-model them.
NOT_YET = {
    "qwen2_moe": "mixture of experts with a gated shared expert",
    "gemma2": "logit soft-capping",
    "gemma3": "interleaved local/global attention with different RoPE",
    "minimax": "lightning (linear) attention",
}


class _Config:
    """A parsed config.json with typed accessors whose errors name the key and the file."""

    def __init__(self, raw: dict[str, Any], where: str) -> None:
        self.raw, self.where = raw, where

    def int(self, key: str, default: int | None = None) -> int:
        value = self.raw.get(key, default)
        if value is None:
            raise InvalidInputError(f"{self.where} has no {key!r}; is it a decoder-only model's config.json?")
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise InvalidInputError(f"{self.where}: {key!r} must be a positive integer, got {value!r}")
        return value

    def opt_int(self, key: str) -> int | None:
        return self.int(key) if self.raw.get(key) is not None else None

    def flag(self, key: str, default: bool = False) -> bool:
        return bool(self.raw.get(key, default))


def _gqa(c: _Config, *, qkv_bias: bool, o_bias: bool, qk_norm: str = "none", sinks: bool = False) -> AttentionSpec:
    hidden = c.int("hidden_size")
    n_q = c.int("num_attention_heads")
    n_kv = c.int("num_key_value_heads", n_q)  # absent: multi-head attention
    head_dim = c.opt_int("head_dim") or hidden // n_q  # Qwen3 gives it; Llama derives it
    if n_q % n_kv:
        raise InvalidInputError(f"{c.where}: {n_q} query heads are not a multiple of {n_kv} KV heads")
    rotary = c.opt_int("rotary_dim") or int(head_dim * float(c.raw.get("partial_rotary_factor", 1.0)))
    return AttentionSpec(num_q_heads=n_q, num_kv_heads=n_kv, head_dim=head_dim, v_head_dim=head_dim,
                         rotary_dim=rotary, qkv_bias=qkv_bias, o_bias=o_bias, qk_norm=qk_norm, sinks=sinks)


def _groups(per_layer: list[tuple[bool, int | None]]) -> list[LayerGroup]:
    """Identical layers counted together (their order does not change a step's cost)."""
    counts = Counter(per_layer)
    return [LayerGroup(count=n, moe=moe, sliding_window=w) for (moe, w), n in sorted(counts.items(), key=str)]


def _spec(c: _Config, name: str, attention: AttentionSpec, per_layer: list[tuple[bool, int | None]],
          mlp: MlpSpec | None, moe: MoeSpec | None) -> ModelSpec:
    return ModelSpec(name=name, model_type=str(c.raw["model_type"]), hidden_size=c.int("hidden_size"),
                     vocab_size=c.int("vocab_size"), max_position_embeddings=c.int("max_position_embeddings"),
                     tie_word_embeddings=c.flag("tie_word_embeddings"), attention=attention, mlp=mlp, moe=moe,
                     layers=_groups(per_layer), source=c.where)


def _window(c: _Config) -> int | None:
    return c.opt_int("sliding_window")


def _dense(c: _Config, name: str) -> ModelSpec:
    model_type = c.raw["model_type"]
    bias = c.flag("attention_bias")
    # Qwen2 always has q/k/v biases (not in its config); Llama's attention_bias also covers o_proj.
    attention = _gqa(c, qkv_bias=bias or model_type == "qwen2", o_bias=bias and model_type == "llama",
                     qk_norm="head" if model_type == "qwen3" else "none")
    window = _window(c) if model_type == "mistral" else None
    layers = [(False, window)] * c.int("num_hidden_layers")
    return _spec(c, name, attention, layers, MlpSpec(intermediate_size=c.int("intermediate_size"),
                                                     bias=c.flag("mlp_bias")), None)


def _mixtral(c: _Config, name: str) -> ModelSpec:
    moe = MoeSpec(num_experts=c.int("num_local_experts"), top_k=c.int("num_experts_per_tok"),
                  expert=MlpSpec(intermediate_size=c.int("intermediate_size")))
    layers = [(True, _window(c))] * c.int("num_hidden_layers")
    return _spec(c, name, _gqa(c, qkv_bias=False, o_bias=False), layers, None, moe)


def _qwen3_moe(c: _Config, name: str) -> ModelSpec:
    n = c.int("num_hidden_layers")
    step = c.int("decoder_sparse_step", 1)
    dense_only = set(c.raw.get("mlp_only_layers") or [])
    per_layer = [(i not in dense_only and (i + 1) % step == 0, None) for i in range(n)]
    moe = MoeSpec(num_experts=c.int("num_experts"), top_k=c.int("num_experts_per_tok"),
                  expert=MlpSpec(intermediate_size=c.int("moe_intermediate_size")))
    mlp = MlpSpec(intermediate_size=c.int("intermediate_size")) if not all(m for m, _ in per_layer) else None
    return _spec(c, name, _gqa(c, qkv_bias=c.flag("attention_bias"), o_bias=False, qk_norm="head"), per_layer,
                 mlp, moe)


def _deepseek(c: _Config, name: str) -> ModelSpec:
    n_heads = c.int("num_attention_heads")
    nope, rope = c.int("qk_nope_head_dim"), c.int("qk_rope_head_dim")
    attention = AttentionSpec(kind="mla", num_q_heads=n_heads, num_kv_heads=n_heads, head_dim=nope + rope,
                              v_head_dim=c.int("v_head_dim"), rotary_dim=rope, q_lora_rank=c.opt_int("q_lora_rank") or 0,
                              kv_lora_rank=c.int("kv_lora_rank"), qk_nope_head_dim=nope, qk_rope_head_dim=rope)
    n = c.int("num_hidden_layers")
    first_dense, freq = c.raw.get("first_k_dense_replace", 0), c.int("moe_layer_freq", 1)
    per_layer = [(i >= first_dense and i % freq == 0, None) for i in range(n)]
    expert = MlpSpec(intermediate_size=c.int("moe_intermediate_size"))
    shared = c.raw.get("n_shared_experts") or 0
    moe = MoeSpec(num_experts=c.int("n_routed_experts"), top_k=c.int("num_experts_per_tok"), expert=expert,
                  shared=MlpSpec(intermediate_size=shared * expert.intermediate_size) if shared else None,
                  score_correction_bias=c.raw.get("topk_method") == "noaux_tc")
    return _spec(c, name, attention, per_layer, MlpSpec(intermediate_size=c.int("intermediate_size")), moe)


def _minimax_m2(c: _Config, name: str) -> ModelSpec:
    qk_norm = "full" if c.flag("use_qk_norm") else "none"
    moe = MoeSpec(num_experts=c.int("num_local_experts"), top_k=c.int("num_experts_per_tok"),
                  expert=MlpSpec(intermediate_size=c.int("intermediate_size")),
                  score_correction_bias=c.flag("use_routing_bias"))
    layers = [(True, None)] * c.int("num_hidden_layers")
    return _spec(c, name, _gqa(c, qkv_bias=False, o_bias=False, qk_norm=qk_norm), layers, None, moe)


def _gpt_oss(c: _Config, name: str) -> ModelSpec:
    n = c.int("num_hidden_layers")
    types = c.raw.get("layer_types") or ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(n)]
    window = _window(c)
    per_layer = [(True, window if t == "sliding_attention" else None) for t in types]
    moe = MoeSpec(num_experts=c.int("num_local_experts"), top_k=c.int("num_experts_per_tok"),
                  expert=MlpSpec(intermediate_size=c.int("intermediate_size"), bias=True), router_bias=True)
    bias = c.flag("attention_bias", True)
    return _spec(c, name, _gqa(c, qkv_bias=bias, o_bias=bias, sinks=True), per_layer, None, moe)


READERS: dict[str, Callable[[_Config, str], ModelSpec]] = {
    "llama": _dense, "mistral": _dense, "qwen2": _dense, "qwen3": _dense,
    "mixtral": _mixtral, "qwen3_moe": _qwen3_moe, "deepseek_v3": _deepseek, "deepseek_v2": _deepseek,
    "minimax_m2": _minimax_m2, "gpt_oss": _gpt_oss,
}


def from_hf_config(cfg: dict[str, Any], name: str, where: str = "config.json") -> ModelSpec:
    """Read the sizes of a supported architecture from a parsed config.json."""
    if not isinstance(cfg, dict):
        raise InvalidInputError(f"{where} is not a JSON object")
    model_type = cfg.get("model_type")
    if model_type is None:
        raise InvalidInputError(f"{where} has no 'model_type'; is it a Hugging Face config.json?")
    reader = READERS.get(model_type)
    if reader is None:
        why = f" ({NOT_YET[model_type]})" if model_type in NOT_YET else ""
        raise UnsupportedModelError(
            f"{where}: architecture {model_type!r}{why} is not supported; supported: {', '.join(READERS)}")
    return reader(_Config(cfg, where), name)


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


def read_config_file(path: Path, name: str | None = None) -> ModelSpec:
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise InvalidInputError(f"no config.json at {path}")
    try:
        cfg = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{path} is not valid JSON: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read {path}: {exc}") from None
    return from_hf_config(cfg, name or path.parent.name, str(path))


_CACHE: dict[str, ModelSpec] = {}


@blames("model")
def load_model(name_or_path: str | Path | ModelSpec) -> ModelSpec:
    """A catalog name or alias (any case, HF repo ids too), or a config.json path or its folder."""
    if isinstance(name_or_path, ModelSpec):
        return name_or_path
    text = str(name_or_path)
    if text in _CACHE:
        return _CACHE[text]
    aliases = _alias_table()
    key = aliases.get(normalise_name(text))
    if key is None:
        if text.endswith(".json") or Path(text).exists():
            return read_config_file(Path(text))  # a user's file may change: never cached
        raise UnknownNameError("model", text, closest(text, list(aliases), aliases), "rooflm models list")
    _CACHE[text] = read_config_file(MODELS_DIR / key / "config.json", key)
    return _CACHE[text]
