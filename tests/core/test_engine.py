"""What a serving engine adds to the roofline: collectives as engines run them, CUDA-graph decode, a
per-step CPU cost, the memory it may fill, chunked prefill and whole sequences per data-parallel replica."""

import numpy as np
import pytest

import rooflm

MIB = 2**20
# H100 SXM: NVLink 450 GB/s per direction; nvidia-smi 81,559 MiB.
NVLINK = 450e9
USABLE = 81_559 * MIB * 0.9 - 2**30  # vLLM's gpu_memory_utilization 0.9, less the 1 GiB runtime reserve


def _op(r: rooflm.Report, name: str) -> rooflm.analyses.report.OperatorRow:
    return next(o for o in r.operators if o.name == name)


def test_llama_70b_tp8_decode_at_batch_64_spends_well_under_a_quarter_in_communication() -> None:
    r = rooflm.analyze("llama-3.1-70b", "h100-sxm", batch=64, context=1024, tp=8, quant="bf16", efficiency="calibrated")
    # Message: 64 tokens × 8192 × 2 B = 1 MiB. Over 8 GPUs the ring bytes are 2·S·7/8 = 1.75 MiB per device.
    # The engine's pick (h100-sxm.toml) is the fastest of: one-shot 5.7 us + 1.75 MiB / (0.15 × 450 GB/s) = 32.9 us;
    # NVLS 9.1 us + 1.75 MiB / (0.84 × 450 GB/s) = 9.1 + 4.854 = 13.95 us; NCCL 22 us + 1.75 MiB / (0.97 × 450 GB/s)
    # = 26.2 us -> NVLS, 13.95 us, plus one CUDA-graph launch of 1.3 us. (The old ring charge: 14 steps × 2 us +
    # 4.08 us = 32.1 us.)
    per = 9.1e-6 + 1.75 * MIB / (0.84 * NVLINK) + 1.3e-6
    assert _op(r, "attn_all_reduce").time_s == pytest.approx(80 * per, rel=1e-9)
    assert _op(r, "mlp_all_reduce").time_s == pytest.approx(80 * per, rel=1e-9)
    # 161 all-reduces ≈ 2.45 ms with launches, 2.25 ms of communication, against a step of ≈ 12.6 ms.
    assert r.totals.comm_time_s / r.totals.time_s < 0.20


def test_small_all_reduces_take_the_one_shot_kernel_and_ideal_keeps_the_bandwidth_bound() -> None:
    cal = rooflm.analyze("llama-3.1-70b", "h100-sxm", batch=1, context=1024, tp=8, quant="bf16",
                         efficiency="calibrated", cuda_graphs=False)
    ideal = rooflm.analyze("llama-3.1-70b", "h100-sxm", batch=1, context=1024, tp=8, quant="bf16")
    # S = 8192 × 2 B = 16 KiB: one-shot 5.7 us + 1.75 × 16,384 / (0.15 × 450e9) = 5.7 + 0.425 us beats NVLS's 9.18 us.
    s = 16_384
    assert _op(cal, "attn_all_reduce").time_s == pytest.approx(80 * (5.7e-6 + 1.75 * s / (0.15 * NVLINK) + 4e-6))
    # Ideal: the bytes at the link's bandwidth, no latency (no algorithm beats it: every bus efficiency is ≤ 1).
    assert _op(ideal, "attn_all_reduce").time_s == pytest.approx(80 * 1.75 * s / NVLINK)
    # An explicit ring keeps its steps in both modes: 14 × 2 us + the bytes.
    ring = rooflm.analyze("llama-3.1-70b", "h100-sxm", batch=1, context=1024, tp=8, quant="bf16", comm_algorithm="ring")
    assert _op(ring, "attn_all_reduce").time_s == pytest.approx(80 * (14 * 2e-6 + 1.75 * s / NVLINK))


def test_overlap_hides_that_fraction_of_the_communication() -> None:
    kw = {"batch": 64, "context": 1024, "tp": 8, "quant": "bf16", "efficiency": "calibrated", "cuda_graphs": False}
    none = rooflm.analyze("llama-3.1-70b", "h100-sxm", **kw)
    half = rooflm.analyze("llama-3.1-70b", "h100-sxm", comm_overlap=0.5, **kw)
    assert half.totals.comm_time_s == pytest.approx(none.totals.comm_time_s / 2)
    with pytest.raises(rooflm.InvalidInputError) as info:
        rooflm.analyze("llama-3.1-70b", "h100-sxm", comm_overlap=1.0, **kw)
    assert info.value.field == "comm_overlap"


