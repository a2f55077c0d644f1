import numpy as np
import pytest

import rooflm


def test_issue_sweep_returns_every_point() -> None:
    # 4096 batches x 3 contexts = 12,288 points.
    s = rooflm.sweep("llama-3.1-8b", "h100-sxm", batch=range(1, 4097), context=[128, 1024, 8192])
    assert len(s) == 12_288
    assert len(s.points()) == 12_288


@pytest.mark.parametrize("phase", ["decode", "prefill", "e2e"])
def test_sweep_points_equal_single_analyses(phase: str) -> None:
    s = rooflm.sweep("llama-3.1-8b", "h100-sxm", phase=phase, batch=[1, 16, 300], prompt_len=[256, 2048],
                     context=[512, 4096], gen_len=16, quant="w4a8", efficiency="calibrated")
    for p in s.points():
        ctx = p.get("context", 512)
        r = rooflm.analyze("llama-3.1-8b", "h100-sxm", phase=phase, batch=p["batch"],
                           prompt_len=p.get("prompt_len", 256), context=ctx, gen_len=16, quant="w4a8",
                           efficiency="calibrated")
        assert p["time_s"] == pytest.approx(r.totals.time_s, rel=1e-12)
        assert p["bound"] == r.totals.bound
        assert p["fits"] == r.memory.fits
        if phase == "e2e":
            assert p["ttft_s"] == pytest.approx(r.totals.ttft_s)


def test_decode_turns_compute_bound_past_the_critical_batch() -> None:
    s = rooflm.sweep("llama-3.1-8b", "h100-sxm", batch=[1, 64, 1024, 4096], context=[128])
    assert list(s.columns["bound"]) == ["memory", "memory", "compute", "compute"]
    ai = s.columns["arithmetic_intensity"]
    assert np.all(np.diff(ai) > 0)


def test_csv_has_a_header_and_one_row_per_point() -> None:
    s = rooflm.sweep("llama-3.1-8b", "h100-sxm", batch=[1, 2], context=[128, 256])
    lines = s.to_csv().strip().splitlines()
    assert lines[0].startswith("batch,context,time_s")
    assert len(lines) == 5
