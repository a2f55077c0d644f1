"""Collective communication: the bytes each device sends, the latency-bound steps, and the time on a link.

Formulas per device for a message of S bytes over n devices: ring all-reduce sends 2·S·(n−1)/n in 2·(n−1) steps;
a (double binary) tree sends the same bytes in 2·⌈log₂ n⌉ steps; all-gather and all-to-all send S·(n−1)/n in
n−1 steps; point-to-point sends S in one.

Time (``collective_time``):
- ``ideal`` mode: the bandwidth bound, bytes / link bandwidth, plus the link's per-step latency only for an
  explicit ``ring`` or ``tree`` (the user asked for that algorithm's steps); ``auto`` is the bound alone.
- ``calibrated`` mode, ``ring``/``tree``: the same formula (steps × link latency + bytes / bandwidth).
- ``calibrated`` mode, ``auto`` (the default): what engines do. An all-reduce on a link with measured algorithms
  (one-shot custom kernels, NVLS multicast, NCCL: data/hardware ``[[interconnect.intra_node.all_reduce]]``) takes
  the fastest one that applies to its message and group, T = latency + 2·S·(n−1)/n / (η · bandwidth) with η ≤ 1,
  as vLLM, SGLang and TensorRT-LLM pick a custom all-reduce, symmetric-memory/NVLS or NCCL by size. Elsewhere NCCL
  picks the faster of ring and tree. Other collectives take the ring formula.
Every calibrated time is at least the ideal one: η ≤ 1 and the latencies are ≥ 0.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from rooflm.ops.cost import Cost, Num
from rooflm.specs.hardware import Link

Algorithm = Literal["auto", "ring", "tree"]
ALGORITHMS: tuple[Algorithm, ...] = ("auto", "ring", "tree")
Collective = Literal["all_reduce", "all_gather", "all_to_all", "point_to_point"]


def ring_steps(n: int) -> int:
    return 2 * (n - 1)


def tree_steps(n: int) -> int:
    return 2 * math.ceil(math.log2(n))


def all_reduce(message_bytes: Num, n: int, algorithm: str = "auto") -> Cost:
    if n <= 1:
        return Cost()
    steps = tree_steps(n) if algorithm == "tree" else ring_steps(n)
    return Cost(comm_bytes=2.0 * message_bytes * (n - 1) / n, comm_steps=steps, collective="all_reduce",
                message_bytes=message_bytes, algorithm=algorithm)


def all_gather(message_bytes: Num, n: int) -> Cost:
    """Every device ends with all n shards; ``message_bytes`` is the gathered total."""
    if n <= 1:
        return Cost()
    return Cost(comm_bytes=message_bytes * (n - 1) / n, comm_steps=n - 1, collective="all_gather",
                message_bytes=message_bytes)


def all_to_all(send_bytes: Num, n: int) -> Cost:
    """Each device sends ``send_bytes`` spread over the group; the share for itself stays local."""
    if n <= 1:
        return Cost()
    return Cost(comm_bytes=send_bytes * (n - 1) / n, comm_steps=n - 1, collective="all_to_all",
                message_bytes=send_bytes)


def point_to_point(message_bytes: Num) -> Cost:
    return Cost(comm_bytes=message_bytes, comm_steps=1, collective="point_to_point", message_bytes=message_bytes)


def collective_time(cost: Cost, n: int, link: Link, mode: str) -> np.ndarray:
    """Seconds for one instance of the collective ``cost`` over ``n`` devices on ``link`` (see the module text)."""
    sent = np.asarray(cost.comm_bytes, dtype=np.float64)
    bound = sent / link.bandwidth.value
    explicit = cost.algorithm in ("ring", "tree") or cost.collective != "all_reduce"
    if mode == "ideal":
        return bound + cost.comm_steps * link.latency.value if explicit else bound
    if explicit:
        return bound + cost.comm_steps * link.latency.value
    return auto_all_reduce_time(np.asarray(cost.message_bytes, dtype=np.float64), n, link)


def auto_all_reduce_time(message_bytes: np.ndarray, n: int, link: Link) -> np.ndarray:
    """The engine's pick: the fastest measured algorithm that applies (by group size and message size), else the
    faster of NCCL's ring and tree."""
    sent = 2.0 * message_bytes * (n - 1) / n
    bound = sent / link.bandwidth.value
    nccl = bound + min(ring_steps(n), tree_steps(n)) * link.latency.value
    usable = [a for a in link.all_reduce if n <= a.max_devices]
    if not usable:
        return nccl
    best = np.full(np.shape(message_bytes), np.inf)
    for a in usable:
        t = a.latency.value + sent / (a.bus_efficiency.value * link.bandwidth.value)
        best = np.where(message_bytes <= a.max_bytes, np.minimum(best, t), best)
    # A message past every measured algorithm's limit falls back to NCCL's ring/tree formula.
    return np.where(np.isfinite(best), best, nccl)
