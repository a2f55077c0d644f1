"""``serve_traffic(..., disaggregate="2P:6D")``: the points of a disaggregated deployment, by either method."""

from __future__ import annotations

import numpy as np

from rooflm.errors import InvalidInputError, arg
from rooflm.serving import disagg_sim
from rooflm.serving.disagg import Pools
from rooflm.serving.disagg_steady import bound_of, steady_points
from rooflm.serving.result import PERCENTILES, ServingPoint
from rooflm.serving.traffic import Moments


def points(pools: Pools, m: Moments, load: str, values: list[float], method: str, prompt: np.ndarray,
           gen: np.ndarray, seed: int) -> list[ServingPoint]:
    """One point per load. ``prompt`` and ``gen``: the simulated requests (the whole deployment's)."""
    if method == "steady":
        return steady_points(pools, m, load, np.asarray(values, dtype=np.float64))
    out = []
    for v in values:
        if load == "concurrency":
            if int(v) >= len(prompt):
                raise InvalidInputError(f"{arg('requests')} ({len(prompt):,}) must exceed the users ({int(v):,}): the first "
                                        "request of each user is warm-up, not measured", field="requests")
            run = disagg_sim.simulate(pools, prompt, gen, concurrency=int(v))
        else:
            gaps = np.random.default_rng(seed + 1).exponential(1.0 / v, size=len(prompt))
            run = disagg_sim.simulate(pools, prompt, gen, arrivals=np.cumsum(gaps))
        out.append(point_of(pools, run, load, v))
    return out


def _within(ends: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    return (ends > window[0]) & (ends <= window[1])


def _overlap(start: np.ndarray, end: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    return np.maximum(np.minimum(end, window[1]) - np.maximum(start, window[0]), 0.0)


def point_of(pools: Pools, run: disagg_sim.DisaggRun, load: str, value: float) -> ServingPoint:
    """A simulated run's figures over its measured requests and window (time averages per replica)."""
    i = run.measured
    span = run.window[1] - run.window[0]
    ttft = run.first_token[i] - run.arrival[i]
    e2e = run.finish[i] - run.arrival[i]
    multi = run.gen[i] > 1
    tpot = (run.finish[i][multi] - run.first_token[i][multi]) / (run.gen[i][multi] - 1)
    mean_tpot = float(tpot.mean()) if len(tpot) else None
    pct: dict[str, float | None] = {}
    for name, xs in (("ttft", ttft), ("tpot", tpot), ("e2e_latency", e2e)):
        for q in PERCENTILES:
            pct[f"{name}_p{q}_s"] = float(np.percentile(xs, q)) if len(xs) else None
    if span <= 0:
        return _point(pools, load, value, ttft, e2e, mean_tpot, pct, {}, "overloaded", len(i))
    steps_in = _within(run.step_ends, run.window)
    tokens = (float(run.step_rows[steps_in].sum()) + float(_within(run.first_token, run.window).sum())) / span
    nd, npf = pools.decode_engines, pools.prefill_engines
    held = _overlap(run.admitted, run.finish, run.window)
    rows = float((run.step_rows * _overlap(run.step_ends - run.step_len, run.step_ends, run.window)).sum()) / span / nd
    queued = float((run.prefilled[i] - run.arrival[i] - pools.prefill_alone(run.prompt[i])).mean())
    waited = float((run.admitted[i] - run.prefilled[i]).mean())
    figures = {
        "tokens": tokens, "rate": float(_within(run.finish, run.window).sum()) / span,
        "batch": float(held.sum()) / span / nd, "rows": rows,
        "kv": float((held * (run.prompt + run.gen / 2.0)).sum()) / span / nd / pools.steps.engine.kv_capacity_tokens,
        "busy": float(_overlap(run.prefill_steps[:, 0], run.prefill_steps[:, 1], run.window).sum()) / span / npf,
        "transfer": float(pools.transfer_time(run.prompt[i]).mean())}
    offered = value * float(run.gen[i].mean())
    if load == "request_rate" and tokens < 0.9 * offered:
        bound = "overloaded"
    else:
        limit = "kv_cache" if run.kv_blocked > run.run_blocked else "max_running"
        ctx = float((run.prompt[i] + run.gen[i] / 2.0).mean())
        bound = bound_of(pools, float(ttft.mean()), max(queued, 0.0), waited, limit, rows, ctx)
    return _point(pools, load, value, ttft, e2e, mean_tpot, pct, figures, bound, len(i))


def _point(pools: Pools, load: str, value: float, ttft: np.ndarray, e2e: np.ndarray, tpot: float | None,
           pct: dict[str, float | None], f: dict[str, float], bound: str, measured: int) -> ServingPoint:
    tokens = f.get("tokens")
    return ServingPoint(
        load=load, value=value, method="simulate", ttft_s=float(ttft.mean()), tpot_s=tpot,
        e2e_latency_s=float(e2e.mean()), output_tokens_per_s=tokens,
        output_tokens_per_s_per_gpu=None if tokens is None else tokens / pools.devices,
        output_tokens_per_s_per_user=None if not tpot else 1.0 / tpot, batch=f.get("batch"),
        decode_batch=f.get("rows"), kv_use=f.get("kv"), bound=bound, requests_per_s=f.get("rate"), percentiles=pct,
        requests=measured, kv_transfer_s=f.get("transfer"), prefill_busy=f.get("busy"))
