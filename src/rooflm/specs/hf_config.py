"""Read Hugging Face config.json files into ModelSpecs, and the shipped model catalog.

One reader per architecture family; each reads only the keys its family's transformers code
reads, with the same defaults, so that parameter counts match transformers' own.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rooflm.errors import InvalidInputError, UnknownNameError, UnsupportedModelError, arg, blames
from rooflm.specs.files import MAX_SPEC_BYTES, path_test, read_limited
from rooflm.specs.hf_families import READERS as MORE_FAMILIES
from rooflm.specs.hf_fields import Config, show_value
from rooflm.specs.hf_readers import READERS as FIRST_FAMILIES
from rooflm.specs.model import ModelSpec
from rooflm.specs.names import closest, normalise_name

MODELS_DIR = Path(__file__).resolve().parent.parent / "data" / "models"
CATALOG_FILE = MODELS_DIR / "catalog.toml"

# Known to transformers but not modelled: say so plainly rather than mis-model them.
NOT_YET = {
    "minimax": "lightning (linear) attention",
    "deepseek_v4": "compressed sparse attention and hash-routed experts",
    "kimi_linear": "Kimi Delta Attention linear-attention layers",
    "nemotron_h": "Mamba-2 layers", "falcon_h1": "Mamba-2 layers", "granitemoehybrid": "Mamba-2 layers",
    "jamba": "Mamba layers", "lfm2": "short-convolution layers",
    "gemma3n": "per-layer embeddings and AltUp",
    "gemma4": "per-layer input embeddings and layers that share their KV cache",
    "gemma4_text": "per-layer input embeddings and layers that share their KV cache",
}


# Every architecture rooflm reads, by config.json model_type.
READERS: dict[str, Callable[[Config, str], ModelSpec]] = {**FIRST_FAMILIES, **MORE_FAMILIES}


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
        near = closest(model_type, list(READERS))
        known = f"the closest it reads: {', '.join(near)}; " if near else ""
        raise UnsupportedModelError(f"{where}: architecture {show_value(model_type)}{why} is not supported; {known}"
                                    f"`rooflm models list` names all {len(READERS)} families rooflm reads")
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


def families() -> list[str]:
    """The config.json model_types rooflm reads, sorted."""
    return sorted(READERS)


def model_names() -> list[str]:
    return list(catalog())


def catalog_repo(name: str) -> str | None:
    """The Hugging Face repository id of a catalog name or alias (what a serving engine downloads), or None when
    ``name`` is not in the catalog."""
    key = _alias_table().get(normalise_name(name))
    return None if key is None else catalog()[key].get("hf_repo")


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
MAX_CONFIG_BYTES = MAX_SPEC_BYTES


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
    if not path_test(str(path), Path.exists):
        raise InvalidInputError(f"no config.json at {where}")
    raw = read_limited(path, MAX_CONFIG_BYTES, where, "a config.json")
    # A model is named by its folder (the Hub's layout, org/name/config.json), or by a file of its own name.
    default_name = path.parent.name if path.name == "config.json" else path.stem
    return from_hf_config(parse_config_text(raw, where), name or default_name, where)


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
                             f"Hugging Face Hub and pass its path ({arg('model')} path/to/config.json)")
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
