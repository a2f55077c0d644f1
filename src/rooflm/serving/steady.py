"""The steady-state model of continuous batching: every load point at once, as numpy arrays (for search).

Per replica, with throughput X (requests/s), mean output Ḡ tokens and the step model's times:

- decode rows (Little's law on the decode phase): b = X · (Ḡ − 1) · τ̄, where τ̄ is the mean step a decoding request
  sees; every step gives each of them one token, so TPOT = τ̄;
- a request's prompt of L tokens runs in n_p = ⌈L / (budget − b)⌉ chunks of L / n_p tokens, each a mixed step
  τ_m = step(b, L / n_p, c̄, A(L) / n_p) (steps.py); prefill chunks arrive at X · n̄_p per second, so a share
  φ = X · n̄_p · τ̄ of the steps are mixed: τ̄ = φ · τ̄_m + (1 − φ) · D(max(b, 1), c̄), with c̄ the mean decode context
  (traffic.Moments.decode_context);
- TTFT = the wait for a slot + the wait for the step in progress + n_p · τ_m, averaged over the prompt lengths.

Closed loop of N users per replica: min(N, slots) run, where slots = min(max_running, KV capacity / E[L + G]);
X = running / (TTFT + (Ḡ − 1) · τ̄), solved by fixed-point iteration; users past the slots wait (N − running) / X
(Little). Poisson arrivals at λ per replica: X = λ; τ̄ solves τ̄ = F(τ̄) (F grows with τ̄ through b); no solution
with b within the slots (or every step mixed) is an overloaded point (None latencies). The wait for a slot is
Sakasegawa's M/G/c approximation, c = slots. The step in progress: an arrival finds the engine busy with
probability 1 − e^(−X·W) (M/G/∞) and waits the rest of it: E[τ²] / (2 E[τ]) over the mix of mixed and decode-only
steps (an arrival lands in a long step more often; a closed loop's next request arrives as a step ends: no wait).

Means only; the simulation (simulate.py) gives the tails and checks these means (tests/serving).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from rooflm.serving.result import ServingPoint
from rooflm.serving.steps import StepModel
from rooflm.serving.traffic import Moments

ITERATIONS = 200
# The users a closed loop's engine sees behind a front end: the share settles in a few rounds (each changes the
# engine's latency only through its load).
FRONT_END_ITERATIONS = 30
# A point's fixed point has settled once an iteration moves none of its figures by this share (a few units in the
# last place of a float64): further iterations would change nothing a report prints; most points settle in tens.
SETTLED = 1e-13
# Prompt lengths the model averages prefill over: quantiles of the draws (prefill cost is not linear in L).
PROMPT_QUANTILES = 256


def iterate(update: Callable[..., tuple[np.ndarray, ...]], state: tuple[np.ndarray, ...],
            iterations: int) -> tuple[np.ndarray, ...]:
    """``state = update(*state)`` for every point (arrays over points) until an iteration moves none of its figures
    by more than SETTLED, or ``iterations`` times. Each point stays at the iteration it settled on, so its figures
    are those it gets evaluated alone (rooflm.serving.plan evaluates thousands at once). A NaN or infinite figure
    never settles: such a point runs every iteration, as it did before the stop existed."""
    active: np.ndarray | None = None
    for _ in range(iterations):
        new = update(*state)
        if active is None:  # the figures may broadcast wider than the first guesses
            active = np.ones(np.broadcast(*new, *state).shape, dtype=bool)
        moved = np.zeros_like(active)
        for n, o in zip(new, state, strict=True):
            moved |= ~(np.abs(n - o) <= SETTLED * np.abs(o))
        state = tuple(np.where(active, n, o) for n, o in zip(new, state, strict=True))
        active &= moved
        if not active.any():
            break
    return state


def prompt_points(m: Moments) -> np.ndarray:
    """The prompt lengths prefill is averaged over: the one length, or PROMPT_QUANTILES quantiles of the draws."""
    if np.all(m.prompt == m.prompt[0]):
        return m.prompt[:1]
    return np.quantile(m.prompt, (np.arange(PROMPT_QUANTILES) + 0.5) / PROMPT_QUANTILES)


def _prefill(steps: StepModel, lengths: np.ndarray, b: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per point (rows) and prompt length (columns): chunks n_p, the mixed step τ_m, and the prefill n_p · τ_m."""
    budget = np.maximum(steps.engine.max_tokens_per_step - b, 1.0)[:, None]
    length = lengths[None, :]
    pieces = np.ceil(length / budget)
    chunk = length / pieces
    tau_m = steps.step_time(b[:, None], chunk, c, steps.prompt_attention_time(length) / pieces)
    return pieces, tau_m, pieces * tau_m


