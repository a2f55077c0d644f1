"""The Pareto frontier of a search and its best point under latency targets, on plain arrays.

Both axes are maximised: output tokens/s per user (interactivity, 1 / TPOT) and output tokens/s per GPU
(throughput). A point is dominated when another is at least as good on both and better on one; the frontier is the
points nothing dominates. Points with a missing (NaN) coordinate are never on it.
"""

from __future__ import annotations

import numpy as np

# Figures that agree to this share are the same figure. The steady-state model solves its fixed points to ~1e-13,
# so configurations that differ only in a limit that does not bind (max_running 128 or 256 where 111 rows run)
# come out equal but for their last digits; which of them stood on the frontier, and how many, turned on those.
TIE = 1e-9


def snapped(v: np.ndarray) -> np.ndarray:
    """``v`` with each run of values within TIE of the run's smallest replaced by that smallest (NaN kept)."""
    v = np.asarray(v, dtype=np.float64)
    out = v.copy()
    ok = np.flatnonzero(np.isfinite(v))
    start: float | None = None
    for i in ok[np.argsort(v[ok], kind="stable")].tolist():
        if start is None or v[i] > start + TIE * abs(start):
            start = float(v[i])
        out[i] = start
    return out


def frontier(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated points, by increasing ``x`` (so decreasing ``y``). Of points at the same
    (x, y), to TIE, the first (lowest index) stands for them all."""
    x, y = snapped(x), snapped(y)
    ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    # By x descending, then y descending, then index: every point before one has x at least its own, so it is on
    # the frontier exactly when its y beats every y before it (an equal y there is a tie or a dominator).
    order = ok[np.lexsort((ok, -y[ok], -x[ok]))]
    ys = y[order]
    before = np.concatenate(([-np.inf], np.maximum.accumulate(ys)[:-1])) if len(ys) else ys
    return order[ys > before][::-1]


def meets(ttft: np.ndarray, tpot: np.ndarray, ttft_slo: float | None, tpot_slo: float | None) -> np.ndarray:
    """Which points meet the targets (mean TTFT ≤ ``ttft_slo``, mean TPOT ≤ ``tpot_slo``; None: no target). A
    point without the figure (NaN) does not meet a target on it."""
    ok = np.ones(np.shape(ttft), dtype=bool)
    for values, slo in ((ttft, ttft_slo), (tpot, tpot_slo)):
        if slo is not None:
            v = np.asarray(values, dtype=np.float64)
            ok &= np.isfinite(v) & (v <= slo)
    return ok


def best(x: np.ndarray, y: np.ndarray, allowed: np.ndarray) -> int | None:
    """The allowed point of most ``y`` (throughput per GPU); ties (to TIE) go to more ``x``, then to the lower
    index. None when no allowed point has both figures."""
    x, y = snapped(x), snapped(y)
    idx = np.flatnonzero(allowed & np.isfinite(x) & np.isfinite(y))
    if not len(idx):
        return None
    return int(idx[np.lexsort((idx, -x[idx], -y[idx]))[0]])


def ranked(x: np.ndarray, y: np.ndarray, allowed: np.ndarray) -> list[int]:
    """The allowed points with both figures, in the order ``best`` prefers them (most ``y``, then more ``x``, then
    the lower index): ``ranked(...)[0] == best(...)``."""
    x, y = snapped(x), snapped(y)
    idx = np.flatnonzero(allowed & np.isfinite(x) & np.isfinite(y))
    return [int(i) for i in idx[np.lexsort((idx, -x[idx], -y[idx]))]]
