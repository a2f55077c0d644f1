"""Disaggregated prefill/decode serving: x prefill replicas and y decode replicas of the deployment's layout.

A request is prefilled on a prefill replica (prefill-only steps: chunks of up to ``max_tokens_per_step`` prompt
tokens, no decode rows), which emits its first token; its KV cache then crosses the link to a decode replica,
which runs decode-only steps (its own ``max_running`` and KV capacity). Decode steps never carry a prefill chunk,
so TPOT has no prefill interference: the point of disaggregation (DistServe, Splitwise; vLLM, SGLang and Dynamo
serve this way, moving the KV cache by RDMA between nodes, NIXL or Mooncake).

    TTFT = wait for a prefill replica + prefill (its chunks) + wait for a decode slot + KV transfer
           + the rest of the decode step in progress when the KV lands
    KV transfer = link latency + prompt tokens × KV bytes per token per device / link bandwidth

each device sending its own share of the cache over its own link (the two replicas have the same layout). The link
is the hardware file's inter-node one by default; ``kv_link="intra_node"`` takes the NVLink-class figure when all
(x + y) replicas fit in one such domain. Replicas count whole layouts: a layout with ``dp`` data-parallel groups
gives x · dp prefill engines and y · dp decode engines, and per-GPU throughput divides by (x + y) · its devices.

steady.py's conventions hold here; the steady-state model of the two pools (two queues in series) is
``steady_points``, the simulation is disagg_sim.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rooflm.errors import InvalidInputError, quoted
from rooflm.serving.result import ServingPoint
from rooflm.serving.steady import PROMPT_QUANTILES
from rooflm.serving.steps import StepModel
from rooflm.serving.traffic import Moments
from rooflm.specs.hardware import HardwareSpec, load_hardware

# Replicas per pool: past a few hundred the simulation's engines (each a Python object stepping) cost seconds.
MAX_REPLICAS = 256
LINKS: tuple[str, ...] = ("inter_node", "intra_node")
DEFAULT_LINK = "inter_node"
_SPLIT = re.compile(r"^\s*(\d{1,6})\s*p\s*[:+]\s*(\d{1,6})\s*d\s*$", re.IGNORECASE)
ITERATIONS = 60


@dataclass(frozen=True)
class Split:
    """x prefill replicas and y decode replicas ("2P:6D")."""

    prefill: int
    decode: int

    @property
    def label(self) -> str:
        return f"{self.prefill}P:{self.decode}D"


def parse_split(value: object) -> Split | None:
    """``"2P:6D"`` (any case; ``2p+6d`` too) or a Split; None is aggregated serving."""
    if value is None:
        return None
    if isinstance(value, Split):
        x, y = value.prefill, value.decode
    else:
        match = _SPLIT.match(value) if isinstance(value, str) and len(value) <= 40 else None
        if match is None:
            raise InvalidInputError(f"--disaggregate must be xP:yD (prefill and decode replicas, e.g. 2P:6D), got "
                                    f"{quoted(value)}", field="disaggregate")
        x, y = int(match.group(1)), int(match.group(2))
    for n in (x, y):
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_REPLICAS:
            raise InvalidInputError(f"--disaggregate needs 1 to {MAX_REPLICAS} replicas of each kind, got "
                                    f"{quoted(value if not isinstance(value, Split) else value.label)}",
                                    field="disaggregate")
    return Split(x, y)


@dataclass(frozen=True)
class KvLink:
    """The link a request's KV cache crosses: per device, per direction (the hardware file's figures)."""

    kind: str  # "inter_node" | "intra_node"
    name: str
    bandwidth: float  # bytes/s
    latency: float  # s


def pick_link(hardware: str | Path | HardwareSpec, kind: object, devices: int) -> KvLink:
    """The hardware file's link of ``kind``; the intra-node one only when ``devices`` fit in its domain."""
    picked = kind.strip().lower().replace("-", "_") if isinstance(kind, str) else None
    if picked not in LINKS:
        raise InvalidInputError(f"--kv-link must be one of {', '.join(LINKS)}, got {quoted(kind)}", field="kv_link")
    spec = load_hardware(hardware)
    link = getattr(spec.interconnect, picked)
    if link is None:
        raise InvalidInputError(f"{spec.name}'s hardware file gives no {picked} link; use --kv-link "
                                f"{'intra_node' if picked == 'inter_node' else 'inter_node'}", field="kv_link")
    if picked == "intra_node" and devices > link.devices_per_domain:
        raise InvalidInputError(f"--kv-link intra_node: the {devices} devices of the prefill and decode replicas do "
                                f"not fit in one {link.name} domain of {link.devices_per_domain}; use inter_node",
                                field="kv_link")
    return KvLink(picked, link.name, float(link.bandwidth.value), float(link.latency.value))


