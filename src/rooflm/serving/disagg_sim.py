"""A discrete-event simulation of disaggregated serving: requests flow prefill pool → KV transfer → decode pool.

Every engine of both pools is simulated (the pools interact: a closed loop's next request leaves the decode pool
for the prefill pool). Events, in time order: an arrival, the end of a prefill step, a KV cache landing on a decode
replica, the end of a decode run. Prefill engines run prefill-only steps: chunks of their queue's prompts, first
come first served, up to the token budget. Decode engines admit a prefilled request when its prompt + output fit
their KV cache and ``max_running`` allows (the transfer starts then, into the blocks just reserved, and overlaps
the steps running); it joins the batch at the first step boundary after its KV has landed: its first token is
delivered then (TTFT), and each later step gives it one more. Runs of decode-only steps until the next completion
are priced in one vectorised read of the grid, and cut short at the boundary after a KV cache lands.

Measured as simulate.py: the requests after the first 10% (and after each user's first, in a closed loop), over
the window from the first measured arrival to the last arrival.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from rooflm.errors import DoesNotFitError, arg
from rooflm.serving.disagg import Pools
from rooflm.serving.simulate import WARMUP

_ARRIVE, _PREFILL, _LAND, _DECODE = 0, 1, 2, 3


@dataclass(frozen=True)
class DisaggRun:
    """Per request its times (seconds); per engine step the decode rows and prefill busy time, for the window."""

    arrival: np.ndarray
    prefilled: np.ndarray  # its prefill's last chunk ended (first token out of the prefill replica)
    admitted: np.ndarray  # a decode replica reserved its blocks and the transfer began
    first_token: np.ndarray
    finish: np.ndarray
    prompt: np.ndarray
    gen: np.ndarray
    measured: np.ndarray
    window: tuple[float, float]
    step_ends: np.ndarray  # decode steps: when each ended, and its rows
    step_rows: np.ndarray
    step_len: np.ndarray
    prefill_steps: np.ndarray  # (start, end) of every prefill step
    kv_blocked: int  # decode admissions held back by the KV cache (the rest by max_running)
    run_blocked: int


@dataclass
class _Prefill:
    queue: deque[int] = field(default_factory=deque)
    pending: int = 0  # prompt tokens queued (for routing)
    busy: bool = False


@dataclass
class _Decode:
    waiting: deque[int] = field(default_factory=deque)
    landed: list[int] = field(default_factory=list)
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    done: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # tokens out so far
    held: int = 0  # requests admitted (transferring or decoding)
    reserved: int = 0
    start: float = 0.0
    cum: np.ndarray | None = None  # the run in progress: its steps' ends from ``start``
    version: int = 0


class _Sim:
    def __init__(self, pools: Pools, prompt: np.ndarray, gen: np.ndarray, concurrency: int | None,
                 arrivals: np.ndarray | None) -> None:
        self.pools, self.steps, self.e = pools, pools.steps, pools.steps.engine
        self.prompt, self.gen, self.n = prompt, gen, len(prompt)
        self.footprint = prompt + gen
        self.transfer = pools.transfer_time(prompt)
        self.att = self.steps.prompt_attention_time(np.arange(0, int(prompt.max()) + 1))
        self.times = {k: np.full(self.n, np.nan) for k in ("arrival", "prefilled", "admitted", "first", "finish")}
        self.progress = np.zeros(self.n, dtype=np.int64)
        self.prefills = [_Prefill() for _ in range(pools.prefill_engines)]
        self.decodes = [_Decode() for _ in range(pools.decode_engines)]
        self.heap: list[tuple[float, int, int, int, int]] = []
        self.seq = 0
        self.closed = concurrency is not None
        self.sent = 0
        self.arrivals = arrivals
        self.ends: list[np.ndarray] = []
        self.rows: list[np.ndarray] = []
        self.lens: list[np.ndarray] = []
        self.prefill_log: list[tuple[float, float]] = []
        self.kv_blocked = self.run_blocked = 0
        self.rows_at: dict[int, np.ndarray] = {}

    def decode_times(self, b: int, contexts: np.ndarray) -> np.ndarray:
        """D(b, c) along c: the grid's row at b read once per batch size (bilinear = linear in b, then in c)."""
        row = self.rows_at.get(b)
        if row is None:
            row = self.rows_at[b] = np.asarray(self.steps.decode_time(float(b), self.steps.context_grid))
        return np.interp(contexts, self.steps.context_grid, row)

    def push(self, t: float, kind: int, engine: int, item: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, engine, item))

    # Prefill pool
    def arrive(self, i: int, now: float) -> None:
        self.times["arrival"][i] = now
        j = min(range(len(self.prefills)), key=lambda k: self.prefills[k].pending)
        p = self.prefills[j]
        p.queue.append(i)
        p.pending += int(self.prompt[i])
        if not p.busy:
            self.prefill_step(j, now)

    def prefill_step(self, j: int, now: float) -> None:
        p = self.prefills[j]
        budget = self.e.max_tokens_per_step
        t, att = 0, 0.0
        for i in p.queue:
            q = min(int(self.prompt[i] - self.progress[i]), budget - t)
            att += float(self.att[self.progress[i] + q] - self.att[self.progress[i]])
            t += q
            if t == budget:
                break
        dt = float(self.steps.chunk_linear_time(float(t))) + att  # step_time with no decode rows
        p.busy = True
        self.prefill_log.append((now, now + dt))
        self.push(now + dt, _PREFILL, j, t)

    def prefill_end(self, j: int, now: float, tokens: int) -> None:
        p = self.prefills[j]
        p.pending -= tokens
        while tokens > 0:
            i = p.queue[0]
            q = min(int(self.prompt[i] - self.progress[i]), tokens)
            self.progress[i] += q
            tokens -= q
            if self.progress[i] < self.prompt[i]:
                break
            p.queue.popleft()
            self.times["prefilled"][i] = now
            k = min(range(len(self.decodes)), key=lambda d: self.decodes[d].held + len(self.decodes[d].waiting))
            self.decodes[k].waiting.append(i)
            self.admit(k, now)
        p.busy = False
        if p.queue:
            self.prefill_step(j, now)

    # Decode pool
    def admit(self, k: int, now: float) -> None:
        d = self.decodes[k]
        while d.waiting:
            i = d.waiting[0]
            if d.held >= self.e.max_running or d.reserved + int(self.footprint[i]) > self.e.kv_capacity_tokens:
                if d.held >= self.e.max_running:
                    self.run_blocked += 1
                else:
                    self.kv_blocked += 1
                return
            d.waiting.popleft()
            d.held += 1
            d.reserved += int(self.footprint[i])
            self.times["admitted"][i] = now
            self.push(now + float(self.transfer[i]), _LAND, k, i)

    def land(self, k: int, i: int, now: float) -> None:
        d = self.decodes[k]
        d.landed.append(i)
        if d.cum is None:
            self.join_and_run(k, now)
            return
        # Cut the run in progress at the first step boundary at or after now: the request joins there.
        steps = int(np.searchsorted(d.cum, now - d.start, side="left")) + 1
        if steps < len(d.cum):
            d.cum = d.cum[:steps]
            d.version += 1
            self.push(d.start + float(d.cum[-1]), _DECODE, k, d.version)

    def join_and_run(self, k: int, now: float) -> None:
        d = self.decodes[k]
        if d.landed:
            new = np.asarray(d.landed, dtype=np.int64)
            self.times["first"][new] = now  # the prefill replica's token, delivered as the request joins
            d.ids, d.done = np.concatenate([d.ids, new]), np.concatenate([d.done, np.ones(len(new), dtype=np.int64)])
            d.landed = []
            self.complete(k, now)  # one-token outputs end here
        if len(d.ids) == 0:
            d.cum = None
            return
        left = int((self.gen[d.ids] - d.done).min())
        ctx = float((self.prompt[d.ids] + d.done).mean())
        dts = self.decode_times(len(d.ids), ctx + np.arange(left, dtype=np.float64))
        d.start, d.cum = now, np.cumsum(dts)
        d.version += 1
        self.push(now + float(d.cum[-1]), _DECODE, k, d.version)

    def decode_end(self, k: int, now: float) -> None:
        d = self.decodes[k]
        assert d.cum is not None
        steps = len(d.cum)
        self.ends.append(d.start + d.cum)
        self.lens.append(np.diff(d.cum, prepend=0.0))
        self.rows.append(np.full(steps, float(len(d.ids))))
        d.done = d.done + steps
        d.cum = None
        self.complete(k, now)
        self.join_and_run(k, now)

    def complete(self, k: int, now: float) -> None:
        d = self.decodes[k]
        over = d.done >= self.gen[d.ids]
        if not over.any():
            return
        ids = d.ids[over]
        self.times["finish"][ids] = now
        d.held -= len(ids)
        d.reserved -= int(self.footprint[ids].sum())
        d.ids, d.done = d.ids[~over], d.done[~over]
        self.admit(k, now)
        if self.closed:
            for _ in ids:
                if self.sent < self.n:
                    self.arrive(self.sent, now)
                    self.sent += 1

    def run(self, concurrency: int | None) -> None:
        if concurrency is not None:
            for i in range(min(concurrency, self.n)):
                self.arrive(i, 0.0)
            self.sent = min(concurrency, self.n)
        else:
            assert self.arrivals is not None
            self.push(float(self.arrivals[0]), _ARRIVE, 0, 0)
        while self.heap:
            now, _, kind, engine, item = heapq.heappop(self.heap)
            if kind == _ARRIVE:
                self.arrive(item, now)
                if item + 1 < self.n:
                    assert self.arrivals is not None
                    self.push(float(self.arrivals[item + 1]), _ARRIVE, 0, item + 1)
            elif kind == _PREFILL:
                self.prefill_end(engine, now, item)
            elif kind == _LAND:
                self.land(engine, item, now)
            elif item == self.decodes[engine].version:  # a run's end not superseded by a cut
                self.decode_end(engine, now)


