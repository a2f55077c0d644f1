"""Deployment keywords are checked once, in inputs.setup: wrong choices, non-finite or out-of-range numbers
and absurd sizes are InvalidInputErrors that name the field, never a crash deeper in."""

from __future__ import annotations

import math

import pytest

import rooflm
from rooflm.specs.workload import MAX_BATCH, MAX_DEVICES, MAX_TOKENS


def _refused(**kwargs: object) -> rooflm.InvalidInputError:
    with pytest.raises(rooflm.InvalidInputError) as info:
        rooflm.analyze("llama-3.1-8b", "h100-sxm", **kwargs)  # type: ignore[arg-type]
    return info.value


def test_an_unknown_comm_algorithm_is_an_input_error() -> None:
    # Was a pydantic ValidationError from Parallelism's Literal field.
    err = _refused(comm_algorithm="mesh")
    assert str(err) == "comm_algorithm 'mesh': use auto, ring, tree"
    assert err.field == "comm_algorithm"


@pytest.mark.parametrize(("field", "value", "message"), [
    ("mla_decode", "fused", "mla_decode 'fused': use absorbed or naive"),
    ("efficiency", "fast", "efficiency 'fast': use ideal or calibrated"),
    ("efficiency", 1, "efficiency 1: use ideal or calibrated"),
])
def test_other_unknown_choices_name_the_field(field: str, value: object, message: str) -> None:
    err = _refused(**{field: value})
    assert (str(err), err.field) == (message, field)


def test_choices_are_case_insensitive() -> None:
    plain = rooflm.analyze("llama-3.1-70b", "h100-sxm", tp=8, efficiency="calibrated", comm_algorithm="tree")
    shouted = rooflm.analyze("llama-3.1-70b", "h100-sxm", tp=8, efficiency="CALIBRATED", comm_algorithm=" Tree ")
    assert (shouted.efficiency, shouted.layout.comm_algorithm) == ("calibrated", "tree")
    assert shouted.totals.time_s == plain.totals.time_s
    # The naive MLA decode reads more than the absorbed one, whatever the case it is asked in.
    naive = rooflm.analyze("deepseek-v3", "h200", tp=8, mla_decode="NAIVE", context=4096)
    absorbed = rooflm.analyze("deepseek-v3", "h200", tp=8, mla_decode="Absorbed", context=4096)
    assert naive.totals.bytes > absorbed.totals.bytes


# Each float keyword, the field the error must name, and an in-range value that is accepted.
FLOATS = [("kernel_overhead_s", "kernel_overhead", 5e-6), ("dequant_ops", "dequant_ops", 2.0),
          ("kv_dequant_ops", "kv_dequant_ops", 1.0), ("hot_expert_factor", "hot_expert_factor", 4.0),
          ("hot_expert_fraction", "hot_expert_fraction", 0.2), ("eta_memory", "eta_memory", 0.8),
          ("eta_compute", "eta_compute", 0.7)]


@pytest.mark.parametrize(("keyword", "field", "ok"), FLOATS)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 1e308, -1.0, 10**400, "0.5", True])
def test_float_keywords_refuse_non_finite_and_out_of_range_values(keyword: str, field: str, ok: float,
                                                                  bad: object) -> None:
    # NaN / inf / 1e308 used to reach the report ("not JSON compliant") or divide by zero; NaN was accepted
    # as a hot-expert factor.
    err = _refused(**{keyword: bad})
    assert err.field == field
    assert "must be" in str(err) and len(str(err)) < 120


@pytest.mark.parametrize(("keyword", "field", "ok"), FLOATS)
def test_float_keywords_accept_sane_values(keyword: str, field: str, ok: float) -> None:
    # dequant_ops prices dequantization as vector work: with the H100's measured W4A16 curves it needs a flat fraction.
    flat = {"eta_memory": 0.8} if keyword == "dequant_ops" else {}
    rooflm.analyze("mixtral-8x7b", "h100-sxm", quant="w4a16", tp=2, efficiency="calibrated", **{keyword: ok, **flat})


@pytest.mark.parametrize(("keyword", "limit"), [
    ("batch", MAX_BATCH), ("prompt_len", MAX_TOKENS), ("context", MAX_TOKENS), ("gen_len", MAX_TOKENS),
    ("tp", MAX_DEVICES), ("ep", MAX_DEVICES), ("pp", MAX_DEVICES), ("dp", MAX_DEVICES),
])
@pytest.mark.parametrize("excess", [1, 10**400])
def test_huge_sizes_are_refused_before_any_float_conversion(keyword: str, limit: int, excess: int) -> None:
    # 10**400 raised OverflowError in np.float64(batch) (analysis.run_phase) and in batch / dp.
    err = _refused(**{keyword: limit + excess})
    assert err.field == keyword
    assert f"must be at most {limit:,}" in str(err)
    assert len(str(err)) < 100  # the 400 digits are not printed


def test_the_largest_batch_is_still_analysed() -> None:
    r = rooflm.analyze("llama-3.1-8b", "h100-sxm", batch=MAX_BATCH, context=1024)
    assert math.isfinite(r.totals.time_s) and not r.memory.fits


def test_huge_sizes_are_refused_by_sweep_and_critical_batch_too() -> None:
    with pytest.raises(rooflm.InvalidInputError, match="batch must be at most"):
        rooflm.sweep("llama-3.1-8b", "h100-sxm", batch=[1, 10**400])
    with pytest.raises(rooflm.InvalidInputError, match="dp must be at most"):
        rooflm.critical_batch("llama-3.1-8b", "h100-sxm", dp=10**400)


@pytest.mark.parametrize(("keyword", "value"), [("quant", 4), ("kv_dtype", 8), ("act_quant", "yes")])
def test_wrongly_typed_keywords_name_the_field(keyword: str, value: object) -> None:
    assert _refused(**{keyword: value}).field == keyword


def test_kv_dtype_is_case_insensitive() -> None:
    assert rooflm.analyze("llama-3.1-8b", "h100-sxm", kv_dtype=" FP8 ").kv_dtype == "fp8"
