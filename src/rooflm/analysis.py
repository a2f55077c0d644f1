"""The public entry points: analyze one point, sweep a grid, find the critical batch.

Names are resolved and sizes checked here, once; the physics is in ops/, roofline.py and
evaluate.py, and this module only assembles their results into reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rooflm import evaluate, graph
from rooflm.errors import InvalidInputError
from rooflm.evaluate import OpTotals, StepTotals
from rooflm.memory import MemoryUse, memory_use
from rooflm.report import MemoryReport, OperatorRow, Report, Totals
from rooflm.roofline import BOUNDS, Efficiency, efficiency_for
from rooflm.specs.hardware import HardwareSpec, load_hardware
from rooflm.specs.model import ModelSpec, load_model
from rooflm.specs.quant import QuantScheme, load_scheme
from rooflm.specs.workload import PHASES, check_context, check_positive

OP_CLASSES: tuple[str, ...] = ("weight_gemm", "attention", "expert", "communication", "other")


@dataclass(frozen=True)
class Setup:
    """Resolved inputs shared by every entry point."""

    model: ModelSpec
    hardware: HardwareSpec
    quant: QuantScheme
    eff: Efficiency

    @property
    def ridge(self) -> float:
        """Ridge of the scheme's compute roof, at the efficiencies in use (the datasheet ridge when ideal)."""
        hw, eff, dtype = self.hardware, self.eff, self.quant.compute
        return hw.peak(dtype) * eff.compute_fraction(dtype) / (hw.memory_bandwidth.value * eff.memory)


def setup(model: str | Path | ModelSpec, hardware: str | Path | HardwareSpec, quant: str | QuantScheme = "bf16",
          kv_dtype: str | None = None, efficiency: str = "ideal", *, eta_memory: float | None = None,
          eta_compute: float | None = None, kernel_overhead_s: float | None = None) -> Setup:
    hw = load_hardware(hardware)
    scheme = load_scheme(quant, kv_dtype)
    hw.peak(scheme.compute)  # refuse a scheme the device has no roof for, before any work
    return Setup(load_model(model), hw, scheme,
                 efficiency_for(hw, efficiency, memory=eta_memory, compute=eta_compute,
                                kernel_overhead_s=kernel_overhead_s))


def _check_phase(phase: str) -> None:
    if phase not in PHASES:
        raise InvalidInputError(f"phase must be one of {', '.join(PHASES)}, got {phase!r}")


@dataclass(frozen=True)
class PhaseResult:
    """Everything computed for a grid of workloads of one phase (arrays over the grid)."""

    ops: list[OpTotals]
    step: StepTotals
    tokens: np.ndarray
    memory: MemoryUse
    ttft_s: np.ndarray | None = None
    tpot_s: np.ndarray | None = None
    output_tokens: np.ndarray | None = None


def run_phase(s: Setup, phase: str, batch: np.ndarray, prompt_len: np.ndarray, context: np.ndarray,
              gen_len: int, lm_head_all_tokens: bool = False) -> PhaseResult:
    m, q, hw, eff = s.model, s.quant, s.hardware, s.eff
    if phase == "prefill":
        ops = evaluate.prefill(m, q, hw, eff, batch, prompt_len, lm_head_all_tokens)
        graph_ops = graph.prefill_ops(m, q, batch, prompt_len, lm_head_all_tokens)
        graph_ops_1 = graph.prefill_ops(m, q, 1.0, prompt_len, lm_head_all_tokens)
        mem = memory_use(m, q, hw, batch, prompt_len, graph_ops, graph_ops_1)
        return PhaseResult(ops, evaluate.sum_ops(ops), batch * prompt_len, mem)
    if phase == "decode":
        ops = evaluate.decode(m, q, hw, eff, batch, context)
        mem = memory_use(m, q, hw, batch, context, graph.decode_ops(m, q, batch, context),
                         graph.decode_ops(m, q, 1.0, context))
        return PhaseResult(ops, evaluate.sum_ops(ops), batch * np.ones_like(context), mem)
    pre = evaluate.prefill(m, q, hw, eff, batch, prompt_len, lm_head_all_tokens)
    dec = evaluate.decode_steps(m, q, hw, eff, batch, prompt_len, gen_len)
    ops = [o.renamed(f"prefill/{o.op.name}") for o in pre] + [o.renamed(f"decode/{o.op.name}") for o in dec]
    last = prompt_len + gen_len - 1
    mem = memory_use(m, q, hw, batch, last,
                     graph.prefill_ops(m, q, batch, prompt_len) + graph.decode_ops(m, q, batch, last),
                     graph.prefill_ops(m, q, 1.0, prompt_len) + graph.decode_ops(m, q, 1.0, last))
    ttft = evaluate.sum_ops(pre).time_s
    decode_time = evaluate.sum_ops(dec).time_s
    tpot = decode_time / (gen_len - 1) if gen_len > 1 else np.full_like(ttft, np.nan)
    output = batch * gen_len * np.ones_like(ttft)
    return PhaseResult(ops, evaluate.sum_ops(ops), batch * (prompt_len + gen_len) * np.ones_like(ttft), mem,
                       ttft, tpot, output)


