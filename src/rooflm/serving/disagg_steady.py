"""The steady-state model of disaggregated serving (rooflm.serving.disagg): two queues in series, every load at once.

The prefill pool is one M/G/c queue of prefill_engines servers, each prompt served alone (Pools.prefill_alone); the
decode pool holds a request from the KV transfer to its last token, decode-only steps D(b, c̄) with b from Little's
law. Sakasegawa's M/G/c wait in each; a closed loop solves X · cycle(X) = N by bisection, its waits scaled by
(N − 1)/N. The engine's limits and the split may be arrays, one per point: rooflm.serving.plan prices every split ×
engine limit × load of one step model in one call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rooflm.serving.disagg import Pools, Split
from rooflm.serving.result import ServingPoint
from rooflm.serving.steady import iterate, prompt_points
from rooflm.serving.steps import StepModel, grid_cell, grid_cells
from rooflm.serving.traffic import Moments

ITERATIONS = 60


def mgc_wait(rate: np.ndarray, service: np.ndarray | float, cs2: np.ndarray | float,
             servers: np.ndarray | float) -> np.ndarray:
    """Sakasegawa (1977): W_q ≈ S · ρ^(√(2(c+1)) − 1) / (c (1 − ρ)) · (1 + C_s²) / 2, ρ = λS/c (∞ at ρ ≥ 1)."""
    rho = rate * service / servers
    safe = np.clip(rho, 0.0, 1.0 - 1e-12)
    wait = service * safe ** (np.sqrt(2.0 * (servers + 1.0)) - 1.0) / (servers * (1.0 - safe)) * (1.0 + cs2) / 2.0
    return np.where(rho < 1.0, wait, np.inf)


@dataclass(frozen=True)
class _Traffic:
    """What the steady model needs of the lengths, per pool. The fields that depend on the engine's limits are
    arrays, one value per point (the limits may differ from point to point); the others are floats."""

    prefill: np.ndarray  # mean prefill time alone, S̄
    prefill_cs2: np.ndarray
    transfer: float  # mean KV transfer
    prompt: float  # mean prompt tokens
    rows: float  # mean decode steps per request, Ḡ − 1
    gen_var: float
    context: float  # mean decode context
    slots: np.ndarray  # requests one decode engine holds at once
    limit: np.ndarray  # what sets the slots (str)
    kv_capacity: np.ndarray  # tokens one decode engine's KV cache holds
    decode: _DecodeAt  # D(b, c̄)


def _slots(pools: Pools, m: Moments) -> tuple[np.ndarray, np.ndarray]:
    """Requests one decode engine holds at once (their prompt + output reserved), and the limit that sets it; the
    engine's limits may be arrays, one per point (as steady.slots takes them): so are the results."""
    e = pools.steps.engine
    by_kv = np.asarray(e.kv_capacity_tokens, dtype=np.float64) / float(m.prompt.mean() + m.gen.mean())
    kv = by_kv < e.max_running
    cap = np.where(kv, np.maximum(1.0, np.floor(by_kv)), np.asarray(e.max_running, dtype=np.float64))
    return cap, np.where(kv, "kv_cache", "max_running")


def _traffic(pools: Pools, m: Moments, shape: tuple[int, ...]) -> _Traffic:
    """The traffic's figures, those of the engine's limits broadcast to the points' ``shape``."""
    lengths = prompt_points(m)
    s = pools.prefill_alone(lengths)
    mean = s.mean(axis=-1)
    cap, limit = _slots(pools, m)
    kv = np.asarray(pools.steps.engine.kv_capacity_tokens, dtype=np.float64)
    return _Traffic(np.broadcast_to(mean, shape), np.broadcast_to(s.var(axis=-1) / mean**2, shape),
                    float(pools.transfer_time(lengths).mean()), m.mean_prompt, m.mean_gen - 1.0, float(m.gen.var()),
                    m.decode_context, np.broadcast_to(cap, shape), np.broadcast_to(limit, shape),
                    np.broadcast_to(kv, shape), _DecodeAt(pools.steps, m.decode_context))


