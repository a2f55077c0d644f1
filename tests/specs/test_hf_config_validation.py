"""Wrong types and absurd sizes in a config.json: one-line InvalidInputErrors that name the key, never a Python error."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rooflm
from rooflm.errors import RooflmError
from rooflm.specs.hf_config import MODELS_DIR, from_hf_config, model_names

TINY = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 256, "max_position_embeddings": 512}
QWEN3_MOE = {**TINY, "model_type": "qwen3_moe", "moe_intermediate_size": 32, "num_experts": 8, "num_experts_per_tok": 2}
GPT_OSS = {**TINY, "model_type": "gpt_oss", "num_local_experts": 4, "num_experts_per_tok": 2, "sliding_window": 16,
           "layer_types": ["sliding_attention", "full_attention"]}
DEEPSEEK = {**TINY, "model_type": "deepseek_v3", "qk_nope_head_dim": 16, "qk_rope_head_dim": 8, "v_head_dim": 16,
            "kv_lora_rank": 32, "q_lora_rank": 48, "moe_intermediate_size": 32, "n_routed_experts": 8,
            "num_experts_per_tok": 2, "n_shared_experts": 1, "first_k_dense_replace": 1}


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


# Each of these reached a Python error (TypeError, ValueError, pydantic's ValidationError, MemoryError) before.
FUZZ_FINDINGS = [
    ({**TINY, "partial_rotary_factor": "abc"}, "partial_rotary_factor"),
    ({**TINY, "partial_rotary_factor": math.nan}, "partial_rotary_factor"),
    ({**TINY, "partial_rotary_factor": -1}, "partial_rotary_factor"),
    ({**TINY, "hidden_size": 2}, "num_attention_heads"),  # 2 // 4 heads: a head 0 wide
    ({**TINY, "model_type": ["llama"]}, "model_type"),  # unhashable
    ({**QWEN3_MOE, "mlp_only_layers": [[1]]}, "mlp_only_layers"),
    ({**DEEPSEEK, "first_k_dense_replace": "3"}, "first_k_dense_replace"),
    ({**GPT_OSS, "layer_types": 5}, "layer_types"),
    ({**DEEPSEEK, "n_shared_experts": -1}, "n_shared_experts"),
    ({**DEEPSEEK, "n_shared_experts": "2"}, "n_shared_experts"),  # was "2" * 1024: a 1,024-digit width
    ({**TINY, "hidden_size": _nested(5000)}, "hidden_size"),  # repr() of it overflows the stack
    ({**TINY, "num_hidden_layers": 10**12}, "num_hidden_layers"),  # a list of 1e12 layers: MemoryError
    ({**TINY, "vocab_size": 10**5000}, "vocab_size"),  # too long for str(): ValueError
]


@pytest.mark.parametrize(("cfg", "key"), FUZZ_FINDINGS, ids=[k for _, k in FUZZ_FINDINGS])
def test_fuzz_findings_are_one_line_errors_naming_the_key(cfg: dict[str, Any], key: str) -> None:
    with pytest.raises(rooflm.InvalidInputError) as caught:
        from_hf_config(cfg, "fuzzed")
    assert key in str(caught.value)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 300
    assert caught.value.field == "model"


@pytest.mark.parametrize(("key", "value", "limit"), [("num_hidden_layers", 20_000, "10,000"),
                                                     ("hidden_size", 2_000_000, "1,000,000"),
                                                     ("intermediate_size", 10**9, "1,000,000")])
def test_absurd_sizes_name_the_limit(key: str, value: int, limit: str) -> None:
    with pytest.raises(rooflm.InvalidInputError, match=f"'{key}'.*at most {limit}"):
        from_hf_config({**TINY, key: value}, "huge")


def test_the_limits_are_generous() -> None:
    # 10,000 layers and a 1,000,000-wide hidden state are accepted (ten times and more past today's models).
    m = from_hf_config({**TINY, "num_hidden_layers": 10_000, "hidden_size": 1_000_000}, "big")
    assert m.num_layers == 10_000 and m.hidden_size == 1_000_000


@pytest.mark.parametrize(("key", "value"), [("hidden_size", True), ("hidden_size", "64"), ("hidden_size", 64.5),
                                            ("tie_word_embeddings", "false"), ("attention_bias", 1),
                                            ("max_position_embeddings", 0), ("rope_scaling", "yarn")])
def test_wrong_types_are_refused(key: str, value: Any) -> None:
    with pytest.raises(rooflm.InvalidInputError, match=key):
        from_hf_config({**TINY, key: value}, "typed")


def test_whole_floats_are_integers() -> None:
    # JSON writers sometimes emit 4096.0; it is the integer 4096 (a fraction is not).
    assert from_hf_config({**TINY, "hidden_size": 64.0}, "f").hidden_size == 64


def test_top_k_cannot_exceed_the_experts() -> None:
    with pytest.raises(rooflm.InvalidInputError, match="num_experts_per_tok"):
        from_hf_config({**QWEN3_MOE, "num_experts_per_tok": 9}, "moe")


# -- property: random junk in real configs ------------------------------------------------------------------------
def _seeds() -> list[dict[str, Any]]:
    shipped = [json.loads((MODELS_DIR / n / "config.json").read_text()) for n in model_names()]
    gemma3 = {"model_type": "gemma3", "text_config": {"hidden_size": 64, "intermediate_size": 128, "head_dim": 16,
                                                      "num_hidden_layers": 6, "vocab_size": 256, "sliding_window": 8}}
    others = [{**TINY, "model_type": "gemma2", "head_dim": 16}, gemma3, {**TINY, "model_type": "phi3"},
              {**QWEN3_MOE, "model_type": "qwen2_moe", "shared_expert_intermediate_size": 64}, GPT_OSS, DEEPSEEK]
    # The later families (rooflm.specs.hf_families): one of each reader, tiny.
    later = [
        {**TINY, "model_type": "glm4_moe", "moe_intermediate_size": 32, "n_routed_experts": 8, "num_experts_per_tok": 2,
         "n_shared_experts": 1, "first_k_dense_replace": 1, "use_qk_norm": True},
        {**TINY, "model_type": "ernie4_5_moe", "moe_num_experts": 8, "moe_k": 2, "moe_intermediate_size": 32,
         "moe_layer_start_index": 1, "moe_layer_end_index": -1, "moe_layer_interval": 1, "moe_num_shared_experts": 1},
        {**TINY, "model_type": "llama4_text", "num_local_experts": 4, "intermediate_size_mlp": 96,
         "interleave_moe_layer_step": 2, "attention_chunk_size": 64, "no_rope_layers": [1, 0]},
        {**TINY, "model_type": "exaone4", "sliding_window": 16, "sliding_window_pattern": "LG"},
        {**TINY, "model_type": "cohere2", "sliding_window": 16, "use_qk_norm": True},
        {**TINY, "model_type": "olmo3", "sliding_window": 16}, {**TINY, "model_type": "seed_oss"},
        {**DEEPSEEK, "model_type": "glm4_moe_lite", "mlp_layer_types": ["dense", "sparse"]},
        {"model_type": "kimi_k25", "text_config": {**DEEPSEEK}},
        {"model_type": "qwen3_vl", "tie_word_embeddings": True, "text_config": {**TINY, "model_type": "qwen3_vl_text"}},
    ]
    return shipped + others + later


SEEDS = _seeds()
DELETE = object()
SCALARS = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=6)
           | st.sampled_from([0, -1, 1, 10**12, 2**63, 2**4000, 1e308, -0.0, "2", "abc", "full_attention"]))
JUNK = st.recursive(SCALARS, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids,
                                                                                        max_size=3), max_leaves=6)
VALUES = JUNK | st.integers(1, 3000).map(_nested) | st.just(DELETE)
# Keys that some reader reads, so that a mutation also lands where a config leaves a key out.
READ_KEYS = ["hidden_size", "num_attention_heads", "num_key_value_heads", "head_dim", "rotary_dim",
             "partial_rotary_factor", "num_hidden_layers", "vocab_size", "max_position_embeddings", "intermediate_size",
             "tie_word_embeddings", "attention_bias", "mlp_bias", "sliding_window", "layer_types", "mlp_only_layers",
             "decoder_sparse_step", "first_k_dense_replace", "moe_layer_freq", "n_shared_experts", "topk_method",
             "q_lora_rank", "kv_lora_rank", "rope_scaling", "text_config", "model_type", "use_sliding_window",
             "sliding_window_pattern", "num_experts_per_tok", "use_qk_norm", "original_max_position_embeddings",
             "moe_k", "moe_num_experts", "moe_layer_start_index", "moe_layer_end_index", "moe_layer_interval",
             "moe_num_shared_experts", "use_bias", "attention_out_bias", "interleave_moe_layer_step", "moe_layers",
             "no_rope_layers", "attention_chunk_size", "intermediate_size_mlp", "num_local_experts", "mlp_layer_types",
             "n_routed_experts", "moe_intermediate_size"]


@st.composite
def mutated_configs(draw: st.DrawFn) -> dict[str, Any]:
    cfg = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 3))):
        target = cfg
        nested = [k for k in ("text_config", "rope_scaling") if isinstance(cfg.get(k), dict)]
        if nested and draw(st.booleans()):
            target = cfg[draw(st.sampled_from(nested))]
        key = draw(st.sampled_from(sorted(target, key=str) + READ_KEYS))
        value = draw(VALUES)
        if value is DELETE:
            target.pop(key, None)
        else:
            target[key] = value
    return cfg


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_configs())
def test_junk_in_real_configs_gives_a_spec_or_a_rooflm_error(cfg: dict[str, Any]) -> None:
    try:
        spec = from_hf_config(cfg, "fuzzed")
    except RooflmError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 400
        assert exc.field == "model"
        return
    assert isinstance(spec, rooflm.ModelSpec)
    assert spec.total_params > 0 and spec.kv_bytes_per_token(2.0, context=spec.max_position_embeddings) > 0
