"""validate.py's comparison logic on synthetic timings with hand-worked answers."""

from __future__ import annotations

import pytest

from rooflm.measure.validate import (
    CaseResult,
    GemmResult,
    elasticity,
    infer_measured_bounds,
    relative_error,
    summarize,
)


def decode(batch: int, measured: float, predicted: float, ideal: float, bound: str = "memory",
           nbytes: float = 1e9, context: int = 256, model: str = "m") -> CaseResult:
    return CaseResult(model=model, phase="decode", batch=batch, context=context, measured_s=measured,
                      predicted_s=predicted, ideal_s=ideal, predicted_bound=bound, bytes=nbytes)


def test_relative_error_is_signed_against_the_measurement() -> None:
    assert relative_error(0.11, 0.10) == pytest.approx(0.10)
    assert relative_error(0.05, 0.10) == pytest.approx(-0.5)  # predicted twice too fast


def test_elasticity_is_zero_when_flat_and_one_when_proportional() -> None:
    assert elasticity(1.0, 1.0, 1, 8) == 0.0
    assert elasticity(1.0, 4.0, 16, 64) == pytest.approx(1.0)


def test_summary_medians_worst_and_ideal_violations() -> None:
    # Errors: +10%, −20%, +5% (decode) and −30% (prefill). Decode median |e| = 10%; all four: (10+20)/2 = 15%;
    # worst 30%. The ideal predicted 0.25 s for a 0.2 s step once: one violation.
    cases = [
        decode(1, 1.0, 1.1, 0.8), decode(4, 1.0, 0.8, 0.7), decode(16, 2.0, 2.1, 1.5),
        CaseResult(model="m", phase="prefill", batch=1, prompt_len=128, measured_s=0.2, predicted_s=0.14,
                   ideal_s=0.25, predicted_bound="compute"),
    ]
    gemms = [GemmResult(dtype="bf16", m=1, k=8, n=8, measured_s=1.0, predicted_s=0.9, ideal_s=0.5,
                        predicted_bound="memory")]
    s = summarize(cases, gemms)
    assert s.decode.median_abs_error == pytest.approx(0.10)
    assert s.prefill.median_abs_error == pytest.approx(0.30)
    assert s.all.median_abs_error == pytest.approx(0.15)
    assert s.all.worst_abs_error == pytest.approx(0.30)
    assert s.all.ideal_violations == 1
    assert s.gemm.median_abs_error == pytest.approx(0.10)
    assert s.worst_case == "m prefill batch 1, prompt 128"


def test_measured_bound_follows_the_batch_sweep() -> None:
    # Achievable bandwidth 10 GB/s. Batches 1, 4, 16, 64 at one context; 1 GB per step.
    # 1→4: 100 → 102 ms, elasticity ln(1.02)/ln 4 ≈ 0.014: flat, and 1 GB / 0.1 s = 10 GB/s ≥ 25% → memory.
    # 4→16: 102 → 110 ms, ≈ 0.05 → memory. 16→64: 110 → 400 ms, ln(3.64)/ln 4 ≈ 0.93 → compute.
    # Batch 1 has no previous point: it takes the 1→4 step (memory).
    cases = [decode(1, 0.100, 0.1, 0.09), decode(4, 0.102, 0.1, 0.09), decode(16, 0.110, 0.1, 0.09),
             decode(64, 0.400, 0.3, 0.2, bound="compute")]
    got = infer_measured_bounds(cases, bandwidth=10e9)
    assert [c.measured_bound for c in got] == ["memory", "memory", "memory", "compute"]
    assert [c.bound_match for c in got] == [True, True, True, True]
    assert summarize(got, []).bound_agreement == 1.0


def test_flat_steps_that_move_few_bytes_are_overhead_bound() -> None:
    # 2 MB in 1 ms is 2 GB/s, under 25% of 10 GB/s: the time is not explained by the bytes → overhead.
    cases = [decode(1, 1.0e-3, 1e-3, 1e-5, bound="overhead", nbytes=2e6),
             decode(16, 1.05e-3, 1e-3, 1e-5, bound="memory", nbytes=2e6)]
    got = infer_measured_bounds(cases, bandwidth=10e9)
    assert [c.measured_bound for c in got] == ["overhead", "overhead"]
    assert [c.bound_match for c in got] == [True, False]
    assert summarize(got, []).bound_agreement == 0.5


def test_a_case_alone_in_its_series_has_no_measured_bound() -> None:
    # Different contexts are different series: each has one point, so no elasticity.
    got = infer_measured_bounds([decode(1, 0.1, 0.1, 0.1, context=256), decode(4, 0.1, 0.1, 0.1, context=2048)],
                                bandwidth=10e9)
    assert [c.measured_bound for c in got] == [None, None]
    assert summarize(got, []).bound_agreement is None


def test_json_dict_has_the_fixed_fields() -> None:
    doc = decode(1, 1.0, 1.1, 0.8).to_json_dict()
    for key in ("measured_s", "predicted_s", "ideal_s", "predicted_bound", "error", "tokens", "batch", "context"):
        assert key in doc
    assert doc["error"] == pytest.approx(0.1)
