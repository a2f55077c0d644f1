"""``serve_traffic``: one deployment under a traffic, by the steady-state model or by simulating requests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from typing_extensions import Unpack

from rooflm.core.inputs import Deployment, check_engine, policy_of, realistic
from rooflm.errors import InvalidInputError, arg, quoted
from rooflm.kinds import Progress
from rooflm.serving import disagg_api, steady
from rooflm.serving import simulate as sim
from rooflm.serving.disagg import DEFAULT_LINK, Pools, Split, parse_split, pick_link
from rooflm.serving.result import PERCENTILES, ServingPoint, ServingResult
from rooflm.serving.steps import StepModel, build, resolve_model
from rooflm.serving.traffic import Lengths, Moments, check_against_model, check_loads, moments, parse_lengths
from rooflm.specs.hardware import HardwareSpec
from rooflm.specs.model import ModelSpec
from rooflm.specs.workload import check_number

METHODS: tuple[str, ...] = ("simulate", "steady")
# What a simulated point's means are over: the steady window (warm-up and drain left out; what capacity planning
# wants) or the whole run as a benchmark client runs it (every user starts at once; every request counts).
VIEWS: tuple[str, ...] = ("steady", "benchmark")
# A mean's confidence interval: the measured requests in arrival order cut into this many batches (neighbours
# share the engine, so single requests are not independent; batch means nearly are), Student's t with 9 degrees
# of freedom at 95%: 2.262.
CI_BATCHES = 10
T_95_9 = 2.262
# A simulated request costs ~50–100 µs (benchmarks/bench_serving.py: 10,000 in well under a second on one core):
# 10^6 simulated requests in one call is about a minute; the web API allows a tenth of that.
MAX_SIMULATED_REQUESTS = 1_000_000
MAX_LOADS = 1000
# Each simulated output token is at least one element of a decode step's arrays (~50 ns): 10^9 is about a minute.
MAX_SIMULATED_TOKENS = 1_000_000_000
DEFAULT_REQUESTS = 2000
# The front end's costs are bounded like a step's overhead: a second per request, a second per token, is far past
# any server (a larger figure is a unit slip: milliseconds given as seconds).
MAX_FRONT_END_S = 10.0
MAX_FRONT_END_TOKEN_S = 1.0


def serve_traffic(model: str | Path | ModelSpec = "llama-3.1-8b", hardware: str | Path | HardwareSpec = "h100-sxm", *,
                  prompt_len: str | int | Lengths = 1024, gen_len: str | int | Lengths = 256,
                  concurrency: Sequence[int] | None = None, request_rate: Sequence[float] | None = None,
                  method: str = "simulate", requests: int | None = None, seed: int = 0,
                  max_running: int | None = None, max_tokens_per_step: int | None = None, kv_blocks: int | None = None,
                  disaggregate: str | Split | None = None, kv_link: str | None = None, view: str = "steady",
                  front_end_s: float | None = None, front_end_token_s: float | None = None,
                  progress: Progress | None = None, **deployment: Unpack[Deployment]) -> ServingResult:
    """TTFT, TPOT, end-to-end latency and output tokens/s of a deployment under a traffic, one point per load.

    ``concurrency``: closed loops of N users (each sends its next request when the last completes);
    ``request_rate``: Poisson arrivals, requests/s. ``method``: "simulate" (a discrete-event simulation of
    ``requests`` requests per point, by default 2,000 or 4 × the largest concurrency: means and percentiles) or
    "steady" (the vectorised steady-state model: means, every point at once). Engine limits: ``max_running``
    requests (default 256), ``max_tokens_per_step`` (decode rows + prefill chunk; default the deployment's
    max_num_batched_tokens, 8192), ``kv_blocks`` of 16 tokens (default: what the memory left after the weights
    and one step's activations holds). Lengths: see rooflm.serving.traffic.

    ``view`` (simulate): "steady", the means of the steady window (a closed loop's users start mid-request; the
    warm-up and the drain at the end are left out), or "benchmark", the means of every request of a run started as
    ``vllm bench serve --max-concurrency N``, SGLang's bench_serving and genai-perf start one: all users at once
    into an empty engine, ``requests`` prompts in all, throughput over the whole run. Published serving numbers are
    benchmark-view numbers; at high load the first wave of prompts queues and raises the mean TTFT.

    ``disaggregate="2P:6D"``: 2 prefill and 6 decode replicas of the layout, each request's KV cache sent from one
    to the other over ``kv_link`` ("inter_node", the default, or "intra_node"); ``requests`` then counts the whole
    deployment's (see rooflm.serving.disagg). Calibrated mode unless ``efficiency`` says otherwise.
    ``progress(done, total)`` is called as the loads of a simulation are run."""
    deployment = realistic(deployment)  # calibrated unless asked: what an engine reaches
    load, values = check_loads(None if concurrency is None else list(concurrency),
                               None if request_rate is None else list(request_rate))
    method = _check_method(method)
    fe, fe_token = front_end(deployment, front_end_s, front_end_token_s)
    view = _check_view(view, method)
    split = parse_split(disaggregate)
    if split is not None and view == "benchmark":
        raise InvalidInputError("view benchmark is not modelled for disaggregated serving: use view steady",
                                field="view")
    if split is None and kv_link is not None:
        raise InvalidInputError(f"{arg('kv_link')} is the link of {arg('disaggregate')}'s KV transfer; give "
                                f"{arg('disaggregate')} too",
                                field="kv_link")
    if len(values) > MAX_LOADS:
        raise InvalidInputError(f"{len(values):,} loads; at most {MAX_LOADS:,} per call", field=load)
    if requests is None:  # enough that the users' first requests (warm-up) are a small share
        requests = int(max(DEFAULT_REQUESTS, min(4 * max(values), MAX_SIMULATED_REQUESTS // len(values))))
    _check_requests(requests, len(values) if method == "simulate" else 0)
    prompt = prompt_len if isinstance(prompt_len, Lengths) else parse_lengths(prompt_len, "prompt_len")
    gen = gen_len if isinstance(gen_len, Lengths) else parse_lengths(gen_len, "gen_len")
    if method == "simulate":
        check_simulated_tokens(requests * len(values), gen, MAX_SIMULATED_TOKENS)
    spec = resolve_model(model)
    limit = spec.max_position_embeddings
    check_against_model(prompt, gen, limit, seed)
    m = moments(prompt, gen, seed, cap=limit - 1)
    exact = tuple(v for v in (prompt.fixed,) if v is not None)
    steps = build(spec, hardware, max_prompt=min(prompt.upper, limit - 1),
                  max_context=min(prompt.upper + gen.upper, limit), exact_prompts=exact, max_running=max_running,
                  max_tokens_per_step=max_tokens_per_step, kv_blocks=kv_blocks,
                  mean_context=m.mean_prompt + m.mean_gen, **deployment)
    if steps.engine.max_tokens_per_step < steps.engine.max_running:
        raise InvalidInputError(f"{arg('max_num_batched_tokens')} ({steps.engine.max_tokens_per_step:,}) must be at least "
                                f"{arg('max_running')} ({steps.engine.max_running:,}): every running request needs a row per "
                                "step (vLLM refuses the same)", field="max_num_batched_tokens")
    loads = np.asarray(values, dtype=np.float64)
    pools = None
    if split is not None:
        pools = Pools(steps, split, pick_link(hardware, kv_link or DEFAULT_LINK,
                                              (split.prefill + split.decode) * steps.devices))
        p, g = sample_requests(prompt, gen, requests, seed, limit) if method == "simulate" else (np.ones(1),) * 2
        points = disagg_api.points(pools, m, load, values, method, p, g, seed)
    elif method == "steady":
        points = steady.closed_loop_front_end(steps, m, loads, fe, fe_token) if load == "concurrency" else \
            steady.with_front_end(steady.poisson(steps, m, loads), m, fe, fe_token)
    else:
        report = progress or (lambda done, total: None)
        points = []
        for v in values:
            report(len(points), len(values))
            points.append(_simulated(steps, prompt, gen, load, v, requests, seed, limit, view, fe, fe_token))
        report(len(points), len(values))
    lab = steps.labels
    return ServingResult(
        model=str(lab["model"]), hardware=str(lab["hardware"]), quant=str(lab["quant"]), kv_dtype=str(lab["kv_dtype"]),
        efficiency=str(lab["efficiency"]), engine_kernels=lab.get("engine_kernels"),
        layout=str(lab["layout"]), devices=pools.devices if pools else steps.devices,
        method=method, view=view, engine_policy=str(lab["engine_policy"]),
        prompt_len=prompt.label(), gen_len=gen.label(), max_running=steps.engine.max_running,
        max_tokens_per_step=steps.engine.max_tokens_per_step, kv_capacity_tokens=steps.engine.kv_capacity_tokens,
        points=points, notes=_notes(steps, method) + (pools.notes(method) if pools else []), profile=steps.profile,
        disaggregate=None if pools is None else pools.describe())


def _check_method(method: object) -> str:
    picked = method.strip().lower() if isinstance(method, str) else None
    if picked not in METHODS:
        raise InvalidInputError(f"method must be one of {', '.join(METHODS)}, got {quoted(method)}", field="method")
    return picked


def _check_view(view: object, method: str) -> str:
    picked = view.strip().lower() if isinstance(view, str) else None
    if picked not in VIEWS:
        raise InvalidInputError(f"view must be one of {', '.join(VIEWS)}, got {quoted(view)}", field="view")
    if picked == "benchmark" and method != "simulate":
        raise InvalidInputError("view benchmark runs requests as a benchmark client sends them: it needs method "
                                "simulate (the steady-state model has no start and no end)", field="view")
    return picked


def _check_requests(requests: object, loads: int) -> None:
    if isinstance(requests, bool) or not isinstance(requests, int) or not 1 <= requests <= MAX_SIMULATED_REQUESTS:
        raise InvalidInputError(f"{arg('requests')} must be an integer between 1 and {MAX_SIMULATED_REQUESTS:,}, got "
                                f"{quoted(requests)}", field="requests")
    if requests * loads > MAX_SIMULATED_REQUESTS:
        raise InvalidInputError(f"{loads:,} loads × {requests:,} requests = {loads * requests:,} simulated requests; "
                                f"at most {MAX_SIMULATED_REQUESTS:,} per call", field="requests")


def check_simulated_tokens(requests: int, gen: Lengths, limit: int) -> None:
    """Refuse, before any work, a simulation whose output tokens (its decode steps at one user) pass ``limit``."""
    tokens = requests * gen.upper
    if tokens > limit:
        raise InvalidInputError(f"{requests:,} simulated requests × up to {gen.upper:,} output tokens = {tokens:,} "
                                f"tokens; at most {limit:,} per call: fewer {arg('requests')} or a shorter {arg('gen_len')}",
                                field="requests")


def _notes(steps: StepModel, method: str) -> list[str]:
    notes = ["step times: rooflm.sweep on a grid of (decode batch, context) and prefill chunk sizes, linearly "
             "interpolated; decode attention at the rows' mean context",
             f"KV cache: {steps.engine.kv_capacity_tokens:,} tokens per replica "
             f"({steps.kv_bytes_per_token:,.0f} bytes per token per device); a request is admitted when its prompt + "
             "output fit (no preemption)"]
    if method == "steady":
        notes.append("steady-state model: means only (percentiles come from --method simulate)")
    if steps.dp > 1:
        notes.append(f"{steps.dp} data-parallel replicas, each an engine serving 1/{steps.dp} of the load")
    return notes


def sample_requests(prompt: Lengths, gen: Lengths, n: int, seed: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` requests' prompt and output lengths; prompt + output stays within the model's positions."""
    rng = np.random.default_rng(seed)
    p = prompt.sample(rng, n, cap=limit - 1)
    g = gen.sample(rng, n)
    return p, np.maximum(np.minimum(g, limit - p + 1), 1)


def front_end(d: Deployment, request_s: object, token_s: object) -> tuple[float, float]:
    """The front end's cost per request and per output token: as given (checked), or the engine policy's."""
    policy = policy_of(check_engine(d.get("engine"), d))
    out = []
    for name, v, own, top in (("front_end_s", request_s, policy and policy.front_end_request_s, MAX_FRONT_END_S),
                              ("front_end_token_s", token_s, policy and policy.front_end_token_s, MAX_FRONT_END_TOKEN_S)):
        out.append(float(own or 0.0) if v is None else check_number(v, name, 0, top, unit="s"))
    return out[0], out[1]


def _simulated(steps: StepModel, prompt: Lengths, gen: Lengths, load: str, value: float, requests: int, seed: int,
               limit: int, view: str = "steady", fe: float = 0.0, fe_token: float = 0.0) -> ServingPoint:
    p, g = sample_requests(prompt, gen, requests, seed, limit)
    if load == "concurrency":
        users = max(1, round(value / steps.dp))
        if users >= requests and view == "steady":
            raise InvalidInputError(f"{arg('requests')} ({requests:,}) must exceed the users per replica ({users:,}): the "
                                    "first request of each user is warm-up, not measured", field="requests")
        run = sim.simulate(steps, p, g, concurrency=users, seed=seed, benchmark=view == "benchmark", gap_s=fe,
                           token_gap_s=fe_token)
    else:
        rate = value / steps.dp
        gaps = np.random.default_rng(seed + 1).exponential(1.0 / rate, size=requests)
        arrivals = np.cumsum(gaps)
        if view == "benchmark":
            arrivals -= arrivals[0]  # the client sends its first request at the start
        run = sim.simulate(steps, p, g, arrivals=arrivals, benchmark=view == "benchmark")
    return point_of(steps, run, load, value, fe, fe_token)


def point_of(steps: StepModel, run: sim.Run, load: str, value: float, fe: float = 0.0,
             fe_token: float = 0.0) -> ServingPoint:
    """A simulated run's figures over its measured requests and window, as a client sees them through the front end
    (``fe`` before each request reaches the engine, ``fe_token`` per output token after the first)."""
    i = run.measured
    engine_ttft = run.first_token[i] - run.arrival[i]
    ttft = engine_ttft + fe
    e2e = run.finish[i] - run.arrival[i] + fe + (run.gen[i] - 1) * fe_token
    multi = run.gen[i] > 1
    tpot = (run.finish[i][multi] - run.first_token[i][multi]) / (run.gen[i][multi] - 1) + fe_token
    tokens = run.window_tokens / run.window_s * steps.dp if run.window_s > 0 else float("nan")
    mean_tpot = float(tpot.mean()) if len(tpot) else None
    pct: dict[str, float | None] = {}
    for name, xs in (("ttft", ttft), ("tpot", tpot), ("e2e_latency", e2e)):
        for q in PERCENTILES:
            pct[f"{name}_p{q}_s"] = float(np.percentile(xs, q)) if len(xs) else None
    if load == "request_rate" and run.window_s > 0 and \
            run.window_tokens / run.window_s < 0.9 * (value / steps.dp) * float(run.gen[i].mean()):
        bound = "overloaded"
    elif run.blocked > 0.5:
        bound = "kv_cache" if run.kv_blocked > 0.5 else "max_running"
    else:
        rows = run.decode_rows if np.isfinite(run.decode_rows) else 1.0
        ctx = run.context if np.isfinite(run.context) else float(steps.context_grid[0])
        bound = steps.bound(max(rows, 1.0), ctx)
    return ServingPoint(
        load=load, value=value, method="simulate", ttft_s=float(ttft.mean()), tpot_s=mean_tpot,
        e2e_latency_s=float(e2e.mean()), output_tokens_per_s=_f(tokens),
        output_tokens_per_s_per_gpu=_f(tokens / steps.devices),
        output_tokens_per_s_per_user=None if not mean_tpot else 1.0 / mean_tpot, batch=_f(run.running),
        decode_batch=_f(run.decode_rows), kv_use=_f(run.kv_use), bound=bound,
        requests_per_s=_f(run.completed / run.window_s * steps.dp) if run.window_s > 0 else None,
        percentiles=pct, requests=len(i),
        intervals={f"{name}_ci_s": confidence_half_width(xs) for name, xs in (("ttft", ttft), ("tpot", tpot),
                                                                              ("e2e_latency", e2e))},
        ttft_parts=_ttft_parts(run, engine_ttft, fe))


def _ttft_parts(run: sim.Run, engine_ttft: np.ndarray, fe: float) -> dict[str, float | None]:
    """Mean queue (arrival at the engine to its prefill's first step) and prefill (that step's start to the first
    token) over the measured requests, and the front end's cost."""
    if run.prefill_start is None or not len(engine_ttft):
        return {}
    queue = run.prefill_start[run.measured] - run.arrival[run.measured]
    return {"queue_s": _f(float(np.nanmean(queue))), "prefill_s": _f(float(np.nanmean(engine_ttft - queue))),
            "front_end_s": fe}


def confidence_half_width(xs: np.ndarray) -> float | None:
    """The half-width of a 95% confidence interval of the mean of ``xs`` (in arrival order), by batch means; None
    with fewer than two requests a batch."""
    if len(xs) < 2 * CI_BATCHES:
        return None
    means = np.array([b.mean() for b in np.array_split(xs, CI_BATCHES)])
    return float(T_95_9 * means.std(ddof=1) / np.sqrt(CI_BATCHES))


def _f(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


__all__ = ["METHODS", "VIEWS", "Moments", "serve_traffic"]
