"""The bounds on one ``POST /api/serving``: a simulation's work is refused up front when it could take more than a
few seconds of a worker.

A simulation's cost is its scheduler's loop (~100–175 µs an iteration on the 2-core development machine, whatever
it does) plus the decode steps it prices in vectorised runs (~0.15 µs a step at one user). Both are bounded before
any work from what the body asks: the loads, the requests per load, the longest prompt and output, the chunk size.
"""

from __future__ import annotations

import math

from rooflm.analyses.axes import parse_int_list
from rooflm.errors import InvalidInputError
from rooflm.serving.api import DEFAULT_REQUESTS, MAX_SIMULATED_REQUESTS, check_simulated_tokens
from rooflm.serving.traffic import Lengths, parse_lengths, parse_rates
from rooflm.specs.model import ModelSpec
from rooflm.web.schemas import (
    MAX_API_LOADS,
    MAX_API_POINTS,
    MAX_API_SIMULATED_REQUESTS,
    MAX_API_SIMULATED_STEPS,
    MAX_API_SIMULATED_TOKENS,
    ServingBody,
)

# rooflm.serving.steps.build's default engine limit (vLLM's max_num_seqs).
DEFAULT_MAX_RUNNING = 256


def serving_loads(body: ServingBody) -> tuple[list[int] | None, list[float] | None]:
    """The load lists, the request refused before any work when it has more loads than the API evaluates."""
    concurrency = body.concurrency
    if isinstance(concurrency, str):
        concurrency = parse_int_list(concurrency, "concurrency", max_values=MAX_API_POINTS)
    rates = parse_rates(body.request_rate) if isinstance(body.request_rate, str) else body.request_rate
    loads = len(concurrency or rates or [])
    field = "concurrency" if concurrency is not None else "request_rate"
    if loads > MAX_API_LOADS:
        raise InvalidInputError(f"{loads:,} loads; the API evaluates at most {MAX_API_LOADS} per request",
                                field=field)
    return concurrency, rates


def check_simulation(body: ServingBody, concurrency: list[int] | None, rates: list[float] | None,
                     model: ModelSpec) -> None:
    """Refuse a simulation whose requests, output tokens or scheduler steps pass the API's limits (the CLI runs
    any size). The steady-state method is vectorised over the loads and is bounded by their number alone."""
    if body.method.strip().lower() != "simulate":
        return
    field = "concurrency" if concurrency is not None else "request_rate"
    values = concurrency or rates or []
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        return  # serve_traffic names the mistake
    requests = body.requests
    if requests is None:  # serve_traffic's default (for a request rate too): 2,000, or 4 × the load
        requests = int(max(DEFAULT_REQUESTS, min(4 * max(values), MAX_SIMULATED_REQUESTS // len(values))))
    if requests < 1:
        return
    field = "requests" if body.requests is not None else field
    loads = len(values)
    total = requests * loads
    if total > MAX_API_SIMULATED_REQUESTS:
        raise InvalidInputError(
            f"{loads:,} loads × {requests:,} requests = {total:,} simulated requests; the API simulates "
            f"at most {MAX_API_SIMULATED_REQUESTS:,} per request (`rooflm serving` runs more)", field=field)
    check_simulated_tokens(total, parse_lengths(body.gen_len, "gen_len"), MAX_API_SIMULATED_TOKENS)
    prompt = parse_lengths(body.prompt_len, "prompt_len")
    chunk = _chunk(body)
    if chunk is None:
        return
    steps = simulated_steps(total, prompt, model, concurrency is not None, chunk)
    if steps > MAX_API_SIMULATED_STEPS:
        raise InvalidInputError(
            f"{total:,} simulated requests with prompts of up to {_top(prompt, model):,} tokens, prefilled "
            f"in chunks of {chunk:,}, take up to {steps:,} scheduler steps; the API simulates at most "
            f"{MAX_API_SIMULATED_STEPS:,} per request: fewer requests, shorter prompts or a larger max_num_batched_tokens "
            "(`rooflm serving` runs more)", field=field)


def simulated_steps(requests: int, prompt: Lengths, model: ModelSpec, closed_loop: bool, chunk: int) -> int:
    """An upper bound on the iterations of rooflm.serving.simulate's loop. Each request ends one decode run (a run
    stops at a completion) and one prefill step (the one that finishes its prompt); every other prefill step fills
    its chunk, so there are at most Σ prompt / chunk of them. Poisson arrivals add one iteration per request (an
    idle jump to it, or the decode run it cuts short)."""
    per_request = (2 if closed_loop else 3) + _top(prompt, model) / chunk
    return math.ceil(requests * per_request)


def _top(prompt: Lengths, model: ModelSpec) -> int:
    return min(prompt.upper, max(model.max_position_embeddings - 1, 1))


def _chunk(body: ServingBody) -> int | None:
    """The fewest prompt tokens a full prefill step carries: the step's budget less the decode rows beside a prompt
    still prefilling (at most max running − 1). None when the limits are wrong, which serve_traffic names."""
    budget = body.max_tokens_per_step or body.max_num_batched_tokens or 8192
    running = DEFAULT_MAX_RUNNING if body.max_running is None else body.max_running
    if not 1 <= running <= budget:
        return None
    return budget - running + 1
