"""Disaggregated prefill/decode serving (rooflm.serving.disagg): TTFT and TPOT at one user by hand, Little's law,
the two methods against each other, the gain in TPOT over aggregated serving on the same GPUs, and refusals."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

import rooflm
from rooflm.cli import app as cli_app
from rooflm.errors import InvalidInputError
from rooflm.serving import disagg_sim
from rooflm.serving.api import sample_requests
from rooflm.serving.disagg import Pools, Split, parse_split, pick_link
from rooflm.serving.steps import build
from rooflm.serving.traffic import parse_lengths
from rooflm.specs.hf_config import load_model

MODEL, HW = "llama-3.1-8b", "h100-sxm"
# Llama-3.1-8B's bf16 KV cache per token: 2 (K and V) × 32 layers × 8 KV heads × 128 dims × 2 bytes = 131,072 B,
# split over the TP devices (8 KV heads divide). h100-sxm.toml: inter-node InfiniBand NDR 400 Gb/s = 50 GB/s per
# GPU per direction, 5 µs; intra-node NVLink 4 450 GB/s per direction, 2 µs.
KV_BYTES = 2 * 32 * 8 * 128 * 2
LINK = {"inter_node": (50e9, 5e-6), "intra_node": (450e9, 2e-6)}


@pytest.mark.parametrize("method", ["simulate", "steady"])
@pytest.mark.parametrize(("tp", "kv_link"), [(1, "inter_node"), (2, "inter_node"), (1, "intra_node")])
def test_ttft_at_one_user_is_the_prefill_plus_the_kv_transfer(method: str, tp: int, kv_link: str) -> None:
    """One user, 2,000-token prompts (one chunk, under the 8,192-token budget): TTFT = the prefill analyze prices
    + 5 µs (2 µs) + 2,000 × 131,072 / tp bytes / 50 GB/s (450 GB/s): at tp 1 over InfiniBand, 262.1 MB in
    5.243 ms. The decode replica is idle when the KV lands, so nothing else waits."""
    a = rooflm.analyze(MODEL, HW, phase="prefill", batch=1, prompt_len=2000, tp=tp)
    bandwidth, latency = LINK[kv_link]
    transfer = latency + 2000 * KV_BYTES / tp / bandwidth
    r = rooflm.serve_traffic(MODEL, HW, prompt_len=2000, gen_len=100, concurrency=[1], method=method, requests=40,
                             disaggregate="1P:1D", kv_link=kv_link, tp=tp, efficiency="ideal")  # analyze's mode
    p = r.points[0]
    assert p.kv_transfer_s == pytest.approx(transfer, rel=1e-12)
    assert p.ttft_s == pytest.approx(a.totals.time_s + transfer, rel=1e-9)
    assert r.devices == 2 * tp and r.disaggregate is not None and r.disaggregate["kv_link"] == kv_link
    if tp == 1 and kv_link == "inter_node":
        assert transfer == pytest.approx(5.24288e-3 + 5e-6, rel=1e-12)


@pytest.mark.parametrize("method", ["simulate", "steady"])
def test_tpot_at_one_user_is_a_pure_decode_step(method: str) -> None:
    """A decode replica runs decode-only steps: one user's TPOT is the mean of batch-1 decode steps at contexts
    L+1 … L+G−1, which is analyze e2e's tpot_s at batch 1 (the aggregated engine's too: at one user it never
    mixes a prefill chunk into a decode step either)."""
    a = rooflm.analyze(MODEL, HW, phase="e2e", batch=1, prompt_len=3000, gen_len=200, efficiency="calibrated")
    r = rooflm.serve_traffic(MODEL, HW, prompt_len=3000, gen_len=200, concurrency=[1], method=method, requests=30,
                             disaggregate="2P:1D", efficiency="calibrated")
    assert r.points[0].tpot_s == pytest.approx(a.totals.tpot_s, rel=1e-9)


def _pools(split: str) -> tuple[Pools, int]:
    spec = load_model(MODEL)
    steps = build(spec, HW, max_prompt=4000, max_context=4400, exact_prompts=(), max_running=None,
                  max_tokens_per_step=None, kv_blocks=None, mean_context=2300.0, efficiency="calibrated")
    s = parse_split(split)
    assert s is not None
    return Pools(steps, s, pick_link(HW, "inter_node", 4)), spec.max_position_embeddings


@pytest.mark.parametrize("rate", [3.0, 12.0])
def test_littles_law_holds_in_the_simulation(rate: float) -> None:
    """L = λW over the window: the time-averaged number of requests anywhere in the system (prefill queue,
    prefill, transfer, decode queue, decode), integrated from every request's [arrival, finish], against the
    Poisson rate times the mean time in the system of the requests measured. Tolerance as in test_serving's:
    λ's and W's standard errors (four of them, W's doubled for a queue's correlation) plus the window's edges."""
    pools, limit = _pools("1P:2D")
    prompt, gen = parse_lengths("uniform:200:4000", "prompt_len"), parse_lengths("uniform:20:400", "gen_len")
    p, g = sample_requests(prompt, gen, 3000, 5, limit)
    arrivals = np.cumsum(np.random.default_rng(6).exponential(1 / rate, len(p)))
    run = disagg_sim.simulate(pools, p, g, arrivals=arrivals)
    lo, hi = run.window
    in_system = float(np.maximum(np.minimum(run.finish, hi) - np.maximum(run.arrival, lo), 0.0).sum()) / (hi - lo)
    w = run.finish[run.measured] - run.arrival[run.measured]
    tol = 4 * (1 + 2 * w.std() / w.mean()) / math.sqrt(len(w)) + 2 * w.mean() / (hi - lo)
    assert in_system == pytest.approx(rate * w.mean(), rel=tol)
    assert tol < 0.25
    assert np.all(run.first_token >= run.admitted) and np.all(run.admitted >= run.prefilled)
    assert np.all(run.prefilled > run.arrival) and np.all(run.finish >= run.first_token)


