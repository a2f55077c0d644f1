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
disagg_steady.py, the simulation disagg_sim.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rooflm.errors import InvalidInputError, arg, quoted
from rooflm.serving.steps import StepModel
from rooflm.specs.hardware import HardwareSpec, load_hardware

# Replicas per pool: past a few hundred the simulation's engines (each a Python object stepping) cost seconds.
MAX_REPLICAS = 256
LINKS: tuple[str, ...] = ("inter_node", "intra_node")
DEFAULT_LINK = "inter_node"
_SPLIT = re.compile(r"^\s*(\d{1,6})\s*p\s*[:+]\s*(\d{1,6})\s*d\s*$", re.IGNORECASE)


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
            raise InvalidInputError(f"{arg('disaggregate')} must be xP:yD (prefill and decode replicas, e.g. 2P:6D), got "
                                    f"{quoted(value)}", field="disaggregate")
        x, y = int(match.group(1)), int(match.group(2))
    for n in (x, y):
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_REPLICAS:
            raise InvalidInputError(f"{arg('disaggregate')} needs 1 to {MAX_REPLICAS} replicas of each kind, got "
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
        raise InvalidInputError(f"{arg('kv_link')} must be one of {', '.join(LINKS)}, got {quoted(kind)}", field="kv_link")
    spec = load_hardware(hardware)
    link = getattr(spec.interconnect, picked)
    if link is None:
        raise InvalidInputError(f"{spec.name}'s hardware file gives no {picked} link; use {arg('kv_link')} "
                                f"{'intra_node' if picked == 'inter_node' else 'inter_node'}", field="kv_link")
    if picked == "intra_node" and devices > link.devices_per_domain:
        raise InvalidInputError(f"{arg('kv_link')} intra_node: the {devices} devices of the prefill and decode replicas do "
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
        simulation's order); a chunk costs Plin(q) plus its attention A(p + q) − A(p), which telescopes to A(L).
        With per-point token budgets (an array: rooflm.serving.plan prices many limits on one step model) the
        result has a row per point and a column per prompt length."""
        budget = np.asarray(self.steps.engine.max_tokens_per_step, dtype=np.float64)
        if budget.ndim:
            budget = budget[:, None]
        length = np.asarray(prompt, dtype=np.float64)
        full = np.floor(length / budget)
        rest = length - full * budget
        tail = np.where(rest > 0, self.steps.chunk_linear_time(np.maximum(rest, 1.0)), 0.0)
        return full * self.steps.chunk_linear_time(budget) + tail + self.steps.prompt_attention_time(length)

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
