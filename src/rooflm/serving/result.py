"""The serving view's results: one point per load (a concurrency or a request rate), and the JSON document.

Field names are the contract of docs/DESIGN.md (``serving --json``). Latencies are seconds: ``ttft_s``, ``tpot_s``
and ``e2e_latency_s`` are means over requests; ``ttft_p50_s`` … ``e2e_latency_p99_s`` their percentiles (None
from the steady-state model, which gives means only). TPOT is per request: (last token − first token) /
(output tokens − 1), as vLLM's benchmark reports it. A figure that does not exist (an overloaded point's latency,
TPOT of one-token outputs) is None.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

LATENCIES: tuple[str, ...] = ("ttft", "tpot", "e2e_latency")
PERCENTILES: tuple[int, ...] = (50, 90, 99)
# What a point's "bound" may say: a step's roofline bound, or the engine limit that keeps requests waiting.
SERVING_BOUNDS: tuple[str, ...] = ("compute", "memory", "communication", "overhead", "kv_cache", "max_running",
                                   "max_tokens_per_step", "overloaded", "prefill_pool")


@dataclass(frozen=True)
class ServingPoint:
    """One load point. Throughputs are for the whole deployment (all data-parallel replicas)."""

    load: str  # "concurrency" | "request_rate"
    value: float
    method: str  # "steady" | "simulate"
    ttft_s: float | None
    tpot_s: float | None
    e2e_latency_s: float | None
    output_tokens_per_s: float | None
    output_tokens_per_s_per_gpu: float | None
    output_tokens_per_s_per_user: float | None
    batch: float | None  # mean requests running in one replica's engine (prefilling or decoding)
    decode_batch: float | None  # mean decode rows per step
    kv_use: float | None  # mean fraction of the KV cache held
    bound: str
    requests_per_s: float | None = None
    percentiles: dict[str, float | None] = field(default_factory=dict)  # "ttft_p50_s" → seconds
    requests: int | None = None  # simulated requests measured
    kv_transfer_s: float | None = None  # disaggregated: mean time to send a request's KV cache to its decode replica
    prefill_busy: float | None = None  # disaggregated: share of the time a prefill replica runs steps
    # Simulated: the half-width of each mean's 95% confidence interval ("ttft_ci_s", "tpot_ci_s",
    # "e2e_latency_ci_s"), by batch means over the measured requests; None from the steady-state model.
    intervals: dict[str, float | None] = field(default_factory=dict)
    # TTFT's parts, means in seconds: "queue_s" (arrival at the engine to the start of its prefill: the wait for a
    # slot and for the step in progress), "prefill_s" (its prefill steps), "front_end_s" (the server's per-request
    # cost); they sum to ttft_s. Empty for a disaggregated point.
    ttft_parts: dict[str, float | None] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, object]:
        d = asdict(self)
        value = d.pop("value")
        load = d.pop("load")
        pct = d.pop("percentiles")
        ci = d.pop("intervals")
        parts = d.pop("ttft_parts")
        head: dict[str, object] = {load: int(value) if load == "concurrency" else value}
        return {**head, **{k: _finite(v) for k, v in d.items()},
                **{k: _finite(pct.get(k)) for k in percentile_names()},
                **{f"{name}_ci_s": _finite(ci.get(f"{name}_ci_s")) for name in LATENCIES},
                "ttft_parts": {k: _finite(v) for k, v in parts.items()} or None}


_JSON_KEY = {"max_tokens_per_step": "max_num_batched_tokens"}


def _finite(v: object) -> object:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def percentile_names() -> list[str]:
    return [f"{name}_p{p}_s" for name in LATENCIES for p in PERCENTILES]


@dataclass(frozen=True)
class ServingResult:
    """The deployment, its engine limits and traffic, and one point per load."""

    model: str
    hardware: str
    quant: str
    kv_dtype: str
    efficiency: str
    layout: str
    devices: int
    method: str
    prompt_len: str
    gen_len: str
    max_running: int
    max_tokens_per_step: int
    kv_capacity_tokens: int  # per replica
    points: list[ServingPoint]
    notes: list[str] = field(default_factory=list)
    profile: dict[str, str | None] | None = None  # the profile predicted with (rooflm.core.inputs.Setup.profile)
    # Disaggregated serving: {"split": "2P:6D", "prefill_replicas", "decode_replicas", "devices_per_replica",
    # "kv_link", "kv_link_name", "kv_link_bandwidth"}; None when aggregated. ``devices`` then counts both pools.
    disaggregate: dict[str, object] | None = None
    view: str = "steady"  # "steady" (the steady window's means) or "benchmark" (every request of a benchmark run)
    engine_kernels: str | None = None  # the engine's part of the mode's name (rooflm.core.inputs.Setup.engine_kernels)
    engine_policy: str = ""  # the engine's serving policy used ("vllm 0.11.2"), or the generic one

    def to_json_dict(self) -> dict[str, object]:
        # The step's token budget under the engine's own name, as every command's flag spells it.
        head = {_JSON_KEY.get(k, k): v for k, v in asdict(self).items() if k not in ("points", "notes")}
        return {**head, "notes": list(self.notes), "points": [p.to_json_dict() for p in self.points]}
