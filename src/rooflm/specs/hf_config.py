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

from pydantic import ValidationError

from rooflm.errors import InvalidInputError, UnknownNameError, UnsupportedModelError, blames
from rooflm.specs.files import path_test, read_limited
from rooflm.specs.hf_fields import MAX_POSITIONS, Config, show_value
from rooflm.specs.hf_quant import quantization
from rooflm.specs.model import AttentionSpec, LayerGroup, MlpSpec, ModelSpec, MoeSpec
from rooflm.specs.names import closest, normalise_name

MODELS_DIR = Path(__file__).resolve().parent.parent / "data" / "models"
CATALOG_FILE = MODELS_DIR / "catalog.toml"

# Known to transformers but not modelled: say so plainly rather than mis-model them.
NOT_YET = {
    "minimax": "lightning (linear) attention",
}

def _gqa(c: Config, *, qkv_bias: bool, o_bias: bool, qk_norm: str = "none", sinks: bool = False) -> AttentionSpec:
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


def _max_positions(c: Config) -> int:
    """The longest context: max_position_embeddings, or what a context-extending RoPE scaling stretches it to."""
    limit = c.int("max_position_embeddings")
    scaling = c.section("rope_scaling") or c.section("rope_parameters")  # transformers 5 writes rope_parameters
    if scaling and isinstance(scaling.get("full_attention"), dict):
        scaling = scaling["full_attention"]  # Gemma 3 in transformers 5: one set per attention kind
    if not scaling:
        return limit
    rope = Config(scaling, f"{c.where} rope_scaling")
    kind = rope.text("rope_type") or rope.text("type")
    if kind not in _EXTENDING_ROPE or scaling.get("factor") is None:
        return limit
    factor = rope.number("factor", 1.0, low=1.0, high=1e4)
    original = (rope.opt_int("original_max_position_embeddings") or c.opt_int("original_max_position_embeddings")
                or limit)
    return max(limit, rope.in_range("original_max_position_embeddings × factor", int(original * factor), 1,
                                      MAX_POSITIONS))


def _spec(c: Config, name: str, attention: AttentionSpec, per_layer: list[tuple[bool, int | None]],
          mlp: MlpSpec | None, moe: MoeSpec | None, *, norms_per_layer: int = 2) -> ModelSpec:
    return ModelSpec(name=name, model_type=str(c.raw["model_type"]), hidden_size=c.int("hidden_size"),
                     vocab_size=c.int("vocab_size"), max_position_embeddings=_max_positions(c),
                     tie_word_embeddings=c.flag("tie_word_embeddings"), norms_per_layer=norms_per_layer,
                     attention=attention, mlp=mlp, moe=moe, layers=_groups(per_layer), source=c.where,
                     quantization=quantization(c), mtp_layers=_mtp_layers(c))


def _mtp_layers(c: Config) -> int:
    """Multi-token-prediction layers the checkpoint ships: DeepSeek-V3, GLM-4.5, Kimi K2 and MiMo name them
    ``num_nextn_predict_layers``; MiniMax-M2 has ``num_mtp_modules`` modules of ``mtp_transformer_layers`` each
    (``use_mtp`` false turns them off)."""
    nextn = c.int("num_nextn_predict_layers", 0, low=0)
    if nextn or not c.flag("use_mtp", True):
        return nextn
    return c.int("num_mtp_modules", 0, low=0) * c.int("mtp_transformer_layers", 1, low=0)


def _window(c: Config) -> int | None:
    return c.opt_int("sliding_window")


_LAYER_TYPES = ("sliding_attention", "full_attention")


def _layer_windows(c: Config, n: int, default: list[str]) -> list[int | None]:
    """Each layer's attention window from ``layer_types`` (or the family's default pattern): the config's
    sliding_window on "sliding_attention" layers, none on "full_attention" ones."""
    types = c.raw.get("layer_types")
    if types is None:
        types = default
    if not isinstance(types, list) or len(types) != n or any(t not in _LAYER_TYPES for t in types):
        raise InvalidInputError(f"{c.where}: 'layer_types' must list {' or '.join(map(repr, _LAYER_TYPES))} for each "
                                f"of the {n} layers, got {show_value(types)}", field="model")
    window = _window(c)
    return [window if t == "sliding_attention" else None for t in types]