def _step(steps: StepModel, m: Moments, lengths: np.ndarray, x: np.ndarray, tau: np.ndarray,
          others: np.ndarray | float = 1.0) -> dict[str, np.ndarray]:
    """One evaluation of the model's equations at throughput ``x`` and mean step ``tau`` (arrays over points).
    ``others``: the share of the prefills a decoding request shares its steps with (a closed loop of n users:
    (n − 1) / n, its own prefill came before its decode; Poisson arrivals: all)."""
    c = m.decode_context
    b = x * (m.mean_gen - 1.0) * tau
    pieces, tau_m, prefill = _prefill(steps, lengths, b * others, c)  # a prompt's own steps carry the others' rows
    n_p = pieces.mean(axis=1)
    # Prompt pieces per step: below one, a share of the steps carry one; past one, every step carries k of them.
    k = x * n_p * tau * others
    k_all = x * n_p * tau
    piece = m.mean_prompt / n_p
    room = np.maximum(steps.engine.max_tokens_per_step - b, 1.0)
    crowded = steps.step_time(b, np.minimum(np.maximum(k_all, 1.0) * piece, room), c,
                              np.maximum(k_all, 1.0) * steps.prompt_attention_time(lengths).mean() / n_p)
    one = (pieces * tau_m).sum(axis=1) / pieces.sum(axis=1)
    tau_mixed = np.where(k_all <= 1.0, one, crowded)
    phi = np.minimum(k, 1.0)
    tau0 = steps.decode_time(np.maximum(b, 1.0), c)
    own = np.where((k_all <= 1.0)[:, None], prefill, pieces * crowded[:, None])
    return {"b": b, "phi": phi, "tau_new": phi * tau_mixed + (1.0 - phi) * tau0, "tau_mixed": tau_mixed,
            "tau0": tau0, "prefill": own.mean(axis=1),
            "prefill_var": own.var(axis=1), "n_p": n_p, "k": k_all, "room": room, "piece": piece}


def slots(steps: StepModel, m: Moments) -> tuple[np.ndarray, np.ndarray]:
    """Requests one replica can run at once, and the limit that sets it. The engine's limits may be arrays, one
    per point (rooflm.serving.plan evaluates many engine limits on one step table): so are the results."""
    by_kv = np.asarray(steps.engine.kv_capacity_tokens, dtype=np.float64) / float(m.prompt.mean() + m.gen.mean())
    kv = by_kv < steps.engine.max_running
    cap = np.where(kv, np.maximum(1.0, np.floor(by_kv)), np.asarray(steps.engine.max_running, dtype=np.float64))
    return cap, np.where(kv, "kv_cache", "max_running")