@dataclass(frozen=True)
class Pools:
    """The two pools: their engines (replicas × the layout's data-parallel groups), the step model, the link."""

    steps: StepModel
    split: Split
    link: KvLink

    @property
    def prefill_engines(self) -> int:
        return self.split.prefill * self.steps.dp

    @property
    def decode_engines(self) -> int:
        return self.split.decode * self.steps.dp

    @property
    def devices(self) -> int:
        return (self.split.prefill + self.split.decode) * self.steps.devices

    def transfer_time(self, prompt: np.ndarray | float) -> np.ndarray:
        """Seconds to send a prompt's KV cache: each device its own share, over its own link."""
        return self.link.latency + np.asarray(prompt, dtype=np.float64) * self.steps.kv_bytes_per_token / self.link.bandwidth

    def prefill_alone(self, prompt: np.ndarray | float) -> np.ndarray:
        """A prompt's prefill on an idle prefill replica: full chunks of the token budget, then the rest (the
        simulation's order); a chunk costs Plin(q) plus its attention A(p + q) − A(p), which telescopes to A(L)."""
        budget = self.steps.engine.max_tokens_per_step
        length = np.asarray(prompt, dtype=np.float64)
        full = np.floor(length / budget)
        rest = length - full * budget
        tail = np.where(rest > 0, self.steps.chunk_linear_time(np.maximum(rest, 1.0)), 0.0)
        return full * self.steps.chunk_linear_time(float(budget)) + tail + self.steps.prompt_attention_time(length)

    def describe(self) -> dict[str, object]:
        """ServingResult.disaggregate (docs/DESIGN.md)."""
        return {"split": self.split.label, "prefill_replicas": self.split.prefill, "decode_replicas": self.split.decode,
                "devices_per_replica": self.steps.devices, "kv_link": self.link.kind, "kv_link_name": self.link.name,
                "kv_link_bandwidth": self.link.bandwidth, "kv_bytes_per_token": self.steps.kv_bytes_per_token}

    def notes(self, method: str) -> list[str]:
        s, link = self.split, self.link
        notes = [f"disaggregated {s.label}: {s.prefill} prefill + {s.decode} decode replicas of {self.steps.devices} "
                 f"device{'s' if self.steps.devices > 1 else ''} each, {self.devices} in all (per-GPU throughput divides "
                 f"by {self.devices}); prefill replicas run prefill-only steps and emit the first token, decode "
                 "replicas decode-only steps",
                 f"KV cache sent over the {link.kind.replace('_', '-')} link, {link.name}: "
                 f"{link.bandwidth / 1e9:,.0f} GB/s per device per direction + {link.latency * 1e6:g} µs (the hardware "
                 f"file), {self.steps.kv_bytes_per_token:,.0f} bytes per prompt token per device; engines (vLLM, "
                 "SGLang, Dynamo) move it by RDMA between nodes",
                 "routing: a request goes to the prefill replica with the fewest queued prompt tokens, then to the "
                 "decode replica with the fewest requests; a prefill replica frees a prompt's KV when it ends (no "
                 "back-pressure from a full decode pool)"]
        if method == "steady":
            notes.append("steady-state model: two queues in series (each pool an M/G/c queue, Sakasegawa's wait)")
        return notes