class _DecodeAt:
    """D(b, c̄) at the one context the model reads: steps.decode_time's bilinear interpolation with the context
    weights applied once (the same arithmetic, so the same values), then linear in b. The model reads D thousands
    of times per call; the 2-D lookup was most of its time."""

    def __init__(self, steps: StepModel, context: float) -> None:
        bg, cg = steps.batch_grid, steps.context_grid
        j, j1, wc = grid_cell(cg, min(max(float(context), cg[0]), cg[-1]))
        self.grid = bg
        self.column = steps.decode[:, j] * (1 - wc) + steps.decode[:, j1] * wc

    def __call__(self, b: np.ndarray) -> np.ndarray:
        i, i1, wb = grid_cells(self.grid, b)
        return self.column[i] * (1 - wb) + self.column[i1] * wb


@dataclass(frozen=True)
class _Engines:
    """Engines of each pool and devices in all, per point (a split may differ from point to point)."""

    prefill: np.ndarray
    decode: np.ndarray
    devices: np.ndarray


def _engines(pools: Pools, splits: Sequence[Split] | None, shape: tuple[int, ...]) -> _Engines:
    if splits is None:
        splits = [pools.split]
    elif len(splits) != shape[0]:
        raise ValueError(f"{len(splits)} splits for {shape[0]} points")
    x = np.array([s.prefill for s in splits], dtype=np.float64)
    y = np.array([s.decode for s in splits], dtype=np.float64)
    dp, devices = pools.steps.dp, pools.steps.devices
    return _Engines(np.broadcast_to(x * dp, shape), np.broadcast_to(y * dp, shape),
                    np.broadcast_to((x + y) * devices, shape))


def _state(e: _Engines, t: _Traffic, x: np.ndarray, closed: np.ndarray, tau: np.ndarray) -> dict[str, np.ndarray]:
    """The pools at total throughput ``x`` requests/s. ``closed``: (N − 1) / N for a closed loop of N users (an
    arrival sees the others: none when alone), 1 for Poisson arrivals. ``tau``: a first guess of the decode step."""
    xd = x / e.decode
    # Decode rows b = X_d (Ḡ − 1) τ (Little), τ = D(b, c̄).
    (tau,) = iterate(lambda tau: (t.decode(np.maximum(np.minimum(xd * t.rows * tau, t.slots), 1.0)),), (tau,),
                     ITERATIONS)
    b = xd * t.rows * tau
    hold = t.rows * tau + t.transfer  # a decode slot is held from admission (transfer) to the last token
    cs2_d = tau**2 * t.gen_var / np.maximum(hold, 1e-300) ** 2
    alone = closed <= 0  # one user never waits (and 0 · ∞ is not 0)
    wait_p = np.where(alone, 0.0, closed * mgc_wait(x, t.prefill, t.prefill_cs2, e.prefill))
    wait_d = np.where(alone, 0.0, closed * mgc_wait(x, hold, cs2_d, e.decode * t.slots))
    busy = 1.0 - np.exp(-xd * hold * closed)  # the decode engine is mid-step when the KV lands (M/G/∞)
    ttft = wait_p + t.prefill + wait_d + t.transfer + busy * tau / 2.0
    return {"x": x, "tau": tau, "b": b, "hold": hold, "wait_p": wait_p, "wait_d": wait_d, "ttft": ttft,
            "busy_p": x * t.prefill / e.prefill}


