"""The memory hierarchy of this CPU, measured: read bandwidth against working-set size, and its plateaus.

A sum over a buffer of W bytes, repeated R times in one kernel call through a stride-0 view (``as_strided``), reads
R·W bytes from wherever W fits: L1, L2, L3 or DRAM. One call per size keeps PyTorch's dispatch cost (microseconds)
out of the figure even for a 16 KiB buffer. Plotted against W, the bandwidth falls in steps; each step's plateau is a
level. A level's bandwidth is the fastest run (as every roof ``rooflm measure`` reports) of the sizes that fit well
inside it (at most half its capacity) and well outside the level before (at least twice its capacity); its capacity
is the OS's figure, aggregated over the threads that share the work for private caches (L1, L2).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable

from rooflm.measure.results import Run, WorkingSetPoint
from rooflm.measure.timing import require_torch, time_fn

KiB, MiB = 1024.0, 1024.0**2
MIN_BYTES = 16 * KiB
READ_PER_CALL = 256 * MiB  # bytes each timed call reads, whatever the working set (R = this / W, at least 1)
PLATEAU_TOLERANCE = 0.25  # neighbouring sizes within ±25% of a plateau's median belong to it
PRIVATE = ("l1", "l2")  # per-core caches: a multi-threaded sweep sees their sum over the threads


def working_sets(largest: float, per_octave: int = 1) -> tuple[float, ...]:
    """Geometric sizes from 16 KiB to ``largest`` (``per_octave`` per doubling)."""
    count = int(math.log2(largest / MIN_BYTES) * per_octave) + 1
    return tuple(MIN_BYTES * 2 ** (i / per_octave) for i in range(count))


def measure_working_set(sizes: tuple[float, ...], repeats: int, progress: Callable[[str], None]) -> list[WorkingSetPoint]:
    torch = require_torch()
    out: list[WorkingSetPoint] = []
    for size in sizes:
        progress(f"working set {size / KiB:,.0f} KiB")
        n = max(1, int(size // 4))
        x = torch.empty(n).uniform_()
        reps = max(1, int(READ_PER_CALL // (n * 4)))
        view = x.as_strided((reps, n), (0, 1))  # the same n floats, reps times: read from the level they fit in
        t = time_fn(view.sum, warmup=2, repeats=repeats)
        out.append(WorkingSetPoint(working_set_bytes=n * 4.0, bytes_read=reps * n * 4.0, run=Run.of(t)))
    return out


def plateaus(points: list[WorkingSetPoint]) -> list[tuple[float, float, float]]:
    """(smallest, largest working set, fastest bandwidth) of each run of neighbouring sizes whose best bandwidth
    stays within PLATEAU_TOLERANCE of the run's median: the steps of the curve, innermost first."""
    out: list[list[WorkingSetPoint]] = []
    for p in sorted(points, key=lambda p: p.working_set_bytes):
        if out:
            level = statistics.median(q.best_bytes_per_s for q in out[-1])
            if abs(p.best_bytes_per_s / level - 1) <= PLATEAU_TOLERANCE:
                out[-1].append(p)
                continue
        out.append([p])
    return [(g[0].working_set_bytes, g[-1].working_set_bytes, max(q.best_bytes_per_s for q in g)) for g in out]


def measured_levels(points: list[WorkingSetPoint], caches: dict[str, float], threads: int,
                    dram_bandwidth: float) -> list[tuple[str, float, float]]:
    """(name, bandwidth, capacity) per cache level the OS reports, innermost first, from the sizes inside it: the
    hardware file's [[levels]]. A level measured no faster than DRAM is left out (then it cannot bind anyway)."""
    out: list[tuple[str, float, float]] = []
    inner = 0.0
    for name in sorted(caches, key=lambda k: int(k[1:]) if k[1:].isdigit() else 99):
        capacity = caches[name] * (threads if name in PRIVATE else 1)
        inside = [p.best_bytes_per_s for p in points if 2 * inner <= p.working_set_bytes <= capacity / 2]
        inner = capacity
        if inside and max(inside) > dram_bandwidth:
            out.append((name, max(inside), capacity))
    return out
