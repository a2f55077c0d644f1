"""The longest context a config allows: max_position_embeddings, raised by a context-extending RoPE scaling."""

from __future__ import annotations

import json
from typing import Any

import pytest

import rooflm
from rooflm.specs.hf_config import MODELS_DIR, from_hf_config, load_model

YARN_4X = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}


def _shipped(name: str) -> dict[str, Any]:
    return json.loads((MODELS_DIR / name / "config.json").read_text())


def test_yarn_raises_qwen3_to_131072() -> None:
    # Qwen3-8B's config.json says 40,960; its model card extends it with the YaRN block above:
    # original 32,768 × factor 4.0 = 131,072 tokens.
    cfg = {**_shipped("qwen3-8b"), "rope_scaling": YARN_4X}
    assert load_model("qwen3-8b").max_position_embeddings == 40_960
    assert from_hf_config(cfg, "qwen3-8b-yarn").max_position_embeddings == 131_072


def test_yarn_raises_qwen2_5_with_the_old_type_key() -> None:
    # Qwen2.5's model card writes "type" rather than "rope_type": 32,768 × 4.0 = 131,072.
    cfg = {**_shipped("qwen2.5-7b"), "max_position_embeddings": 32768,
           "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}}
    assert from_hf_config(cfg, "qwen2.5-7b-yarn").max_position_embeddings == 131_072


def test_a_long_prompt_is_accepted_once_yarn_is_on() -> None:
    spec = from_hf_config({**_shipped("qwen3-8b"), "rope_scaling": YARN_4X}, "qwen3-8b-yarn")
    with pytest.raises(rooflm.InvalidInputError, match="exceeds"):
        rooflm.analyze(load_model("qwen3-8b"), "h100-sxm", phase="prefill", batch=1, prompt_len=100_000)
    assert rooflm.analyze(spec, "h100-sxm", phase="prefill", batch=1, prompt_len=100_000).operators


@pytest.mark.parametrize(("name", "expected"), [
    ("llama-3.1-8b", 131_072),  # rope_type "llama3": max_position_embeddings is already the extended length
    ("deepseek-v3", 163_840),  # yarn: 4,096 × 40 = 163,840, equal to its max_position_embeddings
    ("gpt-oss-120b", 131_072),  # yarn: 4,096 × 32 = 131,072, equal to its max_position_embeddings
])
def test_configs_that_already_give_the_extended_length_keep_it(name: str, expected: int) -> None:
    assert load_model(name).max_position_embeddings == expected


def test_dynamic_without_an_original_length_scales_max_position_embeddings() -> None:
    # Dynamic NTK keeps the trained length in max_position_embeddings: 4,096 × 2.0 = 8,192.
    cfg = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
           "intermediate_size": 128, "vocab_size": 256, "max_position_embeddings": 4096,
           "rope_scaling": {"rope_type": "dynamic", "factor": 2.0}}
    assert from_hf_config(cfg, "dyn").max_position_embeddings == 8192
    linear = {**cfg, "rope_scaling": {"rope_type": "linear", "factor": 8.0}}
    assert from_hf_config(linear, "lin").max_position_embeddings == 4096


def test_transformers_5_rope_parameters_are_read_too() -> None:
    cfg = {k: v for k, v in _shipped("qwen3-8b").items() if k != "rope_scaling"}
    cfg["rope_parameters"] = {**YARN_4X, "rope_theta": 1_000_000.0}
    assert from_hf_config(cfg, "q").max_position_embeddings == 131_072


@pytest.mark.parametrize("scaling", [{"rope_type": "yarn", "factor": "4"}, {"rope_type": "yarn", "factor": -2.0},
                                     {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 1e12},
                                     {"rope_type": ["yarn"], "factor": 4.0}])
def test_junk_rope_scaling_is_named(scaling: dict[str, Any]) -> None:
    with pytest.raises(rooflm.InvalidInputError, match="rope_scaling"):
        from_hf_config({**_shipped("qwen3-8b"), "rope_scaling": scaling}, "q")
