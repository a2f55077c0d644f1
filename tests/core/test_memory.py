"""Per-device memory under layouts: fit, shortfall, suggestions and the largest batch."""

import math

import pytest

import rooflm


def test_llama_70b_bf16_does_not_fit_one_h100_and_says_how_to_fix_it() -> None:
    r = rooflm.analyze("llama-3.1-70b", "h100-sxm", batch=1, context=8192)
    # 70,553,706,496 params * 2 B = 141.1 GB of weights against the 75.9 GB an engine may fill: nvidia-smi's
    # 81,559 MiB × 0.9 (vLLM's gpu_memory_utilization) − 1 GiB runtime reserve = 75,894,987,161.6 B.
    assert not r.memory.fits
    assert r.memory.capacity_bytes == pytest.approx(81_559 * 2**20 * 0.9 - 2**30)
    assert r.memory.shortfall_bytes == pytest.approx(r.memory.total_bytes - 75_894_987_161.6)
    changes = [s.change for s in r.memory.suggestions]  # data: API keywords, each surface spells them
    assert {"tp": 2} in changes and {"quant": "fp8"} in changes


def test_llama_70b_fits_on_tp2_with_max_batch_from_free_memory() -> None:
    r = rooflm.analyze("llama-3.1-70b", "h100-sxm", batch=1, context=8192, tp=2)
    assert r.memory.fits
    # Per device: norms replicated (80 * 2 * 8192 + 8192 = 1,318,912 params), everything else halved.
    norms = 80 * 2 * 8192 + 8192
    weights = ((70_553_706_496 - norms) / 2 + norms) * 2
    assert r.memory.weights_bytes == pytest.approx(weights, rel=1e-9)
    # KV per sequence per device: 8192 tokens * 80 layers * 4 KV heads * (128 + 128) * 2 B = 1.342 GB.
    kv = 8192 * 80 * 4 * 256 * 2
    by_kv_alone = math.floor((75_894_987_161.6 - weights) / kv)  # usable: 81,559 MiB × 0.9 − 1 GiB
    # Activations per sequence are small: the limit is the KV cache (give or take one sequence).
    assert by_kv_alone - 1 <= r.memory.max_batch <= by_kv_alone
    assert rooflm.analyze("llama-3.1-70b", "h100-sxm", batch=r.memory.max_batch, context=8192, tp=2).memory.fits
    assert not rooflm.analyze("llama-3.1-70b", "h100-sxm", batch=r.memory.max_batch + 1, context=8192,
                              tp=2).memory.fits


def test_expert_parallel_divides_expert_memory() -> None:
    one = rooflm.analyze("mixtral-8x7b", "h100-sxm", batch=1, context=1024, tp=8)
    ep = rooflm.analyze("mixtral-8x7b", "h100-sxm", batch=1, context=1024, dp=8, ep=8)
    # Both hold 1/8 of the experts; EP replicates attention (DP), TP splits it.
    # By hand (config.json: 32 layers, h 4096, 8 experts of I 14336, 32 q / 8 kv heads of 128, vocab 32000):
    # experts 32 * 8 * 3 * 4096 * 14336 = 45,097,156,608 params, 1/8 of them per device in bf16: 11,274,289,152 B.
    # The rest, replicated under EP: attention 32 * 4096 * (4096 + 1024 + 1024 + 4096) = 1,342,177,280, embedding and
    # lm_head 2 * 32000 * 4096 = 262,144,000, routers 32 * 8 * 4096 = 1,048,576, norms 32 * 2 * 4096 + 4096 = 266,240:
    # 1,605,636,096 params = 3,211,272,192 B.
    experts = 32 * 8 * 3 * 4096 * 14336 * 2 / 8
    rest = (32 * 4096 * 10240 + 2 * 32000 * 4096 + 32 * 8 * 4096 + 32 * 2 * 4096 + 4096) * 2
    assert ep.memory.weights_bytes > one.memory.weights_bytes
    assert ep.memory.weights_bytes == pytest.approx(experts + rest, rel=1e-9)
    # TP 8 splits attention and the embeddings too; norms and routers stay whole on every device:
    # (45,097,156,608 + 1,342,177,280 + 262,144,000) / 8 + 1,048,576 + 266,240 = 5,838,999,552 params = 11,677,999,104 B.
    assert one.memory.weights_bytes == pytest.approx(11_677_999_104, rel=1e-9)


def test_suggestions_are_data_each_surface_spells() -> None:
    from typer.testing import CliRunner

    from rooflm.cli import app

    r = rooflm.analyze("llama-3.1-70b", "h100-sxm", batch=1, context=8192)
    tp2 = next(s for s in r.memory.suggestions if s.change == {"tp": 2})
    # 141.1 GB of bf16 weights halved, plus half the 2.7 GB KV cache and the activations: ≈ 72 GB of the 75.9 usable.
    assert tp2.bytes_per_device is not None and 70.5e9 < tp2.bytes_per_device < 75.9e9
    # One H100 holds no sequence at all (the weights alone are 141 GB): no batch to suggest, and the text says so.
    assert not any("batch" in s.change for s in r.memory.suggestions)
    lines = r.memory.suggestion_lines(lambda k: f"<{k}>")
    assert f"<tp> 2: {tp2.bytes_per_device / 1e9:.1f} GB per device" in lines
    assert lines[-1].startswith("even one sequence does not fit as laid out")
    cli = CliRunner().invoke(app, ["analyze", "-m", "llama-3.1-70b", "--context", "8192"], env={"COLUMNS": "400"})
    assert f"would fit with: --tp 2: {tp2.bytes_per_device / 1e9:.1f} GB per device" in cli.stdout
    explained = rooflm.explain("llama-3.1-70b", "h100-sxm", batch=1, context=8192).to_json_dict()
    assert f"`--tp 2: {tp2.bytes_per_device / 1e9:.1f} GB per device`" in str(explained["markdown"])
    assert {"change": {"tp": 2}, "bytes_per_device": tp2.bytes_per_device} in explained["memory_suggestions"]


def test_the_largest_batch_is_the_last_suggestion() -> None:
    # Llama-3.1-8B at 128k context, batch 64: ~1 TB of KV cache cannot fit one H100; fewer sequences do.
    r = rooflm.analyze("llama-3.1-8b", "h100-sxm", batch=64, context=131072)
    assert not r.memory.fits
    last = r.memory.suggestions[-1]
    assert last.change == {"batch": r.memory.max_batch} and last.bytes_per_device is None
    assert r.memory.suggestion_lines(str)[-1] == f"batch {r.memory.max_batch}: the largest batch that fits as laid out"