def _prompt_points(m: Moments) -> np.ndarray:
    if np.all(m.prompt == m.prompt[0]):
        return m.prompt[:1]
    return np.quantile(m.prompt, (np.arange(PROMPT_QUANTILES) + 0.5) / PROMPT_QUANTILES)


def mgc_wait(rate: np.ndarray, service: np.ndarray | float, cs2: np.ndarray | float, servers: float) -> np.ndarray:
    """Sakasegawa (1977): W_q ≈ S · ρ^(√(2(c+1)) − 1) / (c (1 − ρ)) · (1 + C_s²) / 2, ρ = λS/c (∞ at ρ ≥ 1)."""
    rho = rate * service / servers
    safe = np.clip(rho, 0.0, 1.0 - 1e-12)
    wait = service * safe ** (np.sqrt(2.0 * (servers + 1.0)) - 1.0) / (servers * (1.0 - safe)) * (1.0 + cs2) / 2.0
    return np.where(rho < 1.0, wait, np.inf)


@dataclass(frozen=True)
class _Traffic:
    """What the steady model needs of the lengths, per pool."""

    prefill: float  # mean prefill time alone, S̄
    prefill_cs2: float
    transfer: float  # mean KV transfer
    prompt: float  # mean prompt tokens
    rows: float  # mean decode steps per request, Ḡ − 1
    gen_var: float
    context: float  # mean decode context
    slots: float  # requests one decode engine holds at once
    limit: str  # what sets the slots


def _slots(pools: Pools, m: Moments) -> tuple[float, str]:
    """Requests one decode engine holds at once (their prompt + output reserved), and the limit that sets it."""
    e = pools.steps.engine
    by_kv = float(e.kv_capacity_tokens) / float(m.prompt.mean() + m.gen.mean())
    return (max(1.0, float(np.floor(by_kv))), "kv_cache") if by_kv < e.max_running else (float(e.max_running),
                                                                                          "max_running")


def _traffic(pools: Pools, m: Moments) -> _Traffic:
    lengths = _prompt_points(m)
    s = pools.prefill_alone(lengths)
    cap, limit = _slots(pools, m)
    return _Traffic(float(s.mean()), float(s.var() / s.mean() ** 2), float(pools.transfer_time(lengths).mean()),
                    m.mean_prompt, m.mean_gen - 1.0, float(m.gen.var()), m.decode_context, cap, limit)


def _state(pools: Pools, t: _Traffic, x: np.ndarray, closed: np.ndarray, tau: np.ndarray) -> dict[str, np.ndarray]:
    """The pools at total throughput ``x`` requests/s. ``closed``: (N − 1) / N for a closed loop of N users (an
    arrival sees the others: none when alone), 1 for Poisson arrivals. ``tau``: a first guess of the decode step."""
    xd = x / pools.decode_engines
    for _ in range(ITERATIONS):  # decode rows b = X_d (Ḡ − 1) τ (Little), τ = D(b, c̄)
        b = np.minimum(xd * t.rows * tau, t.slots)
        tau = pools.steps.decode_time(np.maximum(b, 1.0), t.context)
    b = xd * t.rows * tau
    hold = t.rows * tau + t.transfer  # a decode slot is held from admission (transfer) to the last token
    cs2_d = tau**2 * t.gen_var / np.maximum(hold, 1e-300) ** 2
    alone = closed <= 0  # one user never waits (and 0 · ∞ is not 0)
    wait_p = np.where(alone, 0.0, closed * mgc_wait(x, t.prefill, t.prefill_cs2, pools.prefill_engines))
    wait_d = np.where(alone, 0.0, closed * mgc_wait(x, hold, cs2_d, pools.decode_engines * t.slots))
    busy = 1.0 - np.exp(-xd * hold * closed)  # the decode engine is mid-step when the KV lands (M/G/∞)
    ttft = wait_p + t.prefill + wait_d + t.transfer + busy * tau / 2.0
    return {"x": x, "tau": tau, "b": b, "hold": hold, "wait_p": wait_p, "wait_d": wait_d, "ttft": ttft,
            "busy_p": x * t.prefill / pools.prefill_engines}


