"""Values of the deployment levers: the tree all-reduce, pipeline
parallelism, the inter-node link, hot-expert skew and the KV dequantization cost, each derived by hand from the
data files' sourced figures (data/hardware/h100-sxm.toml: NVLink 4 at 450 GB/s per direction with 2 us per step,
InfiniBand NDR at 50 GB/s per GPU with 5 us per step, 8 GPUs per NVLink domain; l40s.toml: fp32 91.6 TFLOP/s, bf16
362.05 TFLOP/s)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import rooflm
from rooflm.cli import app


def _op(report: rooflm.Report, name: str) -> rooflm.analyses.report.OperatorReport:
    return next(o for o in report.operators if o.name == name)


def test_tree_all_reduce_pays_logarithmic_steps() -> None:
    # Llama-3.1-70B, TP 8, batch 8: each all-reduce carries 8 tokens * 8192 * 2 B = 131,072 B; every device sends
    # 2 * S * 7/8 = 229,376 B at 450 GB/s = 0.5097 us. A tree takes 2 * ⌈log2 8⌉ = 6 steps of 2 us (12.51 us), a ring
    # 2 * 7 = 14 (28.51 us). 80 layers, one attention all-reduce each.
    tree = rooflm.analyze("llama-3.1-70b", "h100-sxm", batch=8, context=1024, tp=8, comm_algorithm="tree")
    ring = rooflm.analyze("llama-3.1-70b", "h100-sxm", batch=8, context=1024, tp=8, comm_algorithm="ring")
    assert _op(tree, "attn_all_reduce").count == 80
    assert _op(tree, "attn_all_reduce").time_s == pytest.approx(80 * (229_376 / 450e9 + 6 * 2e-6), rel=1e-9)
    assert _op(ring, "attn_all_reduce").time_s == pytest.approx(80 * (229_376 / 450e9 + 14 * 2e-6), rel=1e-9)


def test_tensor_parallel_past_one_node_runs_on_the_inter_node_link() -> None:
    # TP 16 spans two 8-GPU NVLink domains, so the ring runs at the InfiniBand rate: 2 * 131,072 * 15/16 = 245,760 B
    # at 50 GB/s = 4.915 us, plus 2 * 15 = 30 steps of 5 us: 154.92 us per all-reduce (against 28.51 us on NVLink).
    r = rooflm.analyze("llama-3.1-70b", "h100-sxm", batch=8, context=1024, tp=16, comm_algorithm="ring")
    assert _op(r, "attn_all_reduce").time_s == pytest.approx(80 * (245_760 / 50e9 + 30 * 5e-6), rel=1e-9)


@pytest.mark.parametrize("pp", [2, 4])
def test_pipeline_stages_add_sends_and_pipelined_throughput(pp: int) -> None:
    one = rooflm.analyze("llama-3.1-70b", "h100-sxm", batch=8, context=1024)
    r = rooflm.analyze("llama-3.1-70b", "h100-sxm", batch=8, context=1024, pp=pp)
    # pp − 1 stage boundaries, each a point-to-point send of the 8 tokens' hidden states, 131,072 B at 450 GB/s plus
    # one 2 us step: 2.2913 us each.
    send = _op(r, "pipeline_send")
    per_send = 131_072 / 450e9 + 2e-6
    assert send.count == pp - 1
    assert send.time_s == pytest.approx((pp - 1) * per_send, rel=1e-9)
    # One token's step still walks every stage in turn: the latency is one device's plus the sends ...
    assert r.totals.time_s == pytest.approx(one.totals.time_s + (pp - 1) * per_send, rel=1e-9)
    # ... while pp micro-batches are in flight, one per stage: pp * 8 tokens per step latency.
    assert r.totals.pipelined_tokens_per_s == pytest.approx(pp * 8 / r.totals.time_s, rel=1e-9)
    # The busiest stage holds 80/pp layers of (70,553,706,496 − 2 * 128256 * 8192 − 8192) / 80 = 855,654,400
    # parameters and the embedding table or lm_head, 128256 * 8192 = 1,050,673,152 (the final norm's 8,192 fall within
    # the tolerance), in bf16: 70.55 GB at pp 2, 36.33 GB at pp 4, where one H100 cannot hold the 141.1 GB.
    assert r.memory.weights_bytes == pytest.approx(2 * (80 // pp * 855_654_400 + 1_050_673_152), rel=1e-6)
    assert r.memory.fits and not one.memory.fits


def test_hot_experts_through_analyze_hit_fewer_experts() -> None:
    # Qwen3-30B-A3B (128 experts, top-8), batch 64, 10% of the experts hot at 8x the probability of the others:
    # ⌈12.8⌉ = 13 hot, 115 cold; p_cold = 8 / (115 + 8 * 13) = 0.036530, p_hot = 0.29224 (still 8 picks per token).
    # Experts hit = 13 (1 − (1 − p_hot)^64) + 115 (1 − (1 − p_cold)^64) = 13 * 1.0000 + 115 * (1 − 0.092392)
    # = 117.374, against 128 (1 − (120/128)^64) = 125.942 without skew. Expert weights read scale with them.
    uniform = rooflm.analyze("qwen3-30b-a3b", "h100-sxm", batch=64, context=128)
    hot = rooflm.analyze("qwen3-30b-a3b", "h100-sxm", batch=64, context=128, hot_expert_factor=8.0,
                         hot_expert_fraction=0.1)
    assert uniform.moe is not None and hot.moe is not None
    assert uniform.moe.distinct_experts == pytest.approx(125.942, rel=1e-5)
    assert hot.moe.distinct_experts == pytest.approx(117.374, rel=1e-5)
    per_expert = 3 * 2048 * 768 * 2 * 48
    expert_bytes = sum(o.weight_bytes for o in hot.operators if o.name.startswith("experts"))
    assert expert_bytes == pytest.approx(117.374 * per_expert, rel=1e-5)


def test_kv_dequant_ops_flag_prices_each_cached_element() -> None:
    # Llama-3.1-8B, batch 16 at 4096 tokens, fp8 KV on an L40S (calibrated): each decode step loads
    # 16 * 4096 * 2 (K, V) * 8 heads * 128 * 32 layers = 4,294,967,296 cached elements (one byte each). Each
    # conversion instruction runs at the CUDA-core rate, 91.6e12 / 2 per second (an FMA is 2 FLOPs) times the default
    # compute fraction 0.75: 125.03 us per instruction per element. The attention FLOPs, 2 * 2 * 16 * 32 heads *
    # 4096 * 128 * 32 = 34,359,738,368 at 362.05 TFLOP/s * 0.80 bf16, take 118.63 us.
    def attention(ops: str) -> dict:
        result = CliRunner().invoke(app, ["analyze", "--model", "llama-3.1-8b", "--hardware", "l40s", "--batch", "16",
                                          "--context", "4096", "--kv-dtype", "fp8", "--efficiency", "calibrated",
                                          "--kv-dequant-ops", ops, "--json"])
        assert result.exit_code == 0, result.output
        return next(o for o in json.loads(result.stdout)["operators"] if o["name"] == "attention")

    per_op = 4_294_967_296 / (91.6e12 / 2 * 0.75)
    flops_s = 34_359_738_368 / (362.05e12 * 0.80)
    for ops in (0, 1, 2.5):
        assert attention(str(ops))["compute_time_s"] == pytest.approx(flops_s + ops * per_op, rel=1e-9)
    # Still far below the 4.3 GB of cache reads at 864 GB/s: the flag moves compute time, not the bound here.
    assert attention("2.5")["bound"] == "memory"