def steady_points(pools: Pools, m: Moments, load: str, values: np.ndarray,
                  splits: Sequence[Split] | None = None) -> list[ServingPoint]:
    """Every load point at once: Poisson rates or closed loops of users (both totals for the deployment). The
    engine's limits may be arrays, one per point, and ``splits`` one split per point in place of the pools' own:
    rooflm.serving.plan prices every split × limit × load of a step model in one call."""
    t = _traffic(pools, m, values.shape)
    e = _engines(pools, splits, values.shape)
    tau0 = t.decode(np.ones_like(values))
    if load == "request_rate":
        s = _state(e, t, values, np.ones_like(values), tau0)
        stable = np.isfinite(s["ttft"]) & (s["b"] <= t.slots * (1 + 1e-9))
    else:
        s = _closed(e, t, values, tau0)
        stable = np.isfinite(s["ttft"])
    return [_point(pools, e, t, load, float(v), s, i, bool(ok))
            for i, (v, ok) in enumerate(zip(values, stable, strict=True))]


def _closed(e: _Engines, t: _Traffic, users: np.ndarray, tau0: np.ndarray) -> dict[str, np.ndarray]:
    """A closed loop: X · cycle(X) = N (Little, no think time), solved by bisection (the cycle grows with X)."""
    closed = (users - 1.0) / users
    full = t.decode(np.maximum(t.slots, 1.0))
    top = np.minimum(e.prefill / t.prefill, e.decode * t.slots / (t.rows * full + t.transfer)) * (1.0 - 1e-9)

    def halve(lo: np.ndarray, hi: np.ndarray, tau: np.ndarray) -> tuple[np.ndarray, ...]:
        mid = (lo + hi) / 2.0
        s = _state(e, t, mid, closed, tau)
        over = mid * (s["ttft"] + t.rows * s["tau"]) > users
        return np.where(over, lo, mid), np.where(over, mid, hi), s["tau"]

    lo, _, tau = iterate(halve, (np.zeros_like(users), top, tau0), ITERATIONS)
    s = _state(e, t, lo, closed, tau)
    # What the cycle leaves beyond the modelled waits is queueing too (near the knee the waits lag Little's law).
    s["ttft"] = np.maximum(s["ttft"], users / lo - t.rows * s["tau"])
    return s


def _point(pools: Pools, e: _Engines, t: _Traffic, load: str, value: float, s: dict[str, np.ndarray], i: int,
           ok: bool) -> ServingPoint:
    x, tau, b = float(s["x"][i]), float(s["tau"][i]), float(s["b"][i])
    ttft = float(s["ttft"][i])
    tokens = x * (t.rows + 1.0)
    xd = x / float(e.decode[i])
    bound = ("overloaded" if not ok else bound_of(pools, ttft, float(s["wait_p"][i]), float(s["wait_d"][i]),
                                                   str(t.limit[i]), b, t.context))
    kv = (b * t.context + xd * t.transfer * t.prompt) / float(t.kv_capacity[i])
    return ServingPoint(
        load=load, value=value, method="steady", ttft_s=ttft if ok else None, tpot_s=tau if ok and t.rows > 0 else None,
        e2e_latency_s=ttft + t.rows * tau if ok else None, output_tokens_per_s=tokens if ok else None,
        output_tokens_per_s_per_gpu=tokens / float(e.devices[i]) if ok else None,
        output_tokens_per_s_per_user=1.0 / tau if ok and t.rows > 0 else None,
        batch=xd * float(s["hold"][i]) if ok else None, decode_batch=b if ok else None, kv_use=kv if ok else None,
        bound=bound, requests_per_s=x if ok else None, kv_transfer_s=t.transfer,
        prefill_busy=min(float(s["busy_p"][i]), 1.0) if ok else None)


def bound_of(pools: Pools, ttft: float, wait_p: float, wait_d: float, limit: str, rows: float, context: float) -> str:
    """What keeps requests waiting, where a wait is a tenth of TTFT or more; else the decode step's roofline bound."""
    if max(wait_p, wait_d) >= 0.1 * ttft:
        return "prefill_pool" if wait_p >= wait_d else limit
    return pools.steps.bound(max(rows, 1.0), context)
