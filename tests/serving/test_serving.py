"""The serving view against what must hold: analyze at concurrency 1, Little's law, saturation, and the two
methods against each other (tolerances stated and derived in each test)."""

from __future__ import annotations

import json
import math
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

import rooflm
from rooflm.errors import DoesNotFitError, InvalidInputError
from rooflm.serving import simulate as sim
from rooflm.serving.api import sample_requests
from rooflm.serving.steps import build, extend_linearly
from rooflm.serving.traffic import parse_lengths
from rooflm.specs.hf_config import load_model

MODEL, HW = "llama-3.1-8b", "h100-sxm"


@pytest.mark.parametrize("efficiency", ["ideal", "calibrated"])
@pytest.mark.parametrize("method", ["simulate", "steady"])
@pytest.mark.parametrize(("prompt", "gen"), [(1000, 100), (20_000, 300)])
def test_concurrency_one_is_analyze_e2e_at_batch_one(efficiency: str, method: str, prompt: int, gen: int) -> None:
    """One user: a prefill then gen − 1 decode steps at contexts L+1 … L+G−1, exactly analyze's e2e request.
    Fixed lengths are grid points, and decode time is linear in context between the grid's points (attention
    reads and computes over each cached token), so the only difference left is the chunking of a prompt longer
    than the token budget: analyze cuts 20,000 tokens into 3 equal chunks, the engine into 8192 + 8192 + 3616
    (its attention priced as A(p + q) − A(p)); 0.5% covers that (0.2% measured), and 1e-9 the rest."""
    a = rooflm.analyze(MODEL, HW, phase="e2e", batch=1, prompt_len=prompt, gen_len=gen, efficiency=efficiency)
    r = rooflm.serve_traffic(MODEL, HW, prompt_len=prompt, gen_len=gen, concurrency=[1], method=method,
                             requests=50, efficiency=efficiency)
    p = r.points[0]
    ttft_tol = 5e-3 if prompt > r.max_tokens_per_step else 1e-9
    assert p.ttft_s == pytest.approx(a.totals.ttft_s, rel=ttft_tol)
    assert p.tpot_s == pytest.approx(a.totals.tpot_s, rel=1e-9)
    assert p.output_tokens_per_s_per_user == pytest.approx(1 / a.totals.tpot_s, rel=1e-9)
    assert p.batch == pytest.approx(1.0)


def _poisson_run(rate: float, n: int, seed: int = 3) -> sim.Run:
    spec = load_model(MODEL)
    prompt, gen = parse_lengths("uniform:200:2000", "prompt_len"), parse_lengths("uniform:20:400", "gen_len")
    steps = build(spec, HW, max_prompt=2000, max_context=2400, exact_prompts=(), max_running=None,
                  max_tokens_per_step=None, kv_blocks=None, mean_context=1300.0, efficiency="calibrated")
    p, g = sample_requests(prompt, gen, n, seed, spec.max_position_embeddings)
    arrivals = np.cumsum(np.random.default_rng(seed + 1).exponential(1 / rate, n))
    return sim.simulate(steps, p, g, arrivals=arrivals)


@pytest.mark.parametrize("rate", [2.0, 15.0])
def test_littles_law_holds_in_the_simulation(rate: float) -> None:
    """L = λW: the time-averaged number of requests in the system (integrated step by step over the window
    between two arrivals) against the Poisson rate times the mean time in the system of the requests measured.
    Tolerance: λ estimated by n arrivals has relative standard error 1/√n, and W's mean CV(W)/√n (requests are
    correlated in a queue: doubled); the window's edges cut requests in the system when it opens or closes,
    at most W̄/T of the integral on each side. Four standard errors plus the edges."""
    run = _poisson_run(rate, 4000)
    w = run.finish[run.measured] - run.arrival[run.measured]
    n = len(w)
    tol = 4 * (1 + 2 * w.std() / w.mean()) / math.sqrt(n) + 2 * w.mean() / run.window_s
    assert run.in_system == pytest.approx(rate * w.mean(), rel=tol)
    assert tol < 0.25  # the test can fail: the bound is tight enough to mean something


