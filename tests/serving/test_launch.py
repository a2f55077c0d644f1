"""`--emit vllm|sglang|trtllm`: launch and benchmark commands of a configuration, checked against commands written
by hand from each engine's documentation."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rooflm.cli import app
from rooflm.serving import launch as L
from rooflm.specs.hf_config import MODELS_DIR, catalog

runner = CliRunner()


def _dense() -> L.LaunchConfig:
    """Llama-3.1-8B on tp 2, FP8 weights and KV cache, 3 n-gram drafted tokens, 128 running, 4096-token steps,
    85% of the memory, 64 users, 1024-token prompts and 256-token outputs."""
    return L.config("llama-3.1-8b", prompt_len="1024", gen_len="256", concurrency=[64], max_running=128,
                    max_tokens_per_step=4096,
                    deployment={"tp": 2, "quant": "fp8", "kv_dtype": "fp8", "spec_tokens": 3, "acceptance": 0.8,
                                "gpu_memory_utilization": 0.85})


def test_vllm_commands_equal_the_documented_ones() -> None:
    launch = L.launch("vllm", _dense())
    # https://docs.vllm.ai/en/v0.11.2/cli/serve/ (--tensor-parallel-size, --quantization fp8, --kv-cache-dtype fp8,
    # --max-num-seqs, --max-num-batched-tokens, --gpu-memory-utilization, --max-model-len) and
    # https://docs.vllm.ai/en/v0.11.2/features/spec_decode.html (--speculative-config, method "ngram").
    # --max-model-len: the longest prompt plus the longest output, 1024 + 256 = 1280.
    assert launch.serve == [[
        "vllm", "serve", "meta-llama/Llama-3.1-8B", "--tensor-parallel-size", "2", "--quantization", "fp8",
        "--kv-cache-dtype", "fp8", "--max-num-seqs", "128", "--max-num-batched-tokens", "4096",
        "--gpu-memory-utilization", "0.85", "--max-model-len", "1280",
        "--speculative-config", '{"method":"ngram","num_speculative_tokens":3}']]
    # https://docs.vllm.ai/en/v0.11.2/cli/bench/serve/: 10 prompts per user, 640 for 64 users.
    assert launch.benchmark == [[
        "vllm", "bench", "serve", "--backend", "vllm", "--model", "meta-llama/Llama-3.1-8B", "--dataset-name",
        "random", "--ignore-eos", "--random-input-len", "1024", "--random-output-len", "256", "--num-prompts", "640",
        "--max-concurrency", "64", "--request-rate", "inf", "--save-result", "--result-dir", ".",
        "--result-filename", "rooflm-vllm-c64.json"]]
    assert launch.version_checked == "0.11.2" and launch.files == {}


def test_sglang_commands_equal_the_documented_ones() -> None:
    launch = L.launch("sglang", _dense())
    # https://docs.sglang.io/advanced_features/server_arguments.html: --tp-size, --quantization fp8,
    # --kv-cache-dtype fp8_e4m3, --max-running-requests, --chunked-prefill-size, --mem-fraction-static,
    # --context-length; speculative decoding (NGRAM) with k + 1 = 4 draft tokens.
    assert launch.serve == [[
        "python", "-m", "sglang.launch_server", "--model-path", "meta-llama/Llama-3.1-8B", "--tp-size", "2",
        "--quantization", "fp8", "--kv-cache-dtype", "fp8_e4m3", "--max-running-requests", "128",
        "--chunked-prefill-size", "4096", "--mem-fraction-static", "0.85", "--context-length", "1280",
        "--speculative-algorithm", "NGRAM", "--speculative-num-draft-tokens", "4"]]
    # https://docs.sglang.io/developer_guide/bench_serving.html: random range ratio 1 draws exactly the lengths
    # asked; EOS is ignored unless --disable-ignore-eos; --output-file appends JSONL.
    assert launch.benchmark == [[
        "python", "-m", "sglang.bench_serving", "--backend", "sglang", "--model", "meta-llama/Llama-3.1-8B",
        "--dataset-name", "random", "--random-range-ratio", "1", "--random-input-len", "1024",
        "--random-output-len", "256", "--num-prompts", "640", "--max-concurrency", "64", "--request-rate", "inf",
        "--output-file", "rooflm-sglang-c64.jsonl"]]


def test_trtllm_commands_equal_the_documented_ones() -> None:
    launch = L.launch("trtllm", _dense())
    # https://nvidia.github.io/TensorRT-LLM/1.2.0rc6/commands/trtllm-serve/trtllm-serve.html: --backend pytorch,
    # --tp_size, --max_batch_size, --max_num_tokens, --max_seq_len, --kv_cache_free_gpu_memory_fraction,
    # --extra_llm_api_options (a YAML file of LLM API settings: kv_cache_config.dtype, speculative_config).
    assert launch.serve == [[
        "trtllm-serve", "meta-llama/Llama-3.1-8B", "--backend", "pytorch", "--tp_size", "2", "--max_batch_size",
        "128", "--max_num_tokens", "4096", "--max_seq_len", "1280", "--kv_cache_free_gpu_memory_fraction", "0.85",
        "--extra_llm_api_options", "extra-llm-api-config.yml"]]
    assert launch.files == {"extra-llm-api-config.yml": (
        "enable_chunked_prefill: true\nkv_cache_config:\n  dtype: \"fp8\"\n"
        "speculative_config:\n  decoding_type: \"NGram\"\n  max_draft_len: 3\n")}
    # https://nvidia.github.io/TensorRT-LLM/1.2.0rc6/commands/trtllm-serve/run-benchmark-with-trtllm-serve.html
    assert launch.benchmark == [[
        "python", "-m", "tensorrt_llm.serve.scripts.benchmark_serving", "--backend", "openai", "--model",
        "meta-llama/Llama-3.1-8B", "--dataset-name", "random", "--random-ids", "--ignore-eos",
        "--random-input-len", "1024", "--random-output-len", "256", "--num-prompts", "640", "--max-concurrency",
        "64", "--request-rate", "inf", "--save-result", "--result-dir", ".", "--result-filename",
        "rooflm-trtllm-c64.json"]]
    assert any(n.startswith("quant fp8: TensorRT-LLM has no flag") for n in launch.notes)


def _moe() -> L.LaunchConfig:
    return L.config("qwen3-30b-a3b", prompt_len="2048", gen_len="128", concurrency=[256],
                    deployment={"tp": 2, "dp": 4, "ep": 8, "spec_tokens": 2, "acceptance": 0.7, "draft": "mtp"})


def test_experts_over_every_replica_are_each_engines_data_parallel_attention() -> None:
    """tp 2 × dp 4 with ep 8: vLLM's DP + --enable-expert-parallel (EP = tp × dp), SGLang's DP attention
    (--tp-size 8 --dp-size 4 --enable-dp-attention --ep-size 8: server_arguments.html)."""
    vllm = L.launch("vllm", _moe()).serve[0]
    assert vllm[3:9] == ["--tensor-parallel-size", "2", "--data-parallel-size", "4", "--enable-expert-parallel",
                         "--max-num-seqs"]
    assert '{"method":"mtp","num_speculative_tokens":2}' in vllm
    sglang = L.launch("sglang", _moe()).serve[0]
    assert sglang[5:12] == ["--tp-size", "8", "--dp-size", "4", "--enable-dp-attention", "--ep-size", "8"]
    # MTP runs as an EAGLE chain: 2 steps, top-1, 3 draft tokens (k + 1).
    assert sglang[-8:] == ["--speculative-algorithm", "EAGLE", "--speculative-num-steps", "2",
                           "--speculative-eagle-topk", "1", "--speculative-num-draft-tokens", "3"]


def test_trtllm_spreads_experts_over_replicas_only_with_attention_data_parallelism() -> None:
    """tp 1 × dp 8 with ep 8 is --tp_size 8 --ep_size 8 and enable_attention_dp (trtllm-serve.html; the LLM API's
    enable_attention_dp); tp 2 × dp 4 is not expressible: each replica keeps its experts (ep 2), notes say so."""
    c = L.config("qwen3-30b-a3b", prompt_len="1024", gen_len="128", concurrency=[64],
                 deployment={"dp": 8, "ep": 8})
    launch = L.launch("trtllm", c)
    assert launch.serve[0][4:8] == ["--tp_size", "8", "--ep_size", "8"]
    assert "enable_attention_dp: true" in launch.files["extra-llm-api-config.yml"]
    launch = L.launch("trtllm", _moe())
    assert launch.serve[0][4:8] == ["--tp_size", "2", "--ep_size", "2"]
    assert [n.split(":")[0] for n in launch.notes][:2] == ["dp 4", "ep 8"]


# A setting is in a launch when one of these flags (engines.toml's keys) is in a serve command, or a key in the
# options file, or a note names it first.
_WHERE = {"tp": ("tp",), "pp": ("pp",), "dp": ("dp",), "ep": ("ep",), "quant": ("quant", "dtype"),
          "kv_dtype": ("kv_dtype", "kv_cache_config"), "spec_tokens": ("speculative", "spec_algorithm",
                                                                       "speculative_config"),
          "max_running": ("max_running",), "max_tokens_per_step": ("max_tokens_per_step",),
          "memory_fraction": ("memory_fraction",), "max_model_len": ("max_model_len",)}
_NOTE = {"tp": "tp", "pp": "pp", "dp": "dp", "ep": "ep", "quant": "quant", "kv_dtype": "kv-dtype",
         "spec_tokens": "spec-tokens", "disaggregate": "disaggregate"}


def _represented(engine: str, launch: L.Launch, setting: str) -> bool:
    flags = L.engines()[engine]["flags"]
    args = {a for argv in launch.serve for a in argv}
    if any(flags.get(k) in args for k in _WHERE.get(setting, ())):
        return True
    if any(k in text for k in _WHERE.get(setting, ()) for text in launch.files.values()):
        return True
    return any(n.startswith(_NOTE.get(setting, "-") + " ") for n in launch.notes)


@pytest.mark.parametrize("engine", L.ENGINES)
@pytest.mark.parametrize("case", ["dense", "moe", "pipelined", "disaggregated", "w4a16"])
def test_every_setting_is_in_the_command_or_a_note(engine: str, case: str) -> None:
    d: dict[str, object] = {"dense": {"tp": 2, "quant": "fp8", "kv_dtype": "fp8"},
                            "moe": {"tp": 2, "dp": 4, "ep": 8, "quant": "bf16", "kv_dtype": "int4",
                                    "spec_tokens": 1, "acceptance": 0.5},
                            "pipelined": {"tp": 4, "pp": 2, "dp": 2, "quant": "fp4", "kv_dtype": "fp8"},
                            "disaggregated": {"tp": 2, "quant": "fp8", "kv_dtype": "bf16"},
                            "w4a16": {"tp": 1, "quant": "w4a16", "kv_dtype": "bf16", "spec_tokens": 4,
                                      "acceptance": 0.6, "draft": "qwen3-8b"}}[case]  # type: ignore[assignment]
    c = L.config("qwen3-30b-a3b", prompt_len="uniform:100:900", gen_len="300", concurrency=[8],
                 request_rate=[2.5], disaggregate="1P:3D" if case == "disaggregated" else None,
                 deployment=d)  # type: ignore[arg-type]
    launch = L.launch(engine, c)
    settings = [k for k in ("tp", "ep", "pp", "dp", "quant", "kv_dtype", "spec_tokens") if d.get(k) not in (None, 1)]
    settings += ["max_running", "max_tokens_per_step", "memory_fraction", "max_model_len"]
    if case == "disaggregated":
        settings.append("disaggregate")
    missing = [s for s in settings if not _represented(engine, launch, s)]
    assert not missing, f"{engine} {case}: {missing} in neither the command nor a note: {launch}"
    # The loads are the benchmark's: one run per load, the users or the rate as given.
    assert [a[a.index("--max-concurrency") + 1] for a in launch.benchmark if "--max-concurrency" in a] == ["8"]
    assert launch.benchmark[1][launch.benchmark[1].index("--request-rate") + 1] == "2.5"
    # the prompt distribution's mean (500) is sent, and a note says so
    assert "500" in launch.benchmark[0] and any(n.startswith("prompt-len uniform:100:900") for n in launch.notes)
    if case == "w4a16":
        assert any(n.startswith("quant w4a16") for n in launch.notes) and "Qwen/Qwen3-8B" in str(launch)


def test_sglang_runs_a_disaggregated_plan_as_one_command_per_pool() -> None:
    c = L.config("llama-3.1-8b", prompt_len="1024", gen_len="256", concurrency=[32], disaggregate="1P:3D",
                 deployment={"tp": 2})
    serve = L.launch("sglang", c).serve
    assert [argv[-2:] for argv in serve] == [["--disaggregation-mode", "prefill"], ["--disaggregation-mode", "decode"]]
    assert serve[0][:-2] == serve[1][:-2]
    assert len(L.launch("vllm", c).serve) == 1  # vLLM's needs a connector and a proxy: a note says so
    assert any(n.startswith("disaggregate 1P:3D: vLLM") for n in L.launch("vllm", c).notes)


def test_catalog_models_are_named_by_their_hugging_face_repository() -> None:
    for name, entry in catalog().items():
        assert "/" in entry["hf_repo"], name
        assert L.model_argument(name) == entry["hf_repo"]
    assert L.model_argument("some/dir/config.json") == "some/dir"


def test_unknown_engine_is_one_line_naming_the_flag_and_the_choices() -> None:
    r = runner.invoke(app, ["serving", "--concurrency", "1", "--emit", "tensorrt"])
    assert r.exit_code == 2
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "--emit" in lines[0] and "vllm | sglang | trtllm" in lines[0]
    r = runner.invoke(app, ["plan", "--gpus", "1", "--emit", "vlm"])
    assert r.exit_code == 2 and "--emit" in r.output


def test_a_config_path_with_spaces_is_one_shell_word(tmp_path: Path) -> None:
    folder = tmp_path / "my models" / "llama 8b"
    folder.mkdir(parents=True)
    shutil.copy(MODELS_DIR / "llama-3.1-8b" / "config.json", folder / "config.json")
    r = runner.invoke(app, ["serving", "--model", str(folder / "config.json"), "--concurrency", "4", "--method",
                            "steady", "--emit", "vllm"])
    assert r.exit_code == 0, r.output
    serve = next(line for line in r.output.splitlines() if line.startswith("vllm serve"))
    assert shlex.quote(str(folder)) in serve and shlex.split(serve)[2] == str(folder)
    bench = next(line for line in r.output.splitlines() if line.startswith("vllm bench serve"))
    assert shlex.split(bench)[shlex.split(bench).index("--model") + 1] == str(folder)


def test_serving_json_has_the_launch_and_the_options_file_is_a_here_document() -> None:
    args = ["serving", "--concurrency", "4,16", "--method", "steady", "--tp", "2", "--kv-dtype", "fp8", "--emit",
            "trtllm"]
    doc = json.loads(runner.invoke(app, [*args, "--json"]).output)
    launch = doc["launch"]
    assert launch["engine"] == "trtllm" and launch["version_checked"] == "1.2.0rc6"
    assert set(launch) == {"engine", "version_checked", "sources", "serve", "benchmark", "files", "notes"}
    assert len(launch["benchmark"]) == 2 and launch["serve"][0][0] == "trtllm-serve"
    text = runner.invoke(app, args).output.splitlines()
    start = text.index("cat > extra-llm-api-config.yml <<'EOF'")
    assert text[start + 1:start + 4] == ["enable_chunked_prefill: true", "kv_cache_config:", '  dtype: "fp8"']
    assert text[start + 4] == "EOF"


def test_plan_json_gives_every_frontier_point_its_launch() -> None:
    r = runner.invoke(app, ["plan", "--gpus", "2", "--quant", "bf16", "--kv-dtype", "bf16", "--max-running", "64",
                            "--max-tokens-per-step", "2048", "--concurrency", "4,32", "--disaggregate", "off",
                            "--workers", "1", "--emit", "sglang", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    for point in doc["pareto"]:
        argv = point["launch"]["serve"][0]
        c = point["config"]
        assert argv[argv.index("--tp-size") + 1] == str(c["tp"] * (c["dp"] if c["ep"] > 1 else 1))
        assert argv[argv.index("--max-running-requests") + 1] == str(c["max_running"])
        bench = point["launch"]["benchmark"][0]
        assert bench[bench.index("--max-concurrency") + 1] == str(c["concurrency"])
    assert doc["launch"] == next(p["launch"] for p in doc["pareto"] if p["config"] == doc["best"]["config"])


def test_plan_prints_the_best_points_launch_or_says_there_is_none() -> None:
    args = ["plan", "--gpus", "1", "--quant", "bf16", "--kv-dtype", "bf16", "--max-running", "64",
            "--max-tokens-per-step", "2048", "--concurrency", "4", "--workers", "1", "--emit", "vllm"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    serve = shlex.split(next(line for line in lines if line.startswith("vllm serve")))
    # the one configuration searched: tp 1, 64 running, 2048-token steps, 4 users
    assert serve[serve.index("--max-num-seqs") + 1] == "64" and serve[serve.index("--tensor-parallel-size") + 1] == "1"
    bench = shlex.split(next(line for line in lines if line.startswith("vllm bench serve")))
    assert bench[bench.index("--max-concurrency") + 1] == "4"
    r = runner.invoke(app, [*args, "--tpot-slo", "1e-6"])
    assert r.exit_code == 0 and "--emit vllm: no best configuration to launch" in r.output
    assert "vllm serve" not in r.output
