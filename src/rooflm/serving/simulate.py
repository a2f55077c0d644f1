"""A discrete-event simulation of one engine replica serving individual requests (continuous batching).

The scheduler follows vLLM V1's: every step, each running request past its prefill gets one decode row; the rest
of the token budget goes to prompt chunks, running requests first, in admission order; waiting requests are
admitted first-come first-served while the running count is under ``max_running`` and the KV cache can hold
them. Approximation, stated: a request is admitted only if its whole footprint (prompt + output tokens) fits
beside the others' (vLLM allocates blocks as tokens arrive and preempts when it runs out; reserving up front
never preempts, so it runs a little fewer requests when the cache binds). A step's time comes from the step
model's grid (steps.py), so a 10,000-request run costs a few numpy calls per step instead of analyses.

Runs of decode-only steps between events (a completion, an arrival) are advanced together: their contexts grow by
one per step, so their times are one vectorised read of the grid.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from typing import TypedDict

import numpy as np

from rooflm.errors import DoesNotFitError, arg
from rooflm.serving.steps import StepModel

# Requests measured are those after the first WARMUP share (the start of a closed loop is a burst, and a Poisson
# run starts empty).
WARMUP = 0.1


@dataclass(frozen=True)
class Run:
    """One simulated run: per request its times (seconds), and the time integrals over the measured window."""

    arrival: np.ndarray
    first_token: np.ndarray
    finish: np.ndarray
    gen: np.ndarray
    measured: np.ndarray  # indices of the requests measured
    window_s: float  # duration of the measured window
    window_tokens: float  # output tokens produced in the window
    in_system: float  # time-averaged requests in the system (waiting + running) over the window
    running: float  # time-averaged running requests
    decode_rows: float  # decode rows per step, weighted by step time
    context: float  # mean decode context, weighted by decode rows × step time
    kv_use: float  # time-averaged share of the KV cache held
    blocked: float  # share of the window with requests waiting while the engine was full
    kv_blocked: float  # share of that caused by the KV cache (the rest: max_running)
    completed: int  # requests completed inside the window (requests/s = completed / window_s)
    prefill_start: np.ndarray | None = None  # per request, the start of the step that runs its first prompt chunk


class _Window:
    """Time integrals between two arrivals (the window's ends)."""

    def __init__(self) -> None:
        self.open = False
        self.closed = False
        self.start = self.end = 0.0
        self.tokens0 = self.tokens1 = 0.0
        self.area = self.run_area = self.rows_area = self.ctx_area = self.kv_area = 0.0
        self.blocked = self.kv_blocked = 0.0

    def add(self, dt: float, in_system: float, running: int, rows: float, ctx_rows: float, kv: float,
            blocked: bool, kv_block: bool) -> None:
        if not self.open or self.closed:
            return
        self.area += in_system * dt
        self.run_area += running * dt
        self.rows_area += rows * dt
        self.ctx_area += ctx_rows * dt
        self.kv_area += kv * dt
        if blocked:
            self.blocked += dt
            self.kv_blocked += dt if kv_block else 0.0


def simulate(steps: StepModel, prompt: np.ndarray, gen: np.ndarray, *, concurrency: int | None = None,
             arrivals: np.ndarray | None = None, seed: int = 0, benchmark: bool = False, gap_s: float = 0.0,
             token_gap_s: float = 0.0) -> Run:
    """Serve requests i = 0 … n−1 (``prompt[i]`` and ``gen[i]`` tokens) on one replica: a closed loop of
    ``concurrency`` users (each sends its next request when its last completes; it reaches the engine ``gap_s``
    later, mid-step as a rule, and waits for the step in progress to end), or open-loop ``arrivals`` (s).

    ``benchmark``: a closed loop starts as a benchmark client starts it — every user's first request at once, into an
    empty engine — and every request is measured (the run's means are a benchmark tool's). Otherwise the users start
    mid-request (the state a long-running loop is in) and only the steady window is measured. ``token_gap_s``: a
    closed loop's user also waits this long per output token after the first (the server's streaming) before the
    next request is sent."""
    e = steps.engine
    n = len(prompt)
    footprint = prompt + gen
    if footprint.max() > e.kv_capacity_tokens:
        raise DoesNotFitError(f"a request of {int(footprint.max()):,} tokens (prompt + output) does not fit in the KV "
                              f"cache of {e.kv_capacity_tokens:,} tokens per replica: shorter requests, more GPUs "
                              f"({arg('tp')}) or {arg('kv_dtype')} fp8", field="prompt_len")
    arrival = np.full(n, np.inf) if arrivals is None else np.asarray(arrivals, dtype=np.float64).copy()
    first = np.full(n, np.nan)
    finish = np.full(n, np.nan)
    started = np.full(n, np.nan)  # when each request's prefill starts (the queue before it, the prefill after)
    att_total = steps.prompt_attention_time(np.arange(0, int(prompt.max()) + 1))  # A(L) for every length once
    warm = int(n * WARMUP)
    win = _Window()
    waiting: deque[int] = deque()
    run_id = np.zeros(0, dtype=np.int64)
    run_p = np.zeros(0, dtype=np.int64)
    run_g = np.zeros(0, dtype=np.int64)
    reserved = 0
    next_arrival = 0  # the next request to reach the engine (open loop: all times known; closed loop: those sent)
    sent = 0  # closed loop: requests sent so far
    now = 0.0
    tokens = 0.0

    def arrive(i: int, t: float) -> None:
        arrival[i] = t
        waiting.append(i)
        if i == warm and not win.open:
            win.open, win.start, win.tokens0 = True, t, tokens
        if i == n - 1:
            win.closed, win.end, win.tokens1 = True, t, tokens

    if concurrency is not None and benchmark:
        # A benchmark client's start: every user's first request at once, into an empty engine; all are measured.
        sent = next_arrival = min(concurrency, n)
        warm = 0
        for i in range(sent):
            arrive(i, 0.0)
    elif concurrency is not None:
        # The users start mid-request, at a uniformly drawn point of their first output (the state a long-running
        # closed loop is in): started together, requests of equal lengths would finish together forever and
        # prefill in lockstep, which no real engine's jitter sustains. They are warm-up, never measured.
        sent = next_arrival = min(concurrency, n)
        warm = max(warm, sent)
        drawn = np.random.default_rng(seed).integers(0, np.maximum(gen[:sent] - 1, 1))
        start = np.where(gen[:sent] > 1, drawn + 1, 0)  # tokens already out: 1 … G − 1
        for i in range(sent):
            arrive(i, 0.0)
        while waiting and len(run_id) < e.max_running and reserved + footprint[waiting[0]] <= e.kv_capacity_tokens:
            i = waiting.popleft()
            run_id, run_p, run_g = np.append(run_id, i), np.append(run_p, prompt[i]), np.append(run_g, start[i])
            reserved += int(footprint[i])
            first[i] = 0.0
    done = 0
    while done < n:
        # Admit waiting requests, first come first served.
        while waiting and len(run_id) < e.max_running and reserved + footprint[waiting[0]] <= e.kv_capacity_tokens:
            i = waiting.popleft()
            run_id, run_p, run_g = np.append(run_id, i), np.append(run_p, 0), np.append(run_g, 0)
            reserved += int(footprint[i])
        if len(run_id) == 0:  # idle: jump to the next arrival
            if next_arrival >= n or not np.isfinite(arrival[next_arrival]):
                break
            now = max(now, float(arrival[next_arrival]))
            while next_arrival < n and arrival[next_arrival] <= now:
                arrive(next_arrival, float(arrival[next_arrival]))
                next_arrival += 1
            continue
        lengths = prompt[run_id]
        decoding = run_p >= lengths
        b = int(decoding.sum())
        in_system = len(run_id) + len(waiting)
        blocked = bool(waiting)
        kv_block = blocked and len(run_id) < e.max_running
        held = float((run_p + run_g).sum()) / e.kv_capacity_tokens
        ctx = (lengths + run_g)[decoding]
        if b == len(run_id):
            # Decode only until the next completion or arrival: k steps at contexts growing by one.
            k = int((gen[run_id] - run_g).min())
            mean_ctx = float(ctx.mean())
            dts = steps.decode_time(float(b), mean_ctx + np.arange(k, dtype=np.float64))
            cum = np.cumsum(dts)
            if next_arrival < n and arrival[next_arrival] < now + cum[-1]:
                k = int(np.searchsorted(cum, arrival[next_arrival] - now, side="left")) + 1
                cum = cum[:k]
            dt = float(cum[-1])
            win.add(dt, in_system, len(run_id), b, b * (mean_ctx + (k - 1) / 2.0),
                    held + b * (k - 1) / 2.0 / e.kv_capacity_tokens, blocked, kv_block)
            now += dt
            run_g = run_g + k
            tokens += b * k
        else:
            budget = e.max_tokens_per_step - b
            pieces = np.zeros(len(run_id), dtype=np.int64)
            for j in np.flatnonzero(~decoding):
                q = min(int(lengths[j] - run_p[j]), budget)
                pieces[j] = q
                budget -= q
                if budget == 0:
                    break
            t = int(pieces.sum())
            started[run_id[(pieces > 0) & (run_p == 0)]] = now
            att = float((att_total[run_p + pieces] - att_total[run_p]).sum())
            mean_ctx = float(ctx.mean()) if b else 0.0
            dt = steps.step_time_point(float(b), float(t), mean_ctx, att)
            win.add(dt, in_system, len(run_id), b, float(ctx.sum()), held, blocked, kv_block)
            now += dt
            run_g = run_g + decoding
            tokens += b
            run_p = run_p + pieces
            finished_prefill = (pieces > 0) & (run_p >= lengths)
            run_g = run_g + finished_prefill  # the step that ends a prompt emits its first token
            tokens += float(finished_prefill.sum())
            first[run_id[finished_prefill]] = now
        # Complete, then let arrivals in (closed loop: each completion sends the user's next request).
        complete = run_g >= gen[run_id]
        if complete.any():
            ids = run_id[complete]
            finish[ids] = now
            reserved -= int(footprint[ids].sum())
            done += len(ids)
            keep = ~complete
            run_id, run_p, run_g = run_id[keep], run_p[keep], run_g[keep]
            if concurrency is not None:  # each user sends its next request; the engine sees it gap_s later
                for i in ids:
                    if sent < n:
                        arrival[sent] = now + gap_s + token_gap_s * float(gen[i] - 1)
                        sent += 1
        while next_arrival < n and arrival[next_arrival] <= now:
            a = float(arrival[next_arrival])
            win.add(now - a, 1.0, 0, 0.0, 0.0, 0.0, False, False)  # in the system since it arrived mid-step
            arrive(next_arrival, a)
            next_arrival += 1
    return replace(_run(arrival, first, finish, gen, warm, win, benchmark), prefill_start=started)


class _Integrals(TypedDict):
    """Run's time integrals over the window, by field name."""

    in_system: float
    running: float
    decode_rows: float
    context: float
    kv_use: float
    blocked: float
    kv_blocked: float


def _run(arrival: np.ndarray, first: np.ndarray, finish: np.ndarray, gen: np.ndarray, warm: int, win: _Window,
         benchmark: bool = False) -> Run:
    n = len(arrival)
    w = win.end - win.start
    rows = win.rows_area
    nan = float("nan")
    integrals: _Integrals = {"in_system": win.area / w if w > 0 else nan, "running": win.run_area / w if w > 0 else nan,
                 "decode_rows": rows / w if w > 0 else nan, "context": win.ctx_area / rows if rows else nan,
                 "kv_use": win.kv_area / w if w > 0 else nan, "blocked": win.blocked / w if w > 0 else 0.0,
                 "kv_blocked": win.kv_blocked / max(win.blocked, 1e-300)}
    if benchmark or w <= 0:
        # Every request (a benchmark's means; or too few requests for a window), over the run as a benchmark tool
        # times it: from the first arrival to the last completion.
        span = float(np.nanmax(finish) - np.nanmin(arrival)) if n else 0.0
        return Run(arrival, first, finish, gen, np.arange(n), span, float(gen.sum()), completed=n, **integrals)
    # The steady window runs from the first measured arrival to the last request's: after it the load falls (a
    # closed loop's users leave one by one, an open loop's queue empties), so the requests still running then are
    # faster than the steady state's. Measured: the requests that arrived in the window before the first of those
    # (chosen by arrival time, not by length, so long requests are not under-counted).
    after_warmup = np.arange(n) >= warm
    late = after_warmup & (finish > win.end)
    cutoff = float(arrival[late].min()) if late.any() else np.inf
    measured = np.flatnonzero(after_warmup & (arrival < cutoff))
    if len(measured) == 0:
        measured = np.arange(warm, n)
    completed = int(((finish >= win.start) & (finish <= win.end)).sum())
    return Run(arrival, first, finish, gen, measured, w, win.tokens1 - win.tokens0, completed=completed, **integrals)
