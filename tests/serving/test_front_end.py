"""The server's front end: TTFT as queue + prefill + front end, and its cost in a closed loop."""

from __future__ import annotations

import pytest

import rooflm
from rooflm.errors import InvalidInputError

MODEL, HW = "llama-3.1-8b", "h100-sxm"


@pytest.mark.parametrize("method", ["steady", "simulate"])
def test_ttft_at_one_user_is_front_end_plus_prefill(method: str) -> None:
    # One user never queues: TTFT = 0 queue + analyze's prefill (its e2e TTFT) + the 50 ms front end given; TPOT
    # grows by the 1 ms per token given, the end-to-end latency by 50 ms + 99 × 1 ms = 149 ms.
    a = rooflm.analyze(MODEL, HW, phase="e2e", batch=1, prompt_len=1000, gen_len=100, efficiency="calibrated")
    kw = dict(prompt_len=1000, gen_len=100, concurrency=[1], method=method, requests=30 if method == "simulate" else None)
    p = rooflm.serve_traffic(MODEL, HW, front_end_s=0.05, front_end_token_s=0.001, **kw).points[0]  # type: ignore[arg-type]
    bare = rooflm.serve_traffic(MODEL, HW, **kw).points[0]  # type: ignore[arg-type]
    assert p.ttft_s == pytest.approx(0.05 + a.totals.ttft_s, rel=1e-9)
    assert p.ttft_parts["front_end_s"] == 0.05
    assert p.ttft_parts["prefill_s"] == pytest.approx(a.totals.ttft_s, rel=1e-9)
    assert p.ttft_parts["queue_s"] == pytest.approx(0.0, abs=1e-12)
    assert p.tpot_s == pytest.approx(a.totals.tpot_s + 0.001, rel=1e-9)
    assert p.e2e_latency_s == pytest.approx(bare.e2e_latency_s + 0.149, rel=1e-9)  # type: ignore[operator]
    assert p.to_json_dict()["ttft_parts"] == p.ttft_parts


def test_parts_sum_to_ttft_under_load() -> None:
    for method in ("steady", "simulate"):
        p = rooflm.serve_traffic(MODEL, HW, concurrency=[64], method=method, front_end_s=0.02,
                                 requests=600 if method == "simulate" else None).points[0]
        assert sum(p.ttft_parts.values()) == pytest.approx(p.ttft_s, rel=1e-9), method  # type: ignore[arg-type]


def test_a_closed_loops_users_wait_through_the_front_end() -> None:
    # N users each spending F of their cycle in the front end: Little's law over the client's cycle, N = X · (F + E),
    # E the end-to-end latency the client measures less F. Each user's cycle grows, so requests/s falls.
    users, f = 32, 0.2
    for method in ("steady", "simulate"):
        kw = dict(concurrency=[users], method=method, requests=1200 if method == "simulate" else None)
        p = rooflm.serve_traffic(MODEL, HW, front_end_s=f, **kw).points[0]  # type: ignore[arg-type]
        bare = rooflm.serve_traffic(MODEL, HW, **kw).points[0]  # type: ignore[arg-type]
        assert p.requests_per_s * p.e2e_latency_s == pytest.approx(users, rel=0.02), method  # type: ignore[operator]
        assert p.requests_per_s < 0.97 * bare.requests_per_s, method  # type: ignore[operator]


def test_front_end_bounds() -> None:
    with pytest.raises(InvalidInputError, match="front_end_s") as e:
        rooflm.serve_traffic(MODEL, HW, concurrency=[1], method="steady", front_end_s=-0.01)
    assert e.value.field == "front_end_s"
    with pytest.raises(InvalidInputError):
        rooflm.serve_traffic(MODEL, HW, concurrency=[1], method="steady", front_end_token_s=float("nan"))