def test_decode_replays_cuda_graphs_and_pays_a_cpu_step_prefill_stays_eager() -> None:
    kw = {"batch": 1, "context": 128, "quant": "bf16", "efficiency": "calibrated"}
    graphs = rooflm.analyze("llama-3.1-8b", "h100-sxm", **kw)
    eager = rooflm.analyze("llama-3.1-8b", "h100-sxm", cuda_graphs=False, **kw)
    kernels = sum(o.count for o in graphs.operators if o.kind != "host")
    # h100-sxm.toml [runtime]: 1.3 us per replayed kernel, 250 us of CPU per step; eager launches cost 4 us.
    assert graphs.totals.overhead_time_s == pytest.approx(kernels * 1.3e-6 + 250e-6)
    assert eager.totals.overhead_time_s == pytest.approx(kernels * 4e-6 + 250e-6)
    assert _op(graphs, "step_overhead").time_s == pytest.approx(250e-6)
    quiet = rooflm.analyze("llama-3.1-8b", "h100-sxm", step_overhead_s=0.0, **kw)
    assert quiet.totals.overhead_time_s == pytest.approx(kernels * 1.3e-6)
    pre = rooflm.analyze("llama-3.1-8b", "h100-sxm", phase="prefill", batch=1, prompt_len=1024, quant="bf16",
                         efficiency="calibrated")
    pre_kernels = sum(o.count for o in pre.operators if o.kind != "host")
    assert pre.totals.overhead_time_s == pytest.approx(pre_kernels * 4e-6 + 250e-6)
    # Ideal mode has no overhead at all, and no step row.
    assert rooflm.analyze("llama-3.1-8b", "h100-sxm", batch=1, context=128).totals.overhead_time_s == 0


def test_memory_is_the_devices_bytes_times_the_utilization_less_the_reserve() -> None:
    r = rooflm.analyze("llama-3.1-8b", "h100-sxm", batch=1, context=1024, quant="bf16")
    assert r.memory.capacity_bytes == pytest.approx(USABLE)  # 85,520,809,984 × 0.9 − 1,073,741,824 = 75.89e9
    assert r.memory.capacity_bytes >= 0.85 * 85e9
    half = rooflm.analyze("llama-3.1-8b", "h100-sxm", batch=1, context=1024, quant="bf16", gpu_memory_utilization=0.5)
    assert half.memory.capacity_bytes == pytest.approx(81_559 * MIB * 0.5 - 2**30)
    assert rooflm.load_hardware("h100-sxm").memory_capacity.value == 81_559 * MIB
    assert rooflm.load_hardware("b200").memory_bandwidth.value == 8e12


def test_a_long_prefill_runs_in_chunks_that_reread_the_weights_and_earlier_kv() -> None:
    kw = {"phase": "prefill", "batch": 1, "prompt_len": 16384, "quant": "bf16"}
    chunked = rooflm.analyze("llama-3.1-8b", "h100-sxm", **kw)  # default chunk: 8192 tokens -> 2 chunks
    whole = rooflm.analyze("llama-3.1-8b", "h100-sxm", max_num_batched_tokens=16384, **kw)
    # Each chunk reads every weight once: twice the weight bytes, but for the embedding rows looked up, one per
    # token either way (16,384 × 4096 × 2 B = 134,217,728 B).
    rows = 16384 * 4096 * 2
    assert chunked.totals.weight_bytes == pytest.approx(2 * whole.totals.weight_bytes - rows, rel=1e-9)
    # The second chunk's 8192 queries also read the 8192 tokens the first cached: 32 layers × 8 KV heads ×
    # (128 + 128) × 2 B = 131,072 B per token -> 8192 × 131,072 B = 1.07 GB of KV reads.
    past = _op(chunked, "attention.past_chunks")
    assert past.kv_bytes == pytest.approx(8192 * 131_072)
    # Its FLOPs: 2 chunks × past 8192/2 (the mean) × 8192 queries × 4 × 32 heads × 128 × 32 layers = the
    # off-diagonal block of the causal square that a single pass would have counted.
    assert past.flops == pytest.approx(2 * 4096 * 8192 * 4 * 32 * 128 * 32)
    # Memory: one chunk's activations, not the whole prompt's.
    assert chunked.memory.activation_bytes == pytest.approx(whole.memory.activation_bytes / 2, rel=0.01)