def closed_loop(steps: StepModel, m: Moments, users: np.ndarray) -> list[ServingPoint]:
    """``users``: concurrency for the whole deployment (split evenly over the data-parallel replicas)."""
    lengths = prompt_points(m)
    cap, limit = slots(steps, m)
    per_replica = users / steps.dp
    running = np.minimum(per_replica, cap)
    c = m.decode_context
    tau = np.asarray(steps.decode_time(np.maximum(running, 1.0), c))  # arrays in, an array out
    x = running / (steps.step_time(np.zeros_like(running), lengths.mean(), c, steps.prompt_attention_time(lengths).mean())
                   + (m.mean_gen - 1.0) * tau)
    others = np.maximum(running - 1.0, 0.0) / np.maximum(running, 1.0)

    def damped(x: np.ndarray, tau: np.ndarray) -> tuple[np.ndarray, ...]:
        s = _step(steps, m, lengths, x, tau, others)
        new_tau = 0.5 * tau + 0.5 * s["tau_new"]
        return 0.5 * x + 0.5 * _closed_rate(m, running, new_tau, s), new_tau

    x, tau = iterate(damped, (x, tau), ITERATIONS)
    s = _step(steps, m, lengths, x, tau, others)
    queue = np.maximum(per_replica - running, 0.0) / x
    # Past the token budget, prompts wait for room in a step: the cycle is running / X (Little), TTFT the rest.
    ttft = queue + np.maximum(s["prefill"], running / x - (m.mean_gen - 1.0) * tau)
    budget_bound = x * m.mean_prompt * tau >= 0.999 * s["room"]
    limits = np.broadcast_to(limit, running.shape)
    bound = [str(lim) if q > 0 else "max_tokens_per_step" if full else steps.bound(float(max(b, 1.0)), c)
             for q, full, b, lim in zip(per_replica - running, budget_bound, s["b"], limits, strict=True)]
    return _points(steps, m, "concurrency", users, x, tau, ttft, s, running, bound)


def _closed_rate(m: Moments, running: np.ndarray, tau: np.ndarray, s: dict[str, np.ndarray]) -> np.ndarray:
    """Requests/s of a closed loop: its users' cycle, or the prompt tokens the budget left by decode admits."""
    return np.minimum(running / (s["prefill"] + (m.mean_gen - 1.0) * tau), s["room"] / (tau * m.mean_prompt))


def poisson(steps: StepModel, m: Moments, rates: np.ndarray) -> list[ServingPoint]:
    """``rates``: requests/s for the whole deployment (split evenly over the data-parallel replicas)."""
    lengths = prompt_points(m)
    cap, _ = slots(steps, m)
    x = rates / steps.dp
    c = m.decode_context
    tau = np.asarray(steps.decode_time(np.ones_like(x), c))
    (tau,) = iterate(lambda tau: (np.minimum(_step(steps, m, lengths, x, tau)["tau_new"], 1e6),), (tau,), ITERATIONS)
    s = _step(steps, m, lengths, x, tau)
    service = s["prefill"] + (m.mean_gen - 1.0) * tau
    rho = x * service / cap
    converged = np.abs(s["tau_new"] - tau) <= 1e-3 * tau
    stable = converged & (s["b"] <= cap) & (x * m.mean_prompt * tau < s["room"]) & (rho < 1.0)
    # Sakasegawa (1977): W_q ≈ S · ρ^(√(2(c+1)) − 1) / (c (1 − ρ)) · (1 + C_s²) / 2, with C_s² of the service time.
    cs2 = (s["prefill_var"] + tau**2 * float(m.gen.var())) / np.maximum(service, 1e-300) ** 2
    safe = np.where(stable, rho, 0.5)
    wait_slot = service * safe ** (np.sqrt(2.0 * (cap + 1.0)) - 1.0) / (cap * (1.0 - safe)) * (1.0 + cs2) / 2.0
    busy = 1.0 - np.exp(-x * service)
    ttft = np.where(stable, wait_slot + busy * residual_step(s, tau) + s["prefill"], np.nan)
    running = x * service
    bound = [steps.bound(float(max(b, 1.0)), c) if ok else "overloaded" for ok, b in zip(stable, s["b"], strict=True)]
    return _points(steps, m, "request_rate", rates, np.where(stable, x, np.nan), np.where(stable, tau, np.nan), ttft,
                   s, running, bound)


def residual_step(s: dict[str, np.ndarray], tau: np.ndarray) -> np.ndarray:
    """The mean rest of the step in progress that an arrival at a random time waits for: E[τ²] / (2 E[τ]) over the
    steps' mix (a share φ of mixed steps τ_m, the rest decode steps τ_0). Long steps cover more of the time, so an
    arrival lands in a mixed step more often than φ: the renewal-theory residual, not half the mean step."""
    second = s["phi"] * s["tau_mixed"] ** 2 + (1.0 - s["phi"]) * s["tau0"] ** 2
    return second / (2.0 * np.maximum(tau, 1e-300))


