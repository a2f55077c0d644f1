"""Invariants that must hold for any workload (hypothesis draws the workloads)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import rooflm
from rooflm.analyses.sweep import sweep

SCHEMES = st.sampled_from(["bf16", "fp8", "w4a16", "w4a8", "int8"])
EFFICIENCY = st.sampled_from(["ideal", "calibrated"])


@settings(max_examples=40, deadline=None)
@given(batch=st.integers(1, 2048), context=st.integers(1, 100_000), quant=SCHEMES, efficiency=EFFICIENCY)
def test_decode_time_and_bytes_never_decrease_with_batch_or_context(batch: int, context: int, quant: str,
                                                                    efficiency: str) -> None:
    s = sweep("llama-3.1-8b", "h100-sxm", batch=[batch, batch + 1, 2 * batch], context=[context, context + 7],
              quant=quant, efficiency=efficiency)
    for col in ("time_s", "bytes"):
        grid = s.columns[col].reshape(3, 2)  # batch-major: rows are batches, columns contexts
        assert np.all(np.diff(grid, axis=0) >= 0)
        assert np.all(np.diff(grid, axis=1) >= 0)
        assert np.all(np.isfinite(grid)) and np.all(grid > 0)


@settings(max_examples=30, deadline=None)
@given(batch=st.integers(1, 512), prompt_len=st.integers(1, 16_384), quant=SCHEMES)
def test_prefill_time_never_decreases_with_batch_or_prompt(batch: int, prompt_len: int, quant: str) -> None:
    s = sweep("llama-3.1-8b", "h100-sxm", phase="prefill", batch=[batch, batch + 3],
              prompt_len=[prompt_len, prompt_len + 5], quant=quant)
    grid = s.columns["time_s"].reshape(2, 2)
    assert np.all(np.diff(grid, axis=0) >= 0) and np.all(np.diff(grid, axis=1) >= 0)


@settings(max_examples=30, deadline=None)
@given(batch=st.integers(1, 4096), context=st.integers(1, 131_072), k=st.integers(2, 5))
def test_decode_flops_scale_exactly_linearly_with_batch(batch: int, context: int, k: int) -> None:
    one = rooflm.analyze("llama-3.1-8b", "h100-sxm", batch=batch, context=context).totals.flops
    many = rooflm.analyze("llama-3.1-8b", "h100-sxm", batch=k * batch, context=context).totals.flops
    assert many == k * one or abs(many - k * one) <= 1e-12 * many


@settings(max_examples=30, deadline=None)
@given(batch=st.integers(1, 4096), context=st.integers(1, 131_072), quant=SCHEMES,
       phase=st.sampled_from(["prefill", "decode", "e2e"]))
def test_ideal_is_a_lower_bound_of_calibrated(batch: int, context: int, quant: str, phase: str) -> None:
    kw = {"phase": phase, "batch": batch, "prompt_len": min(context, 4096), "context": context, "gen_len": 8,
          "quant": quant}
    ideal = rooflm.analyze("llama-3.1-8b", "h100-sxm", **kw).totals
    calibrated = rooflm.analyze("llama-3.1-8b", "h100-sxm", efficiency="calibrated", **kw).totals
    assert ideal.time_s <= calibrated.time_s
    assert all(np.isfinite([ideal.time_s, ideal.flops, ideal.bytes, ideal.arithmetic_intensity]))


LAYOUTS = st.sampled_from([{}, {"tp": 2}, {"tp": 4}, {"dp": 4, "ep": 4}, {"pp": 2}])


@settings(max_examples=30, deadline=None)
@given(batch=st.integers(1, 4096), context=st.integers(1, 32_768), layout=LAYOUTS,
       model=st.sampled_from(["mixtral-8x7b", "qwen3-30b-a3b", "gpt-oss-20b"]))
def test_moe_decode_time_and_weight_reads_never_decrease_with_batch(batch: int, context: int, layout: dict,
                                                                    model: str) -> None:
    s = sweep(model, "h100-sxm", batch=[batch, batch + 1, 2 * batch], context=[context], **layout)
    for col in ("time_s", "weight_bytes", "experts_hit"):
        assert np.all(np.diff(s.columns[col]) >= -1e-9 * s.columns[col][:-1])
    # Never more experts than exist, never fewer than top-k at a batch of one.
    spec = rooflm.load_model(model).moe
    assert spec is not None
    assert np.all(s.columns["experts_hit"] <= spec.num_experts + 1e-9)
    # One token alone picks top-k distinct experts, and more tokens only add to them.
    assert np.all(s.columns["experts_hit"] >= spec.top_k - 1e-9)