def _f(x: np.ndarray | float) -> float:
    return float(np.asarray(x).reshape(-1)[0]) if np.size(x) else 0.0


def _by_class(ops: list[OpTotals]) -> dict[str, float]:
    out = dict.fromkeys(OP_CLASSES, 0.0)
    for o in ops:
        out[o.op.op_class] += _f(o.time_s)
    return out


def _operator_row(o: OpTotals) -> OperatorRow:
    return OperatorRow(
        name=o.op.name, kind=o.op.kind, op_class=o.op.op_class, count=o.op.count, compute_dtype=o.op.compute_dtype,
        weight_shape=o.op.weight_shape, flops=_f(o.flops), bytes=_f(o.bytes), weight_bytes=_f(o.weight_bytes),
        activation_bytes=_f(o.activation_bytes), kv_bytes=_f(o.kv_bytes),
        arithmetic_intensity=_f(o.flops) / max(_f(o.bytes), 1e-30), compute_time_s=_f(o.compute_s),
        memory_time_s=_f(o.memory_s), overhead_time_s=_f(o.overhead_s), time_s=_f(o.time_s),
        bound=BOUNDS[int(_f(o.bound))],
    )


def _optional(x: np.ndarray | None) -> float | None:
    if x is None or not math.isfinite(_f(x)):
        return None
    return _f(x)


def _memory_report(mem: MemoryUse) -> MemoryReport:
    total = _f(mem.total_bytes)
    return MemoryReport(weights_bytes=mem.weights_bytes, kv_cache_bytes=_f(mem.kv_cache_bytes),
                        activation_bytes=_f(mem.activation_bytes), total_bytes=total,
                        capacity_bytes=mem.capacity_bytes, fits=bool(_f(mem.fits)), max_batch=int(_f(mem.max_batch)),
                        shortfall_bytes=max(0.0, total - mem.capacity_bytes))


def analyze(model: str | Path | ModelSpec = "llama-3.1-8b", hardware: str | Path | HardwareSpec = "h100-sxm", *,
            phase: str = "decode", batch: int = 1, prompt_len: int = 1024, context: int | None = None,
            gen_len: int = 256, quant: str | QuantScheme = "bf16", kv_dtype: str | None = None,
            efficiency: str = "ideal", lm_head_all_tokens: bool = False, eta_memory: float | None = None,
            eta_compute: float | None = None, kernel_overhead_s: float | None = None) -> Report:
    """Time, FLOPs, bytes, bound and memory of one step (or one whole request for ``phase='e2e'``)."""
    _check_phase(phase)
    ctx = prompt_len if context is None else context
    check_positive(batch=batch, prompt_len=prompt_len, context=ctx, gen_len=gen_len)
    s = setup(model, hardware, quant, kv_dtype, efficiency, eta_memory=eta_memory, eta_compute=eta_compute,
              kernel_overhead_s=kernel_overhead_s)
    _check_lengths(s.model, phase, [prompt_len], [ctx], gen_len)
    r = run_phase(s, phase, np.float64(batch), np.float64(prompt_len), np.float64(ctx), gen_len, lm_head_all_tokens)
    step = r.step
    totals = Totals(
        time_s=_f(step.time_s), compute_time_s=_f(step.compute_s), memory_time_s=_f(step.memory_s),
        comm_time_s=_f(step.comm_s), overhead_time_s=_f(step.overhead_s), flops=_f(step.flops), bytes=_f(step.bytes),
        weight_bytes=_f(step.weight_bytes), activation_bytes=_f(step.activation_bytes), kv_bytes=_f(step.kv_bytes),
        arithmetic_intensity=_f(step.arithmetic_intensity), ridge_intensity=s.ridge, bound=BOUNDS[int(_f(step.bound))],
        tokens_per_s=_f(r.tokens) / _f(step.time_s),
        time_by_bound={b: _f(step.time_by_bound[i]) for i, b in enumerate(BOUNDS)}, time_by_class=_by_class(r.ops),
        ttft_s=_optional(r.ttft_s), tpot_s=_optional(r.tpot_s),
        output_tokens_per_s=None if r.output_tokens is None else _f(r.output_tokens) / _f(step.time_s),
    )
    return Report(
        model=s.model.name, hardware=s.hardware.name, phase=phase, batch=batch, prompt_len=prompt_len, context=ctx,
        gen_len=gen_len, quant=s.quant.label, weight_dtype=s.quant.weight, activation_dtype=s.quant.activation,
        kv_dtype=s.quant.kv, compute_dtype=s.quant.compute, efficiency=s.eff.mode, efficiency_sources=s.eff.sources,
        totals=totals, operators=[_operator_row(o) for o in r.ops], memory=_memory_report(r.memory),
    )


def _check_lengths(model: ModelSpec, phase: str, prompt_lens: list[int], contexts: list[int], gen_len: int) -> None:
    limit = model.max_position_embeddings
    if phase == "decode":
        check_context(max(contexts), limit)
    elif phase == "prefill":
        check_context(max(prompt_lens), limit, "prompt length")
    else:
        check_context(max(prompt_lens) + gen_len - 1, limit, "prompt length + gen length")