@pytest.mark.parametrize(("split", "load", "values"), [
    ("1P:3D", "request_rate", [2.0, 5.0]), ("2P:2D", "request_rate", [5.0, 10.0]),
    ("1P:3D", "concurrency", [4, 16, 64]), ("2P:2D", "concurrency", [4, 64]),
])
def test_steady_model_agrees_with_the_simulation_on_means(split: str, load: str, values: list[float]) -> None:
    """Two queues in series against 2,000 simulated requests per point on varied lengths (measured: throughput
    within 1.5%, TPOT within 3%, TTFT within 32%, the worst where the prefill pool nears saturation). Output
    tokens/s within 4% and TPOT within 5% (the model's decode steps sit at the mean context and mean batch; the
    simulated means' own error ~1%); TTFT within 40%, as aggregated serving's (test_serving): the model's prefill
    queue is M/G/c with Sakasegawa's wait, which ignores that a busy prefill replica packs short prompts into one
    step, and a closed loop's waits are Poisson waits scaled by (N − 1)/N; near the knee TTFT is the small
    difference of two large figures (the cycle N / X less the decode time)."""
    kw = {"prompt_len": "uniform:1000:8000", "gen_len": "uniform:50:400", load: values, "efficiency": "calibrated",
          "disaggregate": split}
    fast = rooflm.serve_traffic(MODEL, HW, method="steady", **kw)  # type: ignore[arg-type]
    slow = rooflm.serve_traffic(MODEL, HW, method="simulate", requests=2000, **kw)  # type: ignore[arg-type]
    for f, s in zip(fast.points, slow.points, strict=True):
        assert f.output_tokens_per_s == pytest.approx(s.output_tokens_per_s, rel=0.04), (f.value, "tok/s")
        assert f.tpot_s == pytest.approx(s.tpot_s, rel=0.05), (f.value, "tpot")
        assert f.ttft_s == pytest.approx(s.ttft_s, rel=0.40), (f.value, "ttft")


def test_decode_replicas_beat_aggregated_tpot_under_long_prompts() -> None:
    """64 users, 8,000-token prompts, 256-token outputs, on 4 GPUs: aggregated (dp 4, 16 users per engine), each
    engine mixes 8,000-token prefill chunks into its decode steps; 2P:2D's decode replicas never do, so their TPOT
    is at most a pure decode step at one row more than their mean batch and the longest context (8,255), and the
    aggregated TPOT is above that (measured: 13.8 ms against 22.8 ms)."""
    kw = {"prompt_len": 8000, "gen_len": 256, "concurrency": [64], "efficiency": "calibrated", "requests": 600}
    agg = rooflm.serve_traffic(MODEL, HW, dp=4, **kw).points[0]  # type: ignore[arg-type]
    dis = rooflm.serve_traffic(MODEL, HW, disaggregate="2P:2D", **kw)  # type: ignore[arg-type]
    p = dis.points[0]
    assert dis.devices == 4 and p.decode_batch is not None and agg.tpot_s is not None and p.tpot_s is not None
    pure = rooflm.analyze(MODEL, HW, phase="decode", batch=math.ceil(p.decode_batch) + 1, context=8255,
                          efficiency="calibrated").totals.time_s
    assert p.tpot_s <= pure < agg.tpot_s
    assert p.output_tokens_per_s_per_gpu == pytest.approx(p.output_tokens_per_s / 4, rel=1e-12)