def steady_points(pools: Pools, m: Moments, load: str, values: np.ndarray) -> list[ServingPoint]:
    """Every load point at once: Poisson rates or closed loops of users (both totals for the deployment)."""
    t = _traffic(pools, m)
    tau0 = pools.steps.decode_time(np.ones_like(values), t.context)
    if load == "request_rate":
        s = _state(pools, t, values, np.ones_like(values), tau0)
        stable = np.isfinite(s["ttft"]) & (s["b"] <= t.slots * (1 + 1e-9))
    else:
        s = _closed(pools, t, values, tau0)
        stable = np.isfinite(s["ttft"])
    return [_point(pools, t, load, float(v), s, i, bool(ok)) for i, (v, ok) in enumerate(zip(values, stable, strict=True))]


def _closed(pools: Pools, t: _Traffic, users: np.ndarray, tau0: np.ndarray) -> dict[str, np.ndarray]:
    """A closed loop: X · cycle(X) = N (Little, no think time), solved by bisection (the cycle grows with X)."""
    closed = (users - 1.0) / users
    full = pools.steps.decode_time(np.full_like(users, max(t.slots, 1.0)), t.context)
    top = np.minimum(pools.prefill_engines / t.prefill,
                     pools.decode_engines * t.slots / (t.rows * full + t.transfer)) * (1.0 - 1e-9)
    lo, hi = np.zeros_like(users), top
    tau = tau0
    for _ in range(ITERATIONS):
        mid = (lo + hi) / 2.0
        s = _state(pools, t, mid, closed, tau)
        tau = s["tau"]
        over = mid * (s["ttft"] + t.rows * s["tau"]) > users
        lo, hi = np.where(over, lo, mid), np.where(over, mid, hi)
    s = _state(pools, t, lo, closed, tau)
    # What the cycle leaves beyond the modelled waits is queueing too (near the knee the waits lag Little's law).
    s["ttft"] = np.maximum(s["ttft"], users / lo - t.rows * s["tau"])
    return s


def _point(pools: Pools, t: _Traffic, load: str, value: float, s: dict[str, np.ndarray], i: int,
           ok: bool) -> ServingPoint:
    x, tau, b = float(s["x"][i]), float(s["tau"][i]), float(s["b"][i])
    ttft = float(s["ttft"][i])
    tokens = x * (t.rows + 1.0)
    xd = x / pools.decode_engines
    bound = ("overloaded" if not ok else bound_of(pools, ttft, float(s["wait_p"][i]), float(s["wait_d"][i]),
                                                   t.limit, b, t.context))
    kv = (b * t.context + xd * t.transfer * t.prompt) / pools.steps.engine.kv_capacity_tokens
    return ServingPoint(
        load=load, value=value, method="steady", ttft_s=ttft if ok else None, tpot_s=tau if ok and t.rows > 0 else None,
        e2e_latency_s=ttft + t.rows * tau if ok else None, output_tokens_per_s=tokens if ok else None,
        output_tokens_per_s_per_gpu=tokens / pools.devices if ok else None,
        output_tokens_per_s_per_user=1.0 / tau if ok and t.rows > 0 else None,
        batch=xd * float(s["hold"][i]) if ok else None, decode_batch=b if ok else None, kv_use=kv if ok else None,
        bound=bound, requests_per_s=x if ok else None, kv_transfer_s=t.transfer,
        prefill_busy=min(float(s["busy_p"][i]), 1.0) if ok else None)


def bound_of(pools: Pools, ttft: float, wait_p: float, wait_d: float, limit: str, rows: float, context: float) -> str:
    """What keeps requests waiting, where a wait is a tenth of TTFT or more; else the decode step's roofline bound."""
    if max(wait_p, wait_d) >= 0.1 * ttft:
        return "prefill_pool" if wait_p >= wait_d else limit
    return pools.steps.bound(max(rows, 1.0), context)
