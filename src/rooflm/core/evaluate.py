"""Turn a phase's operators into per-operator and per-step totals, vectorised over workload axes.

This is the one evaluation path: a single ``analyze`` is a sweep of one point.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from rooflm.core import graph
from rooflm.core.levels import NOT_RESIDENT, Residency, residency
from rooflm.core.roofline import BOUNDS, Efficiency, launch_overhead, time_op
from rooflm.core.step import DEFAULT_OPTIONS, Options
from rooflm.ops.cost import Num, Op
from rooflm.specs.hardware import HardwareSpec
from rooflm.specs.model import ModelSpec
from rooflm.specs.quant import QuantScheme

_FIELDS = ("flops", "weight_bytes", "activation_bytes", "kv_bytes", "compute_s", "memory_s", "comm_s",
           "overhead_s", "time_s")


@dataclass(frozen=True)
class Amounts:
    """FLOPs, bytes and times (arrays over the sweep's shape); ``time_by_bound`` has a leading axis over BOUNDS."""

    flops: np.ndarray
    weight_bytes: np.ndarray
    activation_bytes: np.ndarray
    kv_bytes: np.ndarray
    compute_s: np.ndarray
    memory_s: np.ndarray
    comm_s: np.ndarray
    overhead_s: np.ndarray
    time_s: np.ndarray
    time_by_bound: np.ndarray

    @property
    def bytes(self) -> np.ndarray:
        return self.weight_bytes + self.activation_bytes + self.kv_bytes

    @property
    def bound(self) -> np.ndarray:
        return np.argmax(self.time_by_bound, axis=0)

    @property
    def arithmetic_intensity(self) -> np.ndarray:
        return self.flops / np.maximum(self.bytes, 1e-30)


@dataclass(frozen=True)
class OpTotals(Amounts):
    """One operator over all its instances (and, in e2e, all decode steps)."""

    op: Op
    # The memory hierarchy (rooflm.core.levels): bytes and seconds at each level, innermost first, DRAM last.
    bytes_by_level: dict[str, np.ndarray] = field(default_factory=dict)
    time_by_level: dict[str, np.ndarray] = field(default_factory=dict)

    def renamed(self, name: str) -> OpTotals:
        return replace(self, op=replace(self.op, name=name))


StepTotals = Amounts  # a step's totals: the sums over its operators


def _totals(op: Op, hw: HardwareSpec, eff: Efficiency, shape: tuple[int, ...], sum_last: bool,
            resident: Residency = NOT_RESIDENT) -> OpTotals:
    t = time_op(op, hw, eff, resident)
    n = op.count
    c = op.cost

    def full(x: object) -> np.ndarray:
        arr = np.asarray(x, dtype=np.float64)
        if arr.shape != shape:
            arr = np.broadcast_to(arr, shape)  # a read-only view: results are never written in place
        return arr.sum(axis=-1) if sum_last else arr

    by_bound = _time_by_bound(np.asarray(t.compute_s), np.asarray(t.memory_s), np.asarray(t.comm_s),
                              np.asarray(t.overhead_s), shape)
    return OpTotals(full(n * np.asarray(c.flops)), full(n * np.asarray(c.weight_bytes)),
                    full(n * np.asarray(c.activation_bytes)), full(n * np.asarray(c.kv_bytes)),
                    full(t.compute_s), full(t.memory_s), full(t.comm_s), full(t.overhead_s), full(t.time_s),
                    by_bound.sum(axis=-1) if sum_last else by_bound, op=op,
                    bytes_by_level={k: full(v) for k, v in t.bytes_by_level.items()},
                    time_by_level={k: full(v) for k, v in t.time_by_level.items()})


def _time_by_bound(compute: np.ndarray, memory: np.ndarray, comm: np.ndarray, overhead: np.ndarray,
                   shape: tuple[int, ...]) -> np.ndarray:
    """The roof time under the bound that sets it (compute, memory or comm; the first on a tie, as argmax
    picks), then the overhead: shape (4, *shape). Comparisons and masked copies into one array, not an argmax
    over a stacked copy: that argmax was most of a sweep's time."""
    roof = np.maximum(np.maximum(compute, memory), comm)
    is_compute = (compute >= memory) & (compute >= comm)
    is_memory = ~is_compute & (memory >= comm)
    out = np.zeros((len(BOUNDS), *shape))
    for i, flag in enumerate((is_compute, is_memory, ~(is_compute | is_memory))):
        np.copyto(out[i, ...], roof, where=flag)  # [i, ...]: a view even when shape is ()
    out[BOUNDS.index("overhead")] = overhead
    return out


def evaluate_ops(ops: list[Op], hw: HardwareSpec, eff: Efficiency, shape: tuple[int, ...],
                 sum_last: bool = False, whole_step: bool = False,
                 keep: Callable[[Op], bool] | None = None) -> list[OpTotals]:
    """``whole_step``: the ops are a whole step that repeats, so weights and KV that fit on chip stay there
    (rooflm.core.levels.residency); a part of a step (one GEMM timed alone, the attention over earlier chunks) keeps
    everything in DRAM. ``keep``: only the ops it accepts are evaluated (what stays on chip is still decided by the
    whole step); a caller that reads a few operators (the critical batch's GEMMs) skips the others' work."""
    resident = residency(ops, hw) if hw.levels and whole_step else NOT_RESIDENT
    return [_totals(op, hw, eff, shape, sum_last, resident) for op in ops if keep is None or keep(op)]


def prefill(model: ModelSpec, quant: QuantScheme, hw: HardwareSpec, eff: Efficiency, batch: Num,
            prompt_len: Num, lm_head_all_tokens: bool = False,
            options: Options = DEFAULT_OPTIONS) -> list[OpTotals]:
    """``batch`` is per data-parallel replica, as in the graph."""
    shape = np.broadcast_shapes(np.shape(batch), np.shape(prompt_len))
    ops = graph.prefill_ops(model, quant, batch, prompt_len, lm_head_all_tokens, options)
    return evaluate_ops(ops, hw, eff, shape, whole_step=True)


def decode(model: ModelSpec, quant: QuantScheme, hw: HardwareSpec, eff: Efficiency, batch: Num,
           context: Num, options: Options = DEFAULT_OPTIONS,
           keep: Callable[[Op], bool] | None = None) -> list[OpTotals]:
    shape = np.broadcast_shapes(np.shape(batch), np.shape(context))
    return evaluate_ops(graph.decode_ops(model, quant, batch, context, options), hw, eff, shape, whole_step=True,
                        keep=keep)


# The decode steps of a request are evaluated a block at a time and summed as they go: at most this many
# point-steps per block, so an e2e evaluation holds (points × block) arrays, however long gen_len (12,288 points at
# gen_len 1024 in one chunk peaked at 1.08 GB when every operator held a points × gen_len array; 0.18 GB now).
DECODE_BLOCK_ELEMENTS = 1 << 18


def decode_steps(model: ModelSpec, quant: QuantScheme, hw: HardwareSpec, eff: Efficiency, batch: Num,
                 prompt_len: Num, gen_len: int, options: Options = DEFAULT_OPTIONS) -> list[OpTotals]:
    """All gen_len − 1 decode steps after a prefill, summed: step i runs at context L + i."""
    b = np.asarray(batch, dtype=np.float64)[..., None]
    length = np.asarray(prompt_len, dtype=np.float64)[..., None]
    points = math.prod(np.broadcast_shapes(b.shape, length.shape))
    block = max(DECODE_BLOCK_ELEMENTS // points, 1)
    total: list[OpTotals] | None = None
    for first in range(1, gen_len, block) if gen_len > 1 else [1]:  # one empty block when gen_len is 1
        steps = np.arange(first, min(first + block, gen_len), dtype=np.float64)
        ctx = length + steps
        shape = np.broadcast_shapes(b.shape, ctx.shape)
        part = evaluate_ops(graph.decode_ops(model, quant, b, ctx, options), hw, eff, shape, sum_last=True,
                            whole_step=True)
        total = part if total is None else [_add(t, p) for t, p in zip(total, part, strict=True)]
    assert total is not None
    return total


def _add(a: OpTotals, b: OpTotals) -> OpTotals:
    """One operator's totals over two blocks of decode steps (the first block's operator describes both)."""
    return replace(a, **{f: getattr(a, f) + getattr(b, f) for f in _FIELDS}, time_by_bound=a.time_by_bound + b.time_by_bound,
                   bytes_by_level={k: v + b.bytes_by_level[k] for k, v in a.bytes_by_level.items()},
                   time_by_level={k: v + b.time_by_level[k] for k, v in a.time_by_level.items()})


def sum_ops(ops: list[OpTotals]) -> Amounts:
    return Amounts(**{f: sum(getattr(o, f) for o in ops) for f in _FIELDS},
                   time_by_bound=sum((o.time_by_bound for o in ops), np.zeros(())))


def bound_names(index: np.ndarray) -> np.ndarray:
    return np.asarray(BOUNDS)[index]


# One second per kernel launch and no roof: an operator's launch overhead under it is its kernel count.
_ONE_SECOND_PER_KERNEL = Efficiency("ideal", 1.0, {"default": 1.0}, kernel_overhead_s=1.0)


def kernel_count(ops: list[Op]) -> float:
    """Kernels the operators launch (every instance, at the points where it has work), counted by the launch rule
    of ``roofline.launch_overhead``."""
    return float(sum(np.sum(launch_overhead(op, _ONE_SECOND_PER_KERNEL)) for op in ops))
