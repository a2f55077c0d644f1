"""Traffic and time at each memory level (the hierarchical roofline): small formula functions, vectorised.

The classic roofline counts each operand once at DRAM. Inside the chip, a kernel re-reads operands from the level
its tiles are loaded from: a GEMM [M,K]×[K,N] with output tiles of m × n reads A once per column of tiles and B once
per row of tiles; FlashAttention reads K/V once per block of m queries. Each level's traffic is a lower bound (the
largest tile the device's kernels use, sourced in its hardware file), so the hierarchical ideal stays a lower bound.
Levels run innermost first; DRAM (``specs.levels.DRAM``) is last. See docs/DESIGN.md, "Memory levels".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rooflm.ops.cost import Num, Op, any_nonzero
from rooflm.specs.dtypes import bytes_per_element
from rooflm.specs.hardware import HardwareSpec
from rooflm.specs.levels import DRAM, MemoryLevel, Tile


def gemm_tile_bytes(a_bytes: Num, b_bytes: Num, c_bytes: Num, m: Num, n: Num, tile: Tile) -> Num:
    """Bytes a GEMM moves at a level whose kernels compute m × n output tiles: A [M,K] is read once per column of
    tiles (N/n times), B [K,N] once per row of tiles (M/m times), at least once each; and every operand crosses the
    level at least once (A + B + C). The larger of these two lower bounds, not their sum: a short-K GEMM's kernel
    can keep a panel in the inner level across tiles, and the bound must hold for it. Passes are not rounded up
    either: a library picks a smaller tile for a ragged edge."""
    a_passes = np.maximum(n / tile.n, 1.0)
    b_passes = np.maximum(np.asarray(m, dtype=np.float64) / tile.m, 1.0)
    return np.maximum(a_bytes * a_passes + b_bytes * b_passes, a_bytes + b_bytes + c_bytes)


def flash_kv_rereads(flops: Num, io_bytes: float, tile: Tile) -> Num:
    """K/V bytes FlashAttention reads at a level whose blocks hold m queries (one query head each): every query-key
    pair costs 2·(d_qk + d_v) FLOPs and its K/V row, (d_qk + d_v)·io bytes, is read once per block of m queries, so
    the K/V reads are at least FLOPs · io / (2·m) — a lower bound under any mask (a causal block reads the keys of
    its last query, at least those of each of its queries)."""
    return np.asarray(flops, dtype=np.float64) * io_bytes / (2.0 * tile.m)


def tiled_bytes(op: Op, level: MemoryLevel, weight_bytes: Num, streamed: Num) -> Num:
    """One instance's bytes at ``level`` from its tiles: GEMMs with a weight shape and attention with FLOPs; other
    operators (and levels without a tile) stream, each byte once (``streamed``)."""
    c, tile = op.cost, level.tile
    if tile is None:
        return streamed
    if op.kind == "gemm" and op.weight_shape:
        return gemm_tile_bytes(*_gemm_operands(op, weight_bytes, streamed), op.gemm_m, op.weight_shape[1], tile)
    if op.kind == "attention" and any_nonzero(c.flops):
        return np.maximum(streamed, flash_kv_rereads(c.flops, bytes_per_element(op.compute_dtype), tile))
    return streamed


def _gemm_operands(op: Op, weight_bytes: Num, streamed: Num) -> tuple[Num, Num, Num]:
    """A GEMM instance's A (its input rows), B (the weights) and the rest (the output C and a bias), in bytes."""
    assert op.weight_shape is not None  # called for GEMMs with weights only
    k = op.weight_shape[0]
    a_in = np.asarray(op.gemm_m, dtype=np.float64) * (k * bytes_per_element(op.compute_dtype) * op.instances)
    a_in = np.minimum(a_in, op.cost.activation_bytes)  # the input is part of the counted activation bytes
    return a_in, weight_bytes, streamed - weight_bytes - a_in


@dataclass(frozen=True)
class Residency:
    """Where data that every step reads again stays between steps: the index (into ``hw.levels``) of the level the
    step's weights stay in, and the one its KV cache stays in (len(levels): DRAM, nothing resident), per point."""

    weights: np.ndarray
    kv: np.ndarray


