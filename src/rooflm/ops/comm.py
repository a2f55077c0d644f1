"""Collective communication as bytes each device sends and the number of latency-bound steps.

Which link carries them (NVLink, PCIe, InfiniBand, ICI) is the hardware's business: the roofline
turns (bytes, steps, group size) into time. Formulas per device for a message of S bytes over n
devices: ring all-reduce sends 2·S·(n−1)/n in 2·(n−1) steps; a (double binary) tree sends the
same bytes in 2·⌈log₂ n⌉ steps; all-gather and all-to-all send S·(n−1)/n in n−1 steps;
point-to-point sends S in one.
"""

from __future__ import annotations

import math
from typing import Literal

from rooflm.ops.cost import Cost, Num

Algorithm = Literal["ring", "tree"]


def all_reduce(message_bytes: Num, n: int, algorithm: Algorithm = "ring") -> Cost:
    if n <= 1:
        return Cost()
    steps = 2 * (n - 1) if algorithm == "ring" else 2 * math.ceil(math.log2(n))
    return Cost(comm_bytes=2.0 * message_bytes * (n - 1) / n, comm_steps=steps)


def all_gather(message_bytes: Num, n: int) -> Cost:
    """Every device ends with all n shards; ``message_bytes`` is the gathered total."""
    if n <= 1:
        return Cost()
    return Cost(comm_bytes=message_bytes * (n - 1) / n, comm_steps=n - 1)


def all_to_all(send_bytes: Num, n: int) -> Cost:
    """Each device sends ``send_bytes`` spread over the group; the share for itself stays local."""
    if n <= 1:
        return Cost()
    return Cost(comm_bytes=send_bytes * (n - 1) / n, comm_steps=n - 1)


def point_to_point(message_bytes: Num) -> Cost:
    return Cost(comm_bytes=message_bytes, comm_steps=1)
