"""The serving figure's data: one deployment's latency–throughput curve from ``rooflm.serve_traffic``, a point per
load (kept apart from the per-step figures of ``rooflm.plot.data``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import rooflm
from rooflm.plot.data import Query
from rooflm.serving.result import ServingResult
from rooflm.units import mode_label

# Closed-loop users from one to past a typical engine's 256 running requests: the curve reaches its knee.
DEFAULT_CONCURRENCY: tuple[int, ...] = tuple(2**i for i in range(10))


@dataclass(frozen=True)
class ServingData:
    """One deployment's latency–throughput curve: a point per load, as ``rooflm.serve_traffic`` gives it.

    Lists run in the order of the loads; a figure that does not exist at a point (an overloaded point's
    TPOT) is None, as in the serving JSON."""

    title: str
    load: str  # "concurrency" | "request_rate"
    loads: list[float]
    tokens_per_s_per_user: list[float | None]
    tokens_per_s_per_gpu: list[float | None]
    ttft_s: list[float | None]
    tpot_s: list[float | None]
    ttft_p99_s: list[float | None]  # None throughout from the steady-state model (means only)
    tpot_p99_s: list[float | None]
    bound: list[str]
    method: str


def serving_title(r: ServingResult) -> str:
    parts = [r.model, r.hardware, r.quant]
    if r.disaggregate is not None:  # x prefill + y decode replicas of the layout
        parts.append(f"{r.disaggregate['split']} of {r.layout}, {str(r.disaggregate['kv_link']).replace('_', '-')} KV link")
    elif r.devices > 1:
        parts.append(r.layout)
    parts.append(f"prompt {r.prompt_len}, {r.gen_len} output tokens")
    parts.append("simulated requests" if r.method == "simulate" else "steady-state model")
    parts.append(mode_label(r.efficiency))
    return " · ".join(parts)


def serving_points(result: ServingResult) -> ServingData:
    """The figure's data from a serving result: its points' fields, unchanged."""
    ps = result.points
    return ServingData(
        serving_title(result), ps[0].load if ps else "concurrency", [p.value for p in ps],
        [p.output_tokens_per_s_per_user for p in ps], [p.output_tokens_per_s_per_gpu for p in ps],
        [p.ttft_s for p in ps], [p.tpot_s for p in ps], [p.percentiles.get("ttft_p99_s") for p in ps],
        [p.percentiles.get("tpot_p99_s") for p in ps], [p.bound for p in ps], result.method)


def serving_data(query: Query, concurrency: Sequence[int] | None = None, request_rate: Sequence[float] | None = None,
                 **traffic: Any) -> ServingData:
    """``rooflm.serve_traffic`` for the query's deployment, prompt and output lengths, at each load (by default
    ``DEFAULT_CONCURRENCY`` users). ``traffic``: serve_traffic's other keywords (method, requests, seed,
    disaggregate, kv_link, …); None values are left to serve_traffic's defaults."""
    if concurrency is None and request_rate is None:
        concurrency = DEFAULT_CONCURRENCY
    result = rooflm.serve_traffic(query.model, query.hardware, prompt_len=query.prompt_len, gen_len=query.gen_len,
                                  concurrency=concurrency, request_rate=request_rate, **traffic, **query.deployment)
    return serving_points(result)