def residency(ops: list[Op], hw: HardwareSpec) -> Residency:
    """Weights stay in the outermost on-chip level that holds all the weights a step reads (repeated steps then
    read them there, not from DRAM); the KV cache too when weights and KV fit together. The outermost, because an
    inner level (an SM's shared memory) is not kept across kernels, and it is the smaller claim. Activations are
    left at DRAM, as the classic count has them. A whole model's weights never fit an L2; a toy model's may."""
    dram = len(hw.levels)
    weights = sum((op.count * np.asarray(op.cost.weight_bytes, dtype=np.float64) for op in ops), np.zeros(()))
    kv = sum((op.count * np.asarray(op.cost.kv_bytes, dtype=np.float64) for op in ops), np.zeros(()))
    return Residency(_outermost_holding(hw.levels, weights, dram), _outermost_holding(hw.levels, weights + kv, dram))


def _outermost_holding(levels: list[MemoryLevel], size: np.ndarray, dram: int) -> np.ndarray:
    where = np.full(np.shape(size), dram)
    for i, level in enumerate(levels):  # innermost first, so a later (outer) level that holds it wins
        where = np.where((size > 0) & (size <= level.capacity.value), i, where)
    return where


NOT_RESIDENT = Residency(np.asarray(-1), np.asarray(-1))  # no residency known: everything streams from DRAM


def level_bytes(op: Op, hw: HardwareSpec, resident: Residency) -> dict[str, Num]:
    """Bytes of one instance of ``op`` at each level, innermost first, DRAM last. Data resident at a level does not
    reach the levels outside it; every level carries at least what the level outside it carries (data crosses the
    inner levels on its way in), so the bytes never grow outward."""
    c = op.cost
    dram_index = len(hw.levels)
    w, kv = c.weight_bytes, c.kv_bytes
    # Most steps keep nothing resident: then each level sees the same weights and KV, and no mask is built.
    on_chip = any_nonzero((resident.weights >= 0) & (resident.weights < dram_index))
    if not on_chip:
        return _streamed_level_bytes(op, hw)
    out: dict[str, Num] = {}
    outer: Num = 0.0
    for j in range(dram_index, -1, -1):  # from DRAM inward
        w_j = np.where(_beyond(j, resident.weights, dram_index), 0.0, w) if on_chip else w
        kv_j = np.where(_beyond(j, resident.kv, dram_index), 0.0, kv) if on_chip else kv
        streamed = w_j + kv_j + c.activation_bytes
        here = streamed if j == dram_index else tiled_bytes(op, hw.levels[j], w_j, streamed)
        outer = np.maximum(here, outer)
        out[DRAM if j == dram_index else hw.levels[j].name] = outer
    return dict(reversed(out.items()))


def _streamed_level_bytes(op: Op, hw: HardwareSpec) -> dict[str, Num]:
    """level_bytes when nothing stays on chip: the classic bytes at DRAM, once; a level whose kernels stream
    (no tile, or not a GEMM or attention) carries the very array of the level outside it, not a copy. In a sweep
    each array op costs a pass over every point, and most operators (norms, activations) are not tiled."""
    c = op.cost
    streamed = c.weight_bytes + c.kv_bytes + c.activation_bytes
    out: dict[str, Num] = {DRAM: streamed}
    outer = streamed
    # A GEMM's operands are the same at every level: split them once, not once per tiled level.
    gemm = _gemm_operands(op, c.weight_bytes, streamed) if op.kind == "gemm" and op.weight_shape else None
    for level in reversed(hw.levels):
        if gemm is not None and level.tile is not None:
            assert op.weight_shape is not None  # gemm is split only for a GEMM with weights
            here = gemm_tile_bytes(*gemm, op.gemm_m, op.weight_shape[1], level.tile)
        else:
            here = tiled_bytes(op, level, c.weight_bytes, streamed)
        if here is not streamed:
            outer = np.maximum(here, outer)
        out[level.name] = outer
    return dict(reversed(out.items()))


def _beyond(j: int, resident_at: np.ndarray, dram_index: int) -> np.ndarray:
    """Whether level ``j`` lies outside the level the data is resident at (so the data does not reach it)."""
    return (resident_at >= 0) & (resident_at < dram_index) & (j > resident_at)


def cache_times(op: Op, hw: HardwareSpec, by_level: dict[str, Num]) -> dict[str, np.ndarray]:
    """Seconds at each on-chip level for all ``count`` instances: bytes / bandwidth. The levels' figures are what a
    kernel sustains (peak per-clock figures or microbenchmarks), taken as they are in both efficiency modes."""
    return {lv.name: np.asarray(by_level[lv.name], dtype=np.float64) * (op.count / lv.bandwidth.value)
            for lv in hw.levels}
