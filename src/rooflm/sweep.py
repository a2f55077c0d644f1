"""Grids of workloads in one vectorised evaluation, and the critical batch of the weight GEMMs."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rooflm import evaluate, graph
from rooflm.analysis import Setup, _check_lengths, _check_phase, run_phase, setup
from rooflm.memory import memory_use
from rooflm.roofline import BOUNDS
from rooflm.specs.hardware import HardwareSpec
from rooflm.specs.model import ModelSpec
from rooflm.specs.quant import QuantScheme
from rooflm.specs.workload import check_context, check_positive

# Columns of a sweep point after its axis values; names follow analyze's "totals".
TOTAL_COLUMNS: tuple[str, ...] = (
    "time_s", "compute_time_s", "memory_time_s", "comm_time_s", "overhead_time_s", "flops", "bytes", "weight_bytes",
    "activation_bytes", "kv_bytes", "arithmetic_intensity", "ridge_intensity", "bound", "tokens_per_s",
    "memory_total_bytes", "fits", "max_batch",
)
E2E_COLUMNS: tuple[str, ...] = ("ttft_s", "tpot_s", "output_tokens_per_s")


@dataclass(frozen=True)
class SweepResult:
    """One row per grid point, stored as columns (numpy arrays of equal length)."""

    model: str
    hardware: str
    phase: str
    quant: str
    efficiency: str
    axes: dict[str, np.ndarray]
    columns: dict[str, np.ndarray] = field(repr=False)

    def __len__(self) -> int:
        return len(next(iter(self.axes.values())))

    def points(self) -> list[dict[str, object]]:
        names = [*self.axes, *self.columns]
        cols = [*self.axes.values(), *self.columns.values()]
        as_py = [c.tolist() for c in cols]
        return [dict(zip(names, row, strict=True)) for row in zip(*as_py, strict=True)]

    def to_json_dict(self) -> dict[str, object]:
        return {"model": self.model, "hardware": self.hardware, "phase": self.phase, "quant": self.quant,
                "efficiency": self.efficiency, "points": self.points()}

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow([*self.axes, *self.columns])
        cols = [c.tolist() for c in (*self.axes.values(), *self.columns.values())]
        writer.writerows(zip(*cols, strict=True))
        return buf.getvalue()


def sweep(model: str | Path | ModelSpec = "llama-3.1-8b", hardware: str | Path | HardwareSpec = "h100-sxm", *,
          phase: str = "decode", batch: Sequence[int] = (1,), prompt_len: Sequence[int] = (1024,),
          context: Sequence[int] | None = None, gen_len: int = 256, quant: str | QuantScheme = "bf16",
          kv_dtype: str | None = None, efficiency: str = "ideal", lm_head_all_tokens: bool = False,
          eta_memory: float | None = None, eta_compute: float | None = None,
          kernel_overhead_s: float | None = None) -> SweepResult:
    """Every combination of the axes (batch × prompt length × context), evaluated at once."""
    _check_phase(phase)
    batch, prompt_len = list(batch), list(prompt_len)
    context = prompt_len if context is None else list(context)
    check_positive(batch=batch, prompt_len=prompt_len, context=context, gen_len=gen_len)
    s = setup(model, hardware, quant, kv_dtype, efficiency, eta_memory=eta_memory, eta_compute=eta_compute,
              kernel_overhead_s=kernel_overhead_s)
    _check_lengths(s.model, phase, prompt_len, context, gen_len)
    axis_values = {"batch": batch}
    if phase != "decode":
        axis_values["prompt_len"] = prompt_len
    if phase == "decode":
        axis_values["context"] = context
    grids = np.meshgrid(*(np.asarray(v, dtype=np.float64) for v in axis_values.values()), indexing="ij")
    flat = {name: g.reshape(-1) for name, g in zip(axis_values, grids, strict=True)}
    b = flat["batch"]
    pl = flat.get("prompt_len", np.float64(prompt_len[0]))
    ctx = flat.get("context", np.float64(context[0]))
    r = run_phase(s, phase, b, pl, ctx, gen_len, lm_head_all_tokens)
    step, n = r.step, len(b)

    def full(x: object) -> np.ndarray:
        return np.broadcast_to(np.asarray(x, dtype=np.float64), (n,)).copy()

    cols: dict[str, np.ndarray] = {
        "time_s": full(step.time_s), "compute_time_s": full(step.compute_s), "memory_time_s": full(step.memory_s),
        "comm_time_s": full(step.comm_s), "overhead_time_s": full(step.overhead_s), "flops": full(step.flops),
        "bytes": full(step.bytes), "weight_bytes": full(step.weight_bytes),
        "activation_bytes": full(step.activation_bytes), "kv_bytes": full(step.kv_bytes),
        "arithmetic_intensity": full(step.arithmetic_intensity), "ridge_intensity": full(s.ridge),
        "bound": np.asarray(BOUNDS)[np.broadcast_to(step.bound, (n,))],
        "tokens_per_s": full(r.tokens / step.time_s), "memory_total_bytes": full(r.memory.total_bytes),
        "fits": np.broadcast_to(r.memory.fits, (n,)).copy(), "max_batch": full(r.memory.max_batch).astype(np.int64),
    }
    if phase == "e2e":
        cols |= {"ttft_s": full(r.ttft_s), "tpot_s": full(r.tpot_s),
                 "output_tokens_per_s": full(r.output_tokens / step.time_s)}
    axes = {name: v.astype(np.int64) for name, v in flat.items()}
    if phase == "e2e":
        axes["gen_len"] = np.full(n, gen_len, dtype=np.int64)
    return SweepResult(s.model.name, s.hardware.name, phase, s.quant.label, s.eff.mode, axes, cols)


@dataclass(frozen=True)
class GemmCrossover:
    name: str
    weight_shape: tuple[int, int]
    critical_batch: int | None


@dataclass(frozen=True)
class CriticalBatch:
    """The decode batch at which the weight GEMMs turn compute-bound.

    With T_math(B) = a·B and T_mem(B) = w + c·B (weights once, activations per token), the
    crossover is B* = w / (a − c); it exists only while a > c (activations alone cost less
    than the math)."""

    model: str
    hardware: str
    quant: str
    context: int
    ridge_intensity: float
    critical_batch: int | None
    critical_batch_unconstrained: int | None
    max_batch: int
    per_gemm: list[GemmCrossover]

    def to_json_dict(self) -> dict[str, object]:
        return {
            "model": self.model, "hardware": self.hardware, "quant": self.quant, "context": self.context,
            "ridge_intensity": self.ridge_intensity, "critical_batch": self.critical_batch,
            "critical_batch_unconstrained": self.critical_batch_unconstrained, "max_batch": self.max_batch,
            "per_gemm": [{"name": g.name, "weight_shape": list(g.weight_shape), "critical_batch": g.critical_batch}
                         for g in self.per_gemm],
        }


def _crossover(t1_math: float, t1_mem: float, t2_math: float, t2_mem: float) -> int | None:
    """Smallest integer B with a·B ≥ w + c·B from two evaluations at B = 1 and B = 2."""
    a = t2_math - t1_math
    c = t2_mem - t1_mem
    w = t1_mem - c
    if a <= c:
        return None
    return max(1, math.ceil(w / (a - c) - 1e-9))


def _weight_gemm_times(s: Setup, context: float) -> list[tuple[str, tuple[int, int], np.ndarray, np.ndarray]]:
    b = np.array([1.0, 2.0])
    ops = evaluate.decode(s.model, s.quant, s.hardware, s.eff, b, np.float64(context))
    return [(o.op.name, o.op.weight_shape or (0, 0), o.compute_s, o.memory_s)
            for o in ops if o.op.op_class == "weight_gemm"]


def critical_batch(model: str | Path | ModelSpec = "llama-3.1-8b", hardware: str | Path | HardwareSpec = "h100-sxm",
                   *, context: int = 1024, quant: str | QuantScheme = "bf16", kv_dtype: str | None = None,
                   efficiency: str = "ideal", eta_memory: float | None = None, eta_compute: float | None = None,
                   kernel_overhead_s: float | None = None) -> CriticalBatch:
    """Smallest decode batch at which the step's weight GEMMs, taken together, are compute-bound
    (their summed math time reaches their summed memory time); ``None`` if beyond the memory limit."""
    check_positive(context=context)
    s = setup(model, hardware, quant, kv_dtype, efficiency, eta_memory=eta_memory, eta_compute=eta_compute,
              kernel_overhead_s=kernel_overhead_s)
    check_context(context, s.model.max_position_embeddings)
    gemms = _weight_gemm_times(s, context)
    math_s = sum(g[2] for g in gemms)
    mem_s = sum(g[3] for g in gemms)
    overall = _crossover(math_s[0], mem_s[0], math_s[1], mem_s[1])
    per_gemm = [GemmCrossover(name, shape, _crossover(tm[0], tb[0], tm[1], tb[1])) for name, shape, tm, tb in gemms]
    mem = memory_use(s.model, s.quant, s.hardware, np.float64(1), np.float64(context),
                     graph.decode_ops(s.model, s.quant, 1.0, context), graph.decode_ops(s.model, s.quant, 1.0, context))
    max_batch = int(_scalar(mem.max_batch))
    within = overall if overall is not None and overall <= max_batch else None
    return CriticalBatch(s.model.name, s.hardware.name, s.quant.label, context, s.ridge, within, overall, max_batch,
                         per_gemm)


def _scalar(x: np.ndarray) -> float:
    return float(np.asarray(x).reshape(-1)[0])