@pytest.mark.parametrize(("kw", "field"), [
    ({"disaggregate": "0P:1D"}, "disaggregate"), ({"disaggregate": "1P:0D"}, "disaggregate"),
    ({"disaggregate": "abc"}, "disaggregate"), ({"disaggregate": "1P:3"}, "disaggregate"),
    ({"disaggregate": "1P:999D"}, "disaggregate"), ({"disaggregate": 4}, "disaggregate"),
    ({"disaggregate": "1P:1D", "kv_link": "fiber"}, "kv_link"),
    ({"disaggregate": "4P:5D", "kv_link": "intra_node"}, "kv_link"),  # 9 GPUs: past one 8-GPU NVLink domain
    ({"kv_link": "inter_node"}, "kv_link"),  # a link without a split
])
def test_bad_splits_and_links_are_refused_naming_the_field(kw: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInputError) as e:
        rooflm.serve_traffic(MODEL, HW, concurrency=[1], method="steady", **kw)  # type: ignore[arg-type]
    assert e.value.field == field


def test_split_syntax() -> None:
    assert parse_split("2P:6D") == Split(2, 6) == parse_split(" 2p:6d ") == parse_split("2p+6d")
    assert parse_split(None) is None and Split(2, 6).label == "2P:6D"


def test_cli_end_to_end() -> None:
    runner = CliRunner()
    args = ["serving", "--disaggregate", "1P:3D", "--concurrency", "1,8", "--prompt-len", "uniform:500:3000",
            "--gen-len", "64", "--requests", "80"]
    doc = json.loads(runner.invoke(cli_app, [*args, "--json"]).stdout)
    assert doc["devices"] == 4 and doc["disaggregate"]["split"] == "1P:3D"
    assert doc["disaggregate"]["kv_link"] == "inter_node" and doc["disaggregate"]["kv_bytes_per_token"] == KV_BYTES
    assert [p["concurrency"] for p in doc["points"]] == [1, 8]
    assert all(p["kv_transfer_s"] > 0 and 0 < p["prefill_busy"] <= 1 for p in doc["points"])
    table = runner.invoke(cli_app, [*args, "--method", "steady"])
    assert table.exit_code == 0, table.output
    assert "1P:3D" in table.stdout and "KV xfer ms" in table.stdout and "inter-node link" in table.stdout
    bad = runner.invoke(cli_app, ["serving", "--disaggregate", "0P:2D", "--concurrency", "1"])
    assert bad.exit_code != 0 and "disaggregate" in bad.output and "Traceback" not in bad.output


def test_per_point_limits_and_splits_give_each_points_own_figures() -> None:
    """rooflm.plan prices every split × engine limit × load of a step model in one call: the engine's limits as
    arrays and a split per point. Each point equals the call with that point's own limits and split alone."""
    from dataclasses import replace

    from rooflm.serving.disagg_steady import steady_points
    from rooflm.serving.steps import Engine
    from rooflm.serving.traffic import moments

    pools, limit = _pools("1P:1D")
    m = moments(parse_lengths("uniform:500:4000", "prompt_len"), parse_lengths("200", "gen_len"), 0, cap=limit - 1)
    cases = [(Split(1, 3), 64, 2048, 40_000), (Split(2, 2), 256, 8192, 400_000), (Split(3, 1), 32, 512, 9_000)]
    users = [1.0, 16.0, 200.0]
    grid = [(c, u) for c in cases for u in users]
    engine = Engine(np.array([c[1] for c, _ in grid]), np.array([c[2] for c, _ in grid]),  # type: ignore[arg-type]
                    np.array([c[3] for c, _ in grid]))
    together = steady_points(replace(pools, steps=replace(pools.steps, engine=engine)), m, "concurrency",
                             np.array([u for _, u in grid]), splits=[c[0] for c, _ in grid])
    for ((split, running, budget, kv), u), point in zip(grid, together, strict=True):
        one = replace(pools, split=split, steps=replace(pools.steps, engine=Engine(running, budget, kv)))
        alone = steady_points(one, m, "concurrency", np.array([u]))[0]
        assert point == alone, (split, running, budget, u)
    assert {p.bound for p in together} >= {"kv_cache", "prefill_pool"}  # the per-point limits bind differently
