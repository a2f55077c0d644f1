"""Model description read from a Hugging Face config.json; parameter counts by group.

A ModelSpec holds only the sizes the cost model needs. It is built by one reader per
architecture family, so that a user's own config.json goes through the same path as the
catalog's copies.
"""

from __future__ import annotations

import json
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rooflm.errors import InvalidInputError, UnknownNameError, UnsupportedModelError
from rooflm.specs.names import closest, normalise_name

MODELS_DIR = Path(__file__).resolve().parent.parent / "data" / "models"
CATALOG_FILE = MODELS_DIR / "catalog.toml"

# Dense decoder-only families whose blocks are: RMSNorm → attention (RoPE, GQA) → RMSNorm →
# gated MLP (SiLU), residual adds around both. They differ only in biases and qk-norm.
DENSE_FAMILIES = ("llama", "mistral", "qwen2", "qwen3")
# Known to transformers but not modelled yet: say so plainly rather than mis-model them.
NOT_YET = {
    "mixtral": "mixture of experts",
    "qwen2_moe": "mixture of experts",
    "qwen3_moe": "mixture of experts",
    "deepseek_v2": "MLA attention and mixture of experts",
    "deepseek_v3": "MLA attention and mixture of experts",
    "minimax_m2": "mixture of experts",
    "gpt_oss": "mixture of experts with sliding-window attention",
    "gemma2": "sliding-window attention and logit soft-capping",
    "gemma3": "sliding-window attention",
}


class ModelSpec(BaseModel):
    """Sizes of a dense decoder-only transformer (names follow the config's meaning, not its keys)."""

    model_config = ConfigDict(frozen=True)

    name: str
    model_type: str
    hidden_size: int = Field(gt=0)
    num_layers: int = Field(gt=0)
    num_q_heads: int = Field(gt=0)
    num_kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    intermediate_size: int = Field(gt=0)
    vocab_size: int = Field(gt=0)
    tie_word_embeddings: bool = False
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    qk_norm: bool = False
    rotary_dim: int = Field(gt=0)
    max_position_embeddings: int = Field(gt=0)
    source: str = ""

    @property
    def q_width(self) -> int:
        return self.num_q_heads * self.head_dim

    @property
    def kv_width(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def gqa_ratio(self) -> float:
        """Query heads per KV head: the AI of decode attention with a 16-bit cache."""
        return self.num_q_heads / self.num_kv_heads

    def params_by_group(self) -> dict[str, int]:
        """Parameter counts grouped the way memory and quantization treat them."""
        h, layers = self.hidden_size, self.num_layers
        attn = h * (self.q_width + 2 * self.kv_width) + self.q_width * h
        attn_bias = (self.q_width + 2 * self.kv_width if self.qkv_bias else 0) + (h if self.o_bias else 0)
        mlp = 3 * h * self.intermediate_size
        mlp_bias = 2 * self.intermediate_size + h if self.mlp_bias else 0
        norms = 2 * h + (2 * self.head_dim if self.qk_norm else 0)
        embedding = self.vocab_size * h
        return {
            "embedding": embedding,
            "attention": layers * attn,
            "mlp": layers * mlp,
            "bias": layers * (attn_bias + mlp_bias),
            "norm": layers * norms + h,
            "lm_head": 0 if self.tie_word_embeddings else embedding,
        }

    @property
    def total_params(self) -> int:
        return sum(self.params_by_group().values())

    @property
    def active_params(self) -> int:
        """Parameters used per token; equal to the total for a dense model."""
        return self.total_params

    @property
    def non_embedding_params(self) -> int:
        groups = self.params_by_group()
        return self.total_params - groups["embedding"] - groups["lm_head"]

    def kv_bytes_per_token(self, bytes_per_element: float = 2.0) -> float:
        """K and V of every layer for one token."""
        return 2 * self.num_layers * self.kv_width * bytes_per_element


def _need(cfg: dict[str, Any], key: str, where: str) -> Any:
    if key not in cfg or cfg[key] is None:
        raise InvalidInputError(f"{where} has no {key!r}; is it a decoder-only model's config.json?")
    value = cfg[key]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInputError(f"{where}: {key!r} must be a positive integer, got {value!r}")
    return value


def from_hf_config(cfg: dict[str, Any], name: str, where: str = "config.json") -> ModelSpec:
    """Read the sizes of a supported architecture from a parsed config.json."""
    if not isinstance(cfg, dict):
        raise InvalidInputError(f"{where} is not a JSON object")
    model_type = cfg.get("model_type")
    if model_type is None:
        raise InvalidInputError(f"{where} has no 'model_type'; is it a Hugging Face config.json?")
    if model_type in NOT_YET:
        raise UnsupportedModelError(
            f"{where}: architecture {model_type!r} ({NOT_YET[model_type]}) is not supported yet; "
            f"supported: {', '.join(DENSE_FAMILIES)}"
        )
    if model_type not in DENSE_FAMILIES:
        raise UnsupportedModelError(
            f"{where}: architecture {model_type!r} is not supported; supported: {', '.join(DENSE_FAMILIES)}"
        )
    hidden = _need(cfg, "hidden_size", where)
    n_q = _need(cfg, "num_attention_heads", where)
    n_kv = cfg.get("num_key_value_heads") or n_q  # absent: multi-head attention
    head_dim = cfg.get("head_dim") or hidden // n_q  # Qwen3 gives it; Llama derives it
    if n_q % n_kv:
        raise InvalidInputError(f"{where}: {n_q} query heads are not a multiple of {n_kv} KV heads")
    attention_bias = bool(cfg.get("attention_bias", False))
    return ModelSpec(
        name=name,
        model_type=model_type,
        hidden_size=hidden,
        num_layers=_need(cfg, "num_hidden_layers", where),
        num_q_heads=n_q,
        num_kv_heads=n_kv,
        head_dim=head_dim,
        intermediate_size=_need(cfg, "intermediate_size", where),
        vocab_size=_need(cfg, "vocab_size", where),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        # Qwen2 always has q/k/v biases (not in its config); Llama and Qwen3 follow attention_bias,
        # and Llama's also covers o_proj.
        qkv_bias=attention_bias or model_type == "qwen2",
        o_bias=attention_bias and model_type == "llama",
        mlp_bias=bool(cfg.get("mlp_bias", False)),
        qk_norm=model_type == "qwen3",
        rotary_dim=int(head_dim * float(cfg.get("partial_rotary_factor", 1.0))),
        max_position_embeddings=_need(cfg, "max_position_embeddings", where),
        source=where,
    )


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


def load_model(name_or_path: str | Path | ModelSpec) -> ModelSpec:
    """A catalog name or alias (any case, HF repo ids too), or a config.json path or its folder."""
    if isinstance(name_or_path, ModelSpec):
        return name_or_path
    text = str(name_or_path)
    if text in _CACHE:
        return _CACHE[text]
    aliases = _alias_table()
    key = aliases.get(normalise_name(text))
    if key is not None:
        spec = read_config_file(MODELS_DIR / key / "config.json", key)
    elif text.endswith(".json") or Path(text).exists():
        spec = read_config_file(Path(text))
    else:
        raise UnknownNameError("model", text, closest(text, list(aliases), aliases), "rooflm models list")
    _CACHE[text] = spec
    return spec
