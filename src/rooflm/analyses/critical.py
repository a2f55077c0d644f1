"""Where the GEMMs cross the ridge: the critical batch of the weight GEMMs and of the experts."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from typing_extensions import Unpack

from rooflm.analyses.report import MoeReport
from rooflm.core import evaluate, graph
from rooflm.core.evaluate import OpTotals
from rooflm.core.inputs import Deployment, Setup, setup
from rooflm.core.memory import memory_use
from rooflm.ops.cost import Op
from rooflm.specs.hardware import HardwareSpec
from rooflm.specs.model import ModelSpec
from rooflm.specs.workload import check_context, check_positive

# The experts' crossover is searched on a geometric grid of global batches, then refined one batch at a time between
# the two grid points around it. 2^26 (67 M sequences) is past any device's memory; 1,500 points put neighbours
# 1.2 % apart, so the refinement evaluates at most ~1 % of the crossover batch.
EXPERT_SEARCH_MAX_BATCH = 2**26
EXPERT_SEARCH_POINTS = 1500


@dataclass(frozen=True)
class GemmCrossover:
    name: str
    weight_shape: tuple[int, int]
    critical_batch: int | None


@dataclass(frozen=True)
class CriticalBatch:
    """The global decode batch at which the weight GEMMs turn compute-bound.

    With T_math(B) = a·B and T_mem(B) = w + c·B (weights once, activations per token), the
    crossover is B* = w / (a − c); it exists only while a > c (activations alone cost less
    than the math). Experts are not linear in B (the experts hit grow with it) and are searched."""

    model: str
    hardware: str
    quant: str
    context: int
    layout: str
    ridge_intensity: float
    critical_batch: int | None
    critical_batch_unconstrained: int | None
    max_batch: int
    per_gemm: list[GemmCrossover]
    expert_critical_batch: int | None = None
    profile: dict[str, str | None] | None = None  # the profile predicted with (rooflm.core.inputs.Setup.profile)
    efficiency: str = "ideal"  # the mode of the crossover's efficiencies

    def to_json_dict(self) -> dict[str, object]:
        return {
            "model": self.model, "hardware": self.hardware, "quant": self.quant, "efficiency": self.efficiency,
            "context": self.context,
            "layout": self.layout, "ridge_intensity": self.ridge_intensity, "critical_batch": self.critical_batch,
            "critical_batch_unconstrained": self.critical_batch_unconstrained, "max_batch": self.max_batch,
            "expert_critical_batch": self.expert_critical_batch, "profile": self.profile,
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


def _decode(s: Setup, replica_batch: np.ndarray, context: float, keep: Callable[[Op], bool]) -> list[OpTotals]:
    """The decode step's operators that ``keep`` accepts (the rest are built, for what stays on chip, not timed)."""
    return evaluate.decode(s.model, s.quant, s.hardware, s.decode_efficiency, replica_batch, np.float64(context),
                           s.options, keep)


def _is_weight_gemm(op: Op) -> bool:
    return op.op_class == "weight_gemm"


def expert_critical_batch(s: Setup, context: float) -> int | None:
    """Smallest global decode batch at which the routed-expert GEMMs, together, are compute-bound."""
    if not s.model.is_moe:
        return None
    dp = s.parallel.dp
    grid = np.unique(np.round(np.geomspace(1, EXPERT_SEARCH_MAX_BATCH, EXPERT_SEARCH_POINTS)))
    first = _first_compute_bound(s, grid, context, dp)
    if first is None:
        return None
    lo = int(grid[max(0, int(np.searchsorted(grid, first)) - 1)])
    fine = np.arange(lo, first + 1, dtype=np.float64)
    return _first_compute_bound(s, fine, context, dp)


def _first_compute_bound(s: Setup, batches: np.ndarray, context: float, dp: int) -> int | None:
    ops = _decode(s, batches / dp, context, graph.is_routed_expert_gemm)
    math_s = sum(o.compute_s for o in ops)
    mem_s = sum(o.memory_s for o in ops)
    hits = np.nonzero(np.broadcast_to(math_s >= mem_s, batches.shape))[0]
    return int(batches[hits[0]]) if hits.size else None


def critical_batch(model: str | Path | ModelSpec = "llama-3.1-8b", hardware: str | Path | HardwareSpec = "h100-sxm",
                   *, context: int = 1024, **deployment: Unpack[Deployment]) -> CriticalBatch:
    """Smallest global decode batch at which the step's weight GEMMs (attention projections, dense
    MLPs, lm_head), taken together, are compute-bound; ``None`` if beyond the memory limit. For MoE
    models the routed experts' crossover is reported beside it."""
    check_positive(context=context)
    s = setup(model, hardware, **deployment)
    check_context(context, s.model.max_position_embeddings)
    dp = s.parallel.dp
    gemms = _decode(s, np.array([1.0, 2.0]), context, _is_weight_gemm)
    math_s = sum((o.compute_s for o in gemms), np.zeros(()))
    mem_s = sum((o.memory_s for o in gemms), np.zeros(()))
    overall = _crossover(math_s[0], mem_s[0], math_s[1], mem_s[1])
    per_gemm = [GemmCrossover(o.op.name, o.op.weight_shape or (0, 0),
                              _global(_crossover(o.compute_s[0], o.memory_s[0], o.compute_s[1], o.memory_s[1]), dp))
                for o in gemms]
    one = graph.decode_ops(s.model, s.quant, 1.0, context, s.options)
    mem = memory_use(s.model, s.quant, s.hardware, np.float64(dp), np.float64(context), one, one, s.options,
                     capacity=s.memory_capacity)
    max_batch = int(np.asarray(mem.max_batch).reshape(-1)[0])
    overall_global = _global(overall, dp)
    within = overall_global if overall_global is not None and overall_global <= max_batch else None
    return CriticalBatch(s.model.name, s.hardware.name, s.quant.label, context, s.parallel.label, s.ridge, within,
                         overall_global, max_batch, per_gemm, expert_critical_batch(s, context), s.profile, s.eff.mode)


def _global(replica_batch: int | None, dp: int) -> int | None:
    return None if replica_batch is None else replica_batch * dp


def moe_report(s: Setup, phase: str, batch: int, prompt_len: int, context: int) -> MoeReport:
    """Tokens per expert, experts read, and where the experts cross the ridge, for one MoE layer."""
    spec, p = s.model.moe, s.parallel
    assert spec is not None
    load = graph.expert_load(s.model, batch / p.dp * (prompt_len if phase == "prefill" else 1), s.options)
    hit = float(load.experts_hit)
    return MoeReport(
        routing=s.options.routing.describe(), tokens_per_step=float(load.group_tokens), top_k=spec.top_k,
        num_experts=spec.num_experts, distinct_experts=hit, experts_read_per_device=hit / p.ep,
        tokens_per_expert=float(load.tokens_per_expert),
        expert_critical_batch=expert_critical_batch(s, context),
    )