def _points(steps: StepModel, m: Moments, load: str, values: np.ndarray, x: np.ndarray, tau: np.ndarray,
            ttft: np.ndarray, s: dict[str, np.ndarray], running: np.ndarray, bound: list[str]) -> list[ServingPoint]:
    e2e = ttft + (m.mean_gen - 1.0) * tau
    tokens = x * m.mean_gen * steps.dp
    prefilling = x * s["prefill"]
    kv = (s["b"] * m.decode_context + prefilling * m.mean_prompt / 2.0) / steps.engine.kv_capacity_tokens
    out = []
    for i, v in enumerate(values):
        ok = bool(np.isfinite(x[i]))
        tpot = float(tau[i]) if ok and m.mean_gen > 1 else None
        out.append(ServingPoint(
            load=load, value=float(v), method="steady", ttft_s=_f(ttft[i]), tpot_s=tpot, e2e_latency_s=_f(e2e[i]),
            output_tokens_per_s=_f(tokens[i]), output_tokens_per_s_per_gpu=_f(tokens[i] / steps.devices),
            output_tokens_per_s_per_user=None if tpot is None else 1.0 / tpot, batch=_f(running[i]) if ok else None,
            decode_batch=_f(s["b"][i]) if ok else None, kv_use=_f(kv[i]) if ok else None, bound=bound[i],
            requests_per_s=_f(x[i] * steps.dp),
            ttft_parts={"queue_s": _f(ttft[i] - s["prefill"][i]), "prefill_s": _f(s["prefill"][i]), "front_end_s": 0.0}
            if ok and np.isfinite(ttft[i]) else {}))
    return out


def with_front_end(points: list[ServingPoint], m: Moments, request_s: float, token_s: float) -> list[ServingPoint]:
    """Points as a client sees them through the server's front end: ``request_s`` before each request reaches the
    engine (TTFT and end-to-end latency grow by it) and ``token_s`` per output token after the first (TPOT grows by
    it). The engine's figures stay those of the load it sees (``closed_loop_front_end`` for a closed loop's)."""
    if not request_s and not token_s:
        return points
    out = []
    for p in points:
        parts = dict(p.ttft_parts)
        if parts:
            parts["front_end_s"] = request_s
        tpot = None if p.tpot_s is None else p.tpot_s + token_s
        out.append(replace(p, ttft_s=_add(p.ttft_s, request_s), tpot_s=tpot,
                           e2e_latency_s=_add(p.e2e_latency_s, request_s + (m.mean_gen - 1.0) * token_s),
                           output_tokens_per_s_per_user=None if not tpot else 1.0 / tpot, ttft_parts=parts))
    return out


def closed_loop_front_end(steps: StepModel, m: Moments, users: np.ndarray, request_s: float,
                          token_s: float) -> list[ServingPoint]:
    """A closed loop whose users spend ``request_s`` + (Ḡ − 1) · ``token_s`` of each cycle in the front end: the
    engine sees N · E / (E + gap) of them (Little's law over the cycle, E the engine's end-to-end time), found by
    fixed-point iteration; the points are reported at N users, as the client sees them."""
    gap = request_s + (m.mean_gen - 1.0) * token_s
    users = np.asarray(users, dtype=np.float64)
    seen = users
    for _ in range(FRONT_END_ITERATIONS if gap > 0 else 1):
        points = closed_loop(steps, m, seen)
        e2e = np.array([np.nan if p.e2e_latency_s is None else p.e2e_latency_s for p in points])
        seen = np.where(np.isfinite(e2e), users * e2e / (e2e + gap), users)
    return with_front_end([replace(p, value=float(v)) for p, v in zip(points, users, strict=True)], m, request_s,
                          token_s)


def _add(v: float | None, dv: float) -> float | None:
    return None if v is None else v + dv


def _f(v: float | np.floating) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None
