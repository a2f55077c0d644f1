"""The engines' serving policies: the KV cache each engine's memory rule leaves, by hand, and the defaults named."""

from __future__ import annotations

import pytest

from rooflm.core.inputs import setup
from rooflm.serving.api import serve_traffic
from rooflm.serving.steps import GENERIC_POLICY, kv_room
from rooflm.specs.engine_policies import engine_policy
from rooflm.specs.hardware import load_hardware
from rooflm.specs.hf_config import load_model

# Llama-3.1-8B in bf16 on one H100 SXM (data/hardware/h100-sxm.toml), by hand:
#   device memory C = 85,520,809,984 B; runtime reserve R = 1 GiB = 1,073,741,824 B
#   weights W = 8,030,261,248 parameters × 2 B = 16,060,522,496 B
#   activations of an 8192-token step A = 8192 × 43,008 × 2 B = 704,643,072 B (the MLP's gate, up and product,
#     3 × 14,336 values per token)
#   KV per token = 32 layers × 8 KV heads × 128 × 2 (K, V) × 2 B = 131,072 B
# vLLM (0.9 × C − R − W − A) / 131,072 = 59,129,821,593.6 / 131,072 = 451,124.3
# TensorRT-LLM 0.9 × (C − R − W − A) / 131,072 = 0.9 × 67,681,902,592 / 131,072 = 464,734.3
# SGLang: M = C / 2^20 = 81,559.0 MiB; reserved = 512 + 8192 × 1.5 + 256 × 2 + 1 × 1 / 8 × 1024 = 13,440 MiB (above
#   the 10,240 floor); f = round((81,559.0 − 13,440) / 81,559.0, 3) = 0.835; KV = (0.835 × C − W) / 131,072
#   = (71,409,876,336.64 − 16,060,522,496) / 131,072 = 422,282.3 (its reserve holds activations and the runtime)
KV_TOKENS = {None: 451_124, "vllm": 451_124, "trtllm": 464_734, "sglang": 422_282}


def _room(engine: str | None) -> int:
    model, hw = load_model("llama-3.1-8b"), load_hardware("h100-sxm")
    d: dict[str, object] = {"efficiency": "calibrated"} if engine is None else {"efficiency": "calibrated",
                                                                                "engine": engine}
    d["max_num_batched_tokens"] = setup(model, hw, **d).max_num_batched_tokens  # type: ignore[arg-type]
    return kv_room(model, hw, d, 1, 1280).tokens  # type: ignore[arg-type]


@pytest.mark.parametrize("engine", list(KV_TOKENS))
def test_kv_capacity_under_each_engines_memory_rule(engine: str | None) -> None:
    assert _room(engine) == KV_TOKENS[engine]


def test_sglang_default_fraction_on_h100() -> None:
    # the hand figure above: 0.835
    assert engine_policy("sglang").memory_share(85_520_809_984, 8192, 1, 1) == 0.835


def test_trtllm_fraction_flag_is_a_share_of_the_free_memory() -> None:
    # --gpu-memory-utilization 0.5 under TensorRT-LLM: 0.5 × 67,681,902,592 / 131,072 = 258,185.2
    model, hw = load_model("llama-3.1-8b"), load_hardware("h100-sxm")
    d = {"efficiency": "calibrated", "engine": "trtllm", "gpu_memory_utilization": 0.5, "max_num_batched_tokens": 8192}
    assert kv_room(model, hw, d, 1, 1280).tokens == 258_185  # type: ignore[arg-type]


def test_deepseek_fp8_on_four_b200_admits_users_with_trtllm() -> None:
    # 169 GB of FP8 weights per device on a 192 GB B200: 0.9 × memory leaves ~2 GB for the cache under vLLM's
    # rule; TensorRT-LLM's 0.9 of the ~21 GB left after the weights holds several times as many tokens.
    kw = dict(tp=4, ep=4, quant="fp8-block", prompt_len=1024, gen_len=1024, concurrency=[16], method="steady")
    generic = serve_traffic("deepseek-v3", "b200", **kw)  # type: ignore[arg-type]
    trt = serve_traffic("deepseek-v3", "b200", engine="trtllm", **kw)  # type: ignore[arg-type]
    assert trt.kv_capacity_tokens > 5 * generic.kv_capacity_tokens
    assert trt.kv_capacity_tokens > 16 * 2048  # every user's prompt and output held at once
    assert trt.points[0].bound not in ("kv_cache", "max_running")
    assert trt.points[0].ttft_s is not None and trt.points[0].ttft_s < 0.5


def test_engine_defaults_and_their_names() -> None:
    generic = serve_traffic("llama-3.1-8b", "h100-sxm", concurrency=[1], method="steady")
    assert (generic.engine_policy, generic.max_running, generic.max_tokens_per_step) == (GENERIC_POLICY, 256, 8192)
    # vLLM 0.11.2 on a device of 70 GiB or more: max_num_seqs 1024; TensorRT-LLM: max_batch_size 2048
    assert serve_traffic("llama-3.1-8b", "h100-sxm", concurrency=[1], method="steady", engine="vllm").max_running == 1024
    trt = serve_traffic("llama-3.1-8b", "h100-sxm", concurrency=[1], method="steady", engine="trtllm",
                        max_running=64, max_tokens_per_step=4096)
    assert (trt.engine_policy, trt.max_running, trt.max_tokens_per_step) == ("trtllm 1.0.0", 64, 4096)
    assert trt.to_json_dict()["engine_policy"] == "trtllm 1.0.0"


def test_decode_past_the_graph_range_runs_eagerly() -> None:
    # TensorRT-LLM captures decode batches up to 128: at 129 users and more each step launches its kernels from the
    # CPU, so a step there costs more than the graph-replayed one with --max-running the same.
    # Inside the range (64 users) the graphs make a step cheaper than eager launches.
    kw = dict(concurrency=[64, 200], method="steady", prompt_len=128, gen_len=128, max_running=256)
    trt = serve_traffic("llama-3.1-8b", "h100-sxm", engine="trtllm", **kw)  # type: ignore[arg-type]
    eager = serve_traffic("llama-3.1-8b", "h100-sxm", engine="trtllm", cuda_graphs=False, **kw)  # type: ignore[arg-type]
    assert trt.points[0].tpot_s < 0.97 * eager.points[0].tpot_s  # type: ignore[operator]
    assert trt.points[1].tpot_s == pytest.approx(eager.points[1].tpot_s, rel=1e-9)