def test_throughput_grows_and_tpot_rises_until_the_engine_saturates() -> None:
    """Below max_running (256) more users share each weight read: output tokens/s grows and every step (so
    TPOT) is longer. Past it users wait for a slot: throughput and TPOT stay where they were (±3%: a simulated
    mean of a few thousand requests) and TTFT grows by the wait."""
    users = [1, 4, 16, 64, 256, 512, 1024]
    r = rooflm.serve_traffic(MODEL, HW, prompt_len="uniform:500:1500", gen_len="uniform:50:250", concurrency=users,
                             requests=2500, efficiency="calibrated")
    tok = [p.output_tokens_per_s for p in r.points]
    tpot = [p.tpot_s for p in r.points]
    ttft = [p.ttft_s for p in r.points]
    below = users.index(256)
    assert all(b > a for a, b in pairwise(tok[: below + 1])), tok
    assert all(b > a for a, b in pairwise(tpot[: below + 1])), tpot
    for i in range(below + 1, len(users)):
        assert tok[i] == pytest.approx(tok[below], rel=0.03)
        assert tpot[i] == pytest.approx(tpot[below], rel=0.03)
        assert ttft[i] > 2 * ttft[i - 1] * 0.9
        assert r.points[i].bound == "max_running" and r.points[i].batch == pytest.approx(256, rel=1e-6)


def test_a_small_kv_cache_binds_first() -> None:
    """400 blocks of 16 tokens = 6,400 tokens; requests of 1000 + 200 tokens: 5 fit at once (6,000 ≤ 6,400 <
    7,200), whatever the users."""
    r = rooflm.serve_traffic(MODEL, HW, prompt_len=1000, gen_len=200, concurrency=[4, 64], kv_blocks=400,
                             requests=400)
    few, many = r.points
    assert r.kv_capacity_tokens == 6400
    assert few.bound in ("memory", "compute") and few.batch == pytest.approx(4)
    assert many.bound == "kv_cache" and many.batch == pytest.approx(5, rel=1e-6)
    assert many.kv_use is not None and many.kv_use <= 1.0
    steady = rooflm.serve_traffic(MODEL, HW, prompt_len=1000, gen_len=200, concurrency=[64], kv_blocks=400,
                                  method="steady").points[0]
    assert steady.bound == "kv_cache" and steady.batch == pytest.approx(5)


# Rates up to ≈ 60% of the engine's capacity (≈ 23 requests/s here, with Hopper's bf16 GEMMs at 0.72 of the peak
# from M = 4096): nearer saturation TPOT climbs steeply with the load and the fluid model's TPOT falls short of the
# queue's by more than the tolerance (−3.4 / −4.9 / −6.3 / −9.5% at 10 / 14 / 16 / 20 requests/s).
@pytest.mark.parametrize(("load", "values"), [("concurrency", [1, 8, 64, 256]), ("request_rate", [1.0, 5.0, 14.0])])
def test_steady_model_agrees_with_the_simulation_on_means(load: str, values: list[float]) -> None:
    """The steady-state model against 3,000 simulated requests per point, on varied lengths: output tokens/s and
    TPOT within 6% (the simulated means' own error is ~1%; the fluid model prices the steps at the mean decode
    context and averages the share of mixed steps), TTFT within 40% (the model averages the prefill chunks a
    prompt waits behind instead of queueing them: its weakest figure, and the simulation's is what to quote)."""
    kw = {"prompt_len": "uniform:200:2000", "gen_len": "uniform:20:400", load: values, "efficiency": "calibrated"}
    fast = rooflm.serve_traffic(MODEL, HW, method="steady", **kw)  # type: ignore[arg-type]
    slow = rooflm.serve_traffic(MODEL, HW, method="simulate", requests=3000, **kw)  # type: ignore[arg-type]
    for f, s in zip(fast.points, slow.points, strict=True):
        assert f.output_tokens_per_s == pytest.approx(s.output_tokens_per_s, rel=0.06), (f.value, "tok/s")
        assert f.tpot_s == pytest.approx(s.tpot_s, rel=0.06), (f.value, "tpot")
        assert f.ttft_s == pytest.approx(s.ttft_s, rel=0.40), (f.value, "ttft")


def test_an_overloaded_rate_is_said_to_be_so() -> None:
    """Past the engine's capacity (~4,800 tokens/s here, ~22 requests/s) no steady state exists."""
    fast = rooflm.serve_traffic(MODEL, HW, prompt_len="uniform:200:2000", gen_len="uniform:20:400",
                                request_rate=[80.0], method="steady", efficiency="calibrated").points[0]
    assert fast.bound == "overloaded" and fast.ttft_s is None and fast.output_tokens_per_s is None
    slow = rooflm.serve_traffic(MODEL, HW, prompt_len="uniform:200:2000", gen_len="uniform:20:400",
                                request_rate=[80.0], requests=2000, efficiency="calibrated").points[0]
    assert slow.bound == "overloaded"