def _moe(c: Config, experts_key: str, expert: MlpSpec, **extra: Any) -> MoeSpec:
    """Routed experts; top-k cannot exceed the experts there are."""
    n_experts, top_k = c.int(experts_key), c.int("num_experts_per_tok")
    if top_k > n_experts:
        raise InvalidInputError(f"{c.where}: 'num_experts_per_tok' {top_k} exceeds the {n_experts} experts "
                                f"({experts_key!r})", field="model")
    return MoeSpec(num_experts=n_experts, top_k=top_k, expert=expert, **extra)


def _dense(c: Config, name: str) -> ModelSpec:
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


def _mixtral(c: Config, name: str) -> ModelSpec:
    moe = _moe(c, "num_local_experts", MlpSpec(intermediate_size=c.int("intermediate_size")))
    layers = [(True, _window(c))] * c.int("num_hidden_layers")
    return _spec(c, name, _gqa(c, qkv_bias=False, o_bias=False), layers, None, moe)


def _sparse_layers(c: Config, n: int) -> list[bool]:
    """Qwen-MoE: layer i is MoE unless listed in mlp_only_layers, every decoder_sparse_step-th layer."""
    step = c.int("decoder_sparse_step", 1)
    dense_only = set(c.int_list("mlp_only_layers"))
    return [i not in dense_only and (i + 1) % step == 0 for i in range(n)]


def _qwen3_moe(c: Config, name: str) -> ModelSpec:
    n = c.int("num_hidden_layers")
    per_layer = [(moe, None) for moe in _sparse_layers(c, n)]
    moe = _moe(c, "num_experts", MlpSpec(intermediate_size=c.int("moe_intermediate_size")))
    mlp = MlpSpec(intermediate_size=c.int("intermediate_size")) if not all(m for m, _ in per_layer) else None
    return _spec(c, name, _gqa(c, qkv_bias=c.flag("attention_bias"), o_bias=False, qk_norm="head"), per_layer,
                 mlp, moe)


def _qwen2_moe(c: Config, name: str) -> ModelSpec:
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
    moe = _moe(c, "n_routed_experts", expert,
               shared=MlpSpec(intermediate_size=shared * expert.intermediate_size) if shared else None,
               score_correction_bias=c.text("topk_method") == "noaux_tc")
    return _spec(c, name, attention, per_layer, MlpSpec(intermediate_size=c.int("intermediate_size")), moe)


def _minimax_m2(c: Config, name: str) -> ModelSpec:
    qk_norm = "full" if c.flag("use_qk_norm") else "none"
    moe = _moe(c, "num_local_experts", MlpSpec(intermediate_size=c.int("intermediate_size")),
               score_correction_bias=c.flag("use_routing_bias"))
    layers = [(True, None)] * c.int("num_hidden_layers")
    return _spec(c, name, _gqa(c, qkv_bias=False, o_bias=False, qk_norm=qk_norm), layers, None, moe)


def _gpt_oss(c: Config, name: str) -> ModelSpec:
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
    per_layer = [(False, w) for w in _layer_windows(c, n, default)]
    bias = c.flag("attention_bias")
    attention = _gqa(c, qkv_bias=bias, o_bias=bias, qk_norm="head" if gemma3 else "none")
    return _spec(c, name, attention, per_layer, MlpSpec(intermediate_size=c.int("intermediate_size")), None,
                 norms_per_layer=4)


READERS: dict[str, Callable[[Config, str], ModelSpec]] = {
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
        raise InvalidInputError(f"{where}: 'model_type' must be a string, got {show_value(model_type)}")
    reader = READERS.get(model_type)
    if reader is None:
        why = f" ({NOT_YET[model_type]})" if model_type in NOT_YET else ""
        raise UnsupportedModelError(
            f"{where}: architecture {show_value(model_type)}{why} is not supported; supported: {', '.join(READERS)}")
    try:
        return reader(Config(cfg, where), name)
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