def test_a_batch_smaller_than_the_replicas_is_one_sequence_on_one_replica() -> None:
    one = rooflm.analyze("llama-3.1-8b", "h100-sxm", batch=1, context=1024, quant="fp8")
    spread = rooflm.analyze("llama-3.1-8b", "h100-sxm", batch=1, context=1024, quant="fp8", dp=8)
    # fp8 qkv_proj at one token: 2·4096·6144 FLOPs over 4096·6144 B of weights ≈ 2 FLOP/B (not 0.25 at 1/8 token).
    assert _op(spread, "qkv_proj").arithmetic_intensity == pytest.approx(2.0, rel=0.01)
    assert spread.totals.time_s == pytest.approx(one.totals.time_s)
    # 9 sequences on 8 replicas: the busiest runs 2, and sets the step.
    nine = rooflm.analyze("llama-3.1-8b", "h100-sxm", batch=9, context=1024, quant="fp8", dp=8)
    two = rooflm.analyze("llama-3.1-8b", "h100-sxm", batch=2, context=1024, quant="fp8")
    assert nine.totals.time_s == pytest.approx(two.totals.time_s)
    assert nine.totals.tokens_per_s == pytest.approx(9 / two.totals.time_s)


def test_unknown_engine_values_are_input_errors() -> None:
    for kw, field in [({"gpu_memory_utilization": 0.0}, "gpu_memory_utilization"),
                      ({"max_num_batched_tokens": 0}, "max_num_batched_tokens"),
                      ({"step_overhead_s": -1.0}, "step_overhead"), ({"cuda_graphs": "yes"}, "cuda_graphs")]:
        with pytest.raises(rooflm.InvalidInputError) as info:
            rooflm.analyze("llama-3.1-8b", "h100-sxm", **kw)  # type: ignore[arg-type]
        assert info.value.field == field, kw


def test_pipeline_parallelism_reports_latency_and_pipelined_throughput() -> None:
    kw = {"batch": 8, "context": 1024, "quant": "bf16", "pp": 4}
    r = rooflm.analyze("llama-3.1-70b", "h100-sxm", **kw)
    # One batch walks the 4 stages in turn: the step time is the latency of all 80 layers. With 4 micro-batches of
    # 8 in flight, one per stage, each stage is busy all the time: 4 × 8 tokens per step latency.
    assert r.totals.pipelined_tokens_per_s == pytest.approx(4 * 8 / r.totals.time_s)
    assert r.totals.tokens_per_s == pytest.approx(8 / r.totals.time_s)
    assert rooflm.analyze("llama-3.1-8b", "h100-sxm", batch=8).totals.pipelined_tokens_per_s is None


@pytest.mark.parametrize("efficiency", ["ideal", "calibrated"])
def test_a_sweep_across_the_chunk_size_equals_its_single_analyses(efficiency: str) -> None:
    # 8,192 tokens fit one chunk (no attention over earlier chunks); 8,193 take two. In one sweep the whole-prompt
    # points must not pay for the other points' past-chunk attention (it once added 1.3 ms there, so prefill time
    # fell as the prompt grew by one token), nor launch its kernel.
    lengths = np.array([8190, 8192, 8193, 16384, 16390])
    s = rooflm.sweep("llama-3.1-8b", "h100-sxm", phase="prefill", batch=[1, 3], prompt_len=lengths.tolist(),
                     efficiency=efficiency)
    single = [rooflm.analyze("llama-3.1-8b", "h100-sxm", phase="prefill", batch=b, prompt_len=p,
                             efficiency=efficiency).totals.time_s for b in (1, 3) for p in lengths]
    np.testing.assert_allclose(s.columns["time_s"], single, rtol=1e-12)
    assert np.all(np.diff(s.columns["time_s"].reshape(2, len(lengths)), axis=1) > 0)
    # numpy integers are sizes too (an API caller's np.arange)
    assert rooflm.sweep("llama-3.1-8b", "h100-sxm", phase="prefill", batch=[np.int64(1)], prompt_len=lengths,
                        efficiency=efficiency).columns["time_s"][1] == s.columns["time_s"][1]