def simulate(pools: Pools, prompt: np.ndarray, gen: np.ndarray, *, concurrency: int | None = None,
             arrivals: np.ndarray | None = None) -> DisaggRun:
    """Serve requests i = 0 … n−1 on the whole deployment: a closed loop of ``concurrency`` users, or ``arrivals``."""
    e = pools.steps.engine
    if int((prompt + gen).max()) > e.kv_capacity_tokens:
        raise DoesNotFitError(f"a request of {int((prompt + gen).max()):,} tokens (prompt + output) does not fit in "
                              f"a decode replica's KV cache of {e.kv_capacity_tokens:,} tokens: shorter requests, "
                              f"more GPUs ({arg('tp')}) or {arg('kv_dtype')} fp8", field="prompt_len")
    sim = _Sim(pools, prompt, gen, concurrency, arrivals)
    sim.run(concurrency)
    n = len(prompt)
    warm = max(int(n * WARMUP), concurrency or 0)
    t = sim.times
    window = (float(t["arrival"][warm]), float(t["arrival"][n - 1]))
    cat = (lambda xs: np.concatenate(xs) if xs else np.zeros(0))  # noqa: E731
    return DisaggRun(t["arrival"], t["prefilled"], t["admitted"], t["first"], t["finish"], prompt, gen,
                     np.arange(warm, n), window, cat(sim.ends), cat(sim.rows), cat(sim.lens),
                     np.asarray(sim.prefill_log, dtype=np.float64).reshape(-1, 2), sim.kv_blocked, sim.run_blocked)