def test_json_document_has_the_contract_fields() -> None:
    doc = rooflm.serve_traffic(MODEL, HW, concurrency=[2], requests=20).to_json_dict()
    point = doc["points"][0]  # type: ignore[index]
    for key in ("concurrency", "ttft_s", "tpot_s", "e2e_latency_s", "output_tokens_per_s",
                "output_tokens_per_s_per_gpu", "output_tokens_per_s_per_user", "batch", "kv_use", "bound",
                "ttft_p50_s", "ttft_p90_s", "ttft_p99_s", "tpot_p99_s", "e2e_latency_p99_s"):
        assert key in point, key
    assert point["concurrency"] == 2
    steady = rooflm.serve_traffic(MODEL, HW, request_rate=[1.0], method="steady").to_json_dict()["points"][0]  # type: ignore[index]
    assert steady["request_rate"] == 1.0 and steady["ttft_p99_s"] is None


def test_per_gpu_divides_by_every_device() -> None:
    r = rooflm.serve_traffic(MODEL, HW, concurrency=[16], method="steady", tp=2, dp=2)
    p = r.points[0]
    assert r.devices == 4
    assert p.output_tokens_per_s_per_gpu == pytest.approx(p.output_tokens_per_s / 4)


def test_mistakes_are_named() -> None:
    with pytest.raises(InvalidInputError, match="requests") as e:
        rooflm.serve_traffic(MODEL, HW, concurrency=[64], requests=10)
    assert e.value.field == "requests"
    with pytest.raises(InvalidInputError) as e:
        rooflm.serve_traffic(MODEL, HW, concurrency=[1] * 3, requests=600_000)
    assert e.value.field == "requests"
    with pytest.raises(InvalidInputError) as e:
        rooflm.serve_traffic(MODEL, HW, concurrency=[1], method="exact")
    assert e.value.field == "method"
    with pytest.raises(InvalidInputError) as e:
        rooflm.serve_traffic(MODEL, HW, concurrency=[1], max_running=512, max_tokens_per_step=256)
    assert e.value.field == "max_num_batched_tokens"
    with pytest.raises(InvalidInputError) as e:
        rooflm.serve_traffic(MODEL, HW, concurrency=[1], prompt_len=200_000)
    assert e.value.field == "prompt_len"
    with pytest.raises(DoesNotFitError):
        rooflm.serve_traffic(MODEL, HW, concurrency=[1], prompt_len=4000, gen_len=1000, kv_blocks=100, requests=5)


def test_a_step_longer_than_the_models_positions_holds_several_prompts(tmp_path: Path) -> None:
    # A 4,096-position model under the default 8,192-token step (vLLM allows max_num_batched_tokens past
    # max_model_len): serving used to refuse it ("prompt length 8192 exceeds ..."). An 8,192-token chunk holds two
    # 4,096-token prompts, so its GEMM part must equal analyze's prefill of batch 2 × 4,096 less its attention.
    cfg = {"model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864, "num_attention_heads": 14,
           "num_key_value_heads": 2, "num_hidden_layers": 24, "vocab_size": 151936, "max_position_embeddings": 4096,
           "tie_word_embeddings": True}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    point = rooflm.serve_traffic(path, "l4", prompt_len=512, gen_len=64, concurrency=[4], method="steady").points[0]
    assert point.output_tokens_per_s > 0
    steps = build(load_model(path), "l4", max_prompt=512, max_context=576, exact_prompts=(512,), max_running=256,
                  max_tokens_per_step=None, kv_blocks=None, mean_context=544)
    two = rooflm.analyze(path, "l4", phase="prefill", batch=2, prompt_len=4096)
    gemm_part = two.totals.time_s - sum(o.time_s for o in two.operators if o.op_class == "attention")
    assert float(steps.chunk_linear_time(8192.0)) == pytest.approx(gemm_part, rel=1e-3)


def test_extend_linearly_by_hand() -> None:
    # y = 3, 5 at x = 1, 2: the line y = 2x + 1 gives 9 at x = 4.
    assert extend_linearly(np.array([1.0, 2.0]), np.array([3.0, 5.0]), np.array([1.0, 2.0, 4.0])).tolist() == [3, 5, 9]
