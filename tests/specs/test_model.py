import json
from pathlib import Path

import pytest

import rooflm
from rooflm.specs.hf_config import catalog, from_hf_config, load_model, model_names

TINY = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 256, "max_position_embeddings": 512}


def test_llama_3_1_8b_params_match_the_published_count(llama8b: rooflm.ModelSpec) -> None:
    # By hand: embedding 128256*4096 = 525,336,576; per layer q/o 4096*4096 each, k/v 4096*1024 each
    # = 41,943,040; MLP 3*4096*14336 = 176,160,768; two norms 8,192 -> 218,112,000 x 32 = 6,979,584,000;
    # final norm 4,096; untied lm_head 525,336,576. Sum: 8,030,261,248 (the published figure).
    assert llama8b.total_params == 8_030_261_248
    assert llama8b.params_by_group()["embedding"] == 525_336_576


def test_llama_3_1_70b_params_match_the_published_count() -> None:
    assert load_model("llama-3.1-70b").total_params == 70_553_706_496


@pytest.mark.parametrize("name", ["llama-3.1-8b", "llama-3.1-70b"])
def test_exact_published_counts_from_catalog(name: str) -> None:
    assert load_model(name).total_params == catalog()[name]["published_params"]


@pytest.mark.parametrize("name", [n for n in ["qwen3-8b", "qwen3-32b", "qwen2.5-7b"]])
def test_approximate_published_sizes(name: str) -> None:
    if name not in model_names():
        pytest.skip(f"{name} not shipped")
    published = catalog()[name]["published_params_approx"]
    assert load_model(name).total_params == pytest.approx(published, rel=0.01)


def test_kv_bytes_per_token(llama8b: rooflm.ModelSpec) -> None:
    # 2 (K,V) * 32 layers * 8 heads * 128 * 2 B = 131,072 B = 128 KiB (figures from meta-llama/Llama-3.1-8B config.json:
    # num_hidden_layers 32, num_key_value_heads 8, head_dim 4096 / 32 heads = 128).
    assert llama8b.kv_bytes_per_token() == 128 * 1024
    # Llama-3.1-70B: 2 * 80 * 8 * 128 * 2 = 327,680 B = 320 KiB.
    assert load_model("llama-3.1-70b").kv_bytes_per_token() == 320 * 1024


def test_mha_when_kv_heads_absent_and_head_dim_derived() -> None:
    cfg = {k: v for k, v in TINY.items() if k != "num_key_value_heads"}
    m = from_hf_config(cfg, "tiny")
    assert m.num_kv_heads == 4 and m.head_dim == 16


def test_mqa_and_explicit_head_dim() -> None:
    m = from_hf_config({**TINY, "num_key_value_heads": 1, "head_dim": 32}, "tiny")
    assert m.num_kv_heads == 1 and m.head_dim == 32 and m.q_width == 128


def test_tied_embeddings_count_the_table_once() -> None:
    untied = from_hf_config(TINY, "t").total_params
    tied = from_hf_config({**TINY, "tie_word_embeddings": True}, "t").total_params
    assert untied - tied == 256 * 64


def test_biases_follow_the_config() -> None:
    base = from_hf_config(TINY, "t").total_params
    # Llama attention_bias: q (64) + k (32) + v (32) + o (64) per layer = 192 x 2 layers.
    assert from_hf_config({**TINY, "attention_bias": True}, "t").total_params - base == 384
    # Qwen2 always biases q/k/v, never o: 128 x 2 layers.
    assert from_hf_config({**TINY, "model_type": "qwen2"}, "t").total_params - base == 256


def test_unsupported_architecture_is_refused_clearly() -> None:
    with pytest.raises(rooflm.UnsupportedModelError, match="lightning"):
        from_hf_config({**TINY, "model_type": "minimax"}, "t")
    # A hybrid's linear-attention or state-space layers would be mis-modelled as attention: named and refused.
    with pytest.raises(rooflm.UnsupportedModelError, match=r"'kimi_linear' \(Kimi Delta Attention"):
        from_hf_config({**TINY, "model_type": "kimi_linear"}, "t")
    with pytest.raises(rooflm.UnsupportedModelError, match="`rooflm models list` names all"):
        from_hf_config({**TINY, "model_type": "bert"}, "t")
    # A near miss is offered the families it may mean (the list of all of them is too long for one line).
    with pytest.raises(rooflm.UnsupportedModelError, match=r"the closest it reads: qwen3_moe"):
        from_hf_config({**TINY, "model_type": "qwen3moe"}, "t")


def test_user_config_file_and_folder(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    assert load_model(tmp_path).hidden_size == 64
    assert load_model(str(tmp_path / "config.json")).num_layers == 2
    assert load_model(tmp_path).name == tmp_path.name  # the Hub's layout: the folder names the model
    (tmp_path / "glm-4.5-air.json").write_text(json.dumps(TINY))
    assert load_model(tmp_path / "glm-4.5-air.json").name == "glm-4.5-air"  # a file of its own name: that name


def test_malformed_configs(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(rooflm.InvalidInputError, match="not valid JSON"):
        load_model(bad)
    bad.write_text(json.dumps({**TINY, "hidden_size": -3}))
    with pytest.raises(rooflm.InvalidInputError, match="positive integer"):
        load_model(bad)
    bad.write_text(json.dumps({k: v for k, v in TINY.items() if k != "vocab_size"}))
    with pytest.raises(rooflm.InvalidInputError, match="vocab_size"):
        load_model(bad)


def test_names_resolve_like_hf_ids_and_suggest() -> None:
    assert load_model("meta-llama/Llama-3.1-8B").name == "llama-3.1-8b"
    assert load_model("LLAMA-3.1-8B").name == "llama-3.1-8b"
    with pytest.raises(rooflm.UnknownNameError, match=r"llama-3\.1-8b"):
        load_model("llama-3.1-8")
