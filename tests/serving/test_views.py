"""The two views of a simulated run: the steady window (warm-up and drain left out) and a benchmark client's run
(every user at once into an empty engine, every request measured), each checked against what must hold."""

from __future__ import annotations

import pytest

import rooflm
from rooflm.errors import InvalidInputError
from rooflm.serving import simulate as sim
from rooflm.serving.api import sample_requests
from rooflm.serving.steps import build
from rooflm.serving.traffic import parse_lengths
from rooflm.specs.hf_config import load_model

MODEL, HW = "llama-3.1-8b", "h100-sxm"


@pytest.mark.parametrize("users", [64, 256])
def test_the_steady_window_holds_littles_law_and_leaves_out_the_drain(users: int) -> None:
    """A closed loop of N users: N = X · W (X requests/s, W mean end-to-end latency; a user's next request leaves
    when the last completes, so the cycle is W). The window's requests/s counts the completions inside it, and the
    measured requests are those that never ran while users were leaving: 1% (the window's edges cut at most one
    request per user, N / (completions in the window) ≈ 256 / 1,500 of one cycle, spread over ~6 cycles)."""
    p = rooflm.serve_traffic(MODEL, HW, concurrency=[users], requests=2000).points[0]
    assert p.requests_per_s * p.e2e_latency_s == pytest.approx(users, rel=0.01)
    # Converged: the means of 2,000 requests equal those of 6,000 (the drain used to make TPOT 4% fast at 256).
    longer = rooflm.serve_traffic(MODEL, HW, concurrency=[users], requests=6000).points[0]
    assert p.tpot_s == pytest.approx(longer.tpot_s, rel=0.01)
    assert p.ttft_s == pytest.approx(longer.ttft_s, rel=0.05)


def test_at_one_user_both_views_are_analyze() -> None:
    """One user never queues: a benchmark's first request finds the engine as empty as every later one."""
    a = rooflm.analyze(MODEL, HW, phase="e2e", batch=1, prompt_len=1000, gen_len=100, efficiency="calibrated")
    for view in ("steady", "benchmark"):
        p = rooflm.serve_traffic(MODEL, HW, prompt_len=1000, gen_len=100, concurrency=[1], requests=30,
                                 view=view, efficiency="calibrated").points[0]
        assert p.ttft_s == pytest.approx(a.totals.ttft_s, rel=1e-9), view
        assert p.tpot_s == pytest.approx(a.totals.tpot_s, rel=1e-9), view


def test_a_benchmarks_first_wave_queues_its_prompts() -> None:
    """N users start at once with prompts of exactly the token budget (2,048 tokens, `max_tokens_per_step` 2,048):
    each step prefills one prompt, so the k-th first request (k = 0 … N−1) waits k prefill steps and its TTFT is
    (k + 1) steps — more in fact, as decode rows of the users already served join each step. With no other request
    measured, the mean TTFT of the first wave is at least (N + 1)/2 prefill steps."""
    spec = load_model(MODEL)
    users = 16
    steps = build(spec, HW, max_prompt=2048, max_context=2048 + 64, exact_prompts=(2048,), max_running=None,
                  max_tokens_per_step=2048, kv_blocks=None, mean_context=2048 + 32)
    prompt, gen = parse_lengths(2048, "prompt_len"), parse_lengths(64, "gen_len")
    p, g = sample_requests(prompt, gen, users, 0, spec.max_position_embeddings)
    run = sim.simulate(steps, p, g, concurrency=users, benchmark=True)
    one_prefill = steps.step_time_point(0.0, 2048.0, 0.0, float(steps.prompt_attention_time([2048])[0]))
    ttft = run.first_token - run.arrival
    assert sorted(ttft) == list(ttft)  # first come, first served
    assert ttft.mean() >= (users + 1) / 2 * one_prefill * (1 - 1e-12)
    assert ttft[0] == pytest.approx(one_prefill, rel=1e-12)  # the first prompt is one step alone


def test_the_benchmark_view_is_slower_at_load_and_counts_every_request() -> None:
    """At 256 users the first wave's 256 prompts queue for the token budget (8,192 tokens a step: 8 prompts of 1,024
    a step, 32 steps), so the benchmark's mean TTFT is several times the steady window's; every request counts."""
    kw = {"concurrency": [256], "requests": 1024}
    steady = rooflm.serve_traffic(MODEL, HW, **kw).points[0]  # type: ignore[arg-type]
    bench = rooflm.serve_traffic(MODEL, HW, view="benchmark", **kw)  # type: ignore[arg-type]
    assert bench.view == "benchmark" and bench.to_json_dict()["view"] == "benchmark"
    b = bench.points[0]
    assert b.requests == 1024
    assert b.ttft_s > 3 * steady.ttft_s
    assert b.intervals["ttft_ci_s"] is not None


def test_means_carry_confidence_intervals() -> None:
    """Varied lengths: the 95% half-width is positive and small against the mean with 3,000 requests (batch means
    of 300 requests: a TTFT's CV ~0.5 gives a half-width of ~2.262 · 0.5 / √3000 ≈ 2% of the mean; allowed 10%)."""
    doc = rooflm.serve_traffic(MODEL, HW, prompt_len="uniform:200:2000", gen_len="uniform:20:400", concurrency=[32],
                               requests=3000).to_json_dict()
    point = doc["points"][0]  # type: ignore[index]
    for name in ("ttft", "tpot", "e2e_latency"):
        assert 0 < point[f"{name}_ci_s"] < 0.1 * point[f"{name}_s"], name
    steady = rooflm.serve_traffic(MODEL, HW, concurrency=[32], method="steady").to_json_dict()
    assert steady["points"][0]["ttft_ci_s"] is None  # type: ignore[index]


def test_view_mistakes_are_named() -> None:
    with pytest.raises(InvalidInputError) as e:
        rooflm.serve_traffic(MODEL, HW, concurrency=[4], view="bench")
    assert e.value.field == "view"
    with pytest.raises(InvalidInputError, match="simulate") as e:
        rooflm.serve_traffic(MODEL, HW, concurrency=[4], view="benchmark", method="steady")
    assert e.value.field == "view"
