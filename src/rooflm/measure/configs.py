"""Model configs used by measure and validate (Hugging Face config.json dicts), and their rooflm specs.

A spec is made the way a user's would be: the config is written as a config.json and loaded with the public
``rooflm.load_model``, so validation exercises the same path as ``--model path/to/config.json``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from rooflm.errors import InvalidInputError
from rooflm.specs.files import write_atomic
from rooflm.specs.hf_config import load_model
from rooflm.specs.model import ModelSpec

Config = dict[str, Any]

# A decode step of this model is almost only the framework's fixed costs (≈ 1.4 MB of weights per layer, tens of
# µs at DRAM speed, against hundreds of µs of overhead), yet its tensors are wide enough to take the same kernel
# paths as real models: bf16 GEMMs narrower than ~64 take a much cheaper path on CPUs, which would hide the cost.
TINY_DECODER: Config = {
    "model_type": "llama", "hidden_size": 256, "intermediate_size": 512, "num_attention_heads": 4,
    "num_key_value_heads": 2, "vocab_size": 512, "max_position_embeddings": 4096,
}


def tiny_config(layers: int) -> Config:
    return {**TINY_DECODER, "num_hidden_layers": layers}


def write_config(config: Config, folder: Path, name: str) -> Path:
    path = folder / name / "config.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"cannot create folder {path.parent}: {exc.strerror}", field="write_table") from None
    return write_atomic(path, json.dumps(config, indent=2) + "\n", str(path), field="write_table")


def model_spec(config: Config, name: str) -> ModelSpec:
    """The rooflm spec of a config dict (raises UnsupportedModelError for an architecture rooflm cannot model)."""
    with tempfile.TemporaryDirectory(prefix="rooflm-") as tmp:
        return load_model(write_config(config, Path(tmp), name))
