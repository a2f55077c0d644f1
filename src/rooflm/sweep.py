"""Grids of workloads in one vectorised evaluation."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from typing_extensions import Unpack

from rooflm.analysis import run_phase
from rooflm.deploy import Deployment, Setup, check_lengths, check_phase, setup
from rooflm.evaluate import OpTotals
from rooflm.ops import moe
from rooflm.ops.cost import OP_CLASSES
from rooflm.roofline import BOUNDS
from rooflm.specs.hardware import HardwareSpec
from rooflm.specs.model import ModelSpec
from rooflm.specs.workload import check_positive

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
    layout: str
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
                "efficiency": self.efficiency, "layout": self.layout, "points": self.points()}

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow([*self.axes, *self.columns])
        cols = [c.tolist() for c in (*self.axes.values(), *self.columns.values())]
        writer.writerows(zip(*cols, strict=True))
        return buf.getvalue()


def sweep(model: str | Path | ModelSpec = "llama-3.1-8b", hardware: str | Path | HardwareSpec = "h100-sxm", *,
          phase: str = "decode", batch: Sequence[int] = (1,), prompt_len: Sequence[int] = (1024,),
          context: Sequence[int] | None = None, gen_len: int = 256, lm_head_all_tokens: bool = False,
          **deployment: Unpack[Deployment]) -> SweepResult:
    """Every combination of the axes (batch × prompt length × context), evaluated at once."""
    check_phase(phase)
    batch, prompt_len = list(batch), list(prompt_len)
    context = prompt_len if context is None else list(context)
    check_positive(batch=batch, prompt_len=prompt_len, context=context, gen_len=gen_len)
    s = setup(model, hardware, **deployment)
    check_lengths(s.model, phase, prompt_len, context, gen_len)
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
    memory_index = BOUNDS.index("memory")
    for c in OP_CLASSES:
        members = [o for o in r.ops if o.op.op_class == c]
        cols[f"{c}_time_s"] = full(sum((o.time_s - o.overhead_s for o in members), np.zeros(())))
        cols[f"{c}_memory_bound_s"] = full(sum((o.time_by_bound[memory_index] for o in members), np.zeros(())))
    if phase == "e2e":
        cols |= {"ttft_s": full(r.ttft_s), "tpot_s": full(r.tpot_s),
                 "output_tokens_per_s": full(r.output_tokens / step.time_s)}
    if s.model.is_moe and phase != "e2e":
        cols |= _expert_columns(s, r.ops, b, pl if phase == "prefill" else np.float64(1.0), full)
    axes = {name: v.astype(np.int64) for name, v in flat.items()}
    if phase == "e2e":
        axes["gen_len"] = np.full(n, gen_len, dtype=np.int64)
    return SweepResult(s.model.name, s.hardware.name, phase, s.quant.label, s.eff.mode, s.parallel.label, axes, cols)


def _expert_columns(s: Setup, ops: list[OpTotals], batch: np.ndarray, q_len: np.ndarray,
                    full: Callable[[object], np.ndarray]) -> dict[str, np.ndarray]:
    """Per point: tokens each routed expert sees, experts hit per layer, and what bounds the experts."""
    spec, p = s.model.moe, s.parallel
    assert spec is not None
    tokens = batch / p.dp * q_len * (p.dp if p.ep > 1 else 1)
    classes = moe.expert_classes(spec.num_experts, spec.top_k, s.options.routing)
    hit = sum(moe.distinct_experts(tokens, n, pick) for n, pick in classes)
    gemms = [o for o in ops if o.op.kind == "gemm" and o.op.name.startswith("experts")]
    compute_bound = sum(o.compute_s for o in gemms) >= sum(o.memory_s for o in gemms)
    return {"experts_hit": full(hit), "tokens_per_expert": full(tokens * spec.top_k / np.maximum(hit, 1e-30)),
            "expert_bound": np.where(np.broadcast_to(compute_bound, (len(batch),)), "compute", "memory")}
