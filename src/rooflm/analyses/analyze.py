"""``analyze``: one step (prefill, decode) or one request end to end, at one point, as a Report.

Names are resolved and sizes checked once (core/inputs.py); the physics is in ops/, core/roofline.py and
core/evaluate.py, and this module only assembles their results into a report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypedDict

import numpy as np
from typing_extensions import Unpack

from rooflm.analyses.critical import moe_report
from rooflm.analyses.report import Expectation, FitSuggestion, Layout, MemoryReport, OperatorRow, ProfileRef, Report, Totals
from rooflm.core import engine, evaluate, graph
from rooflm.core.evaluate import OpTotals, StepTotals
from rooflm.core.inputs import REALISTIC_EFFICIENCY, Deployment, Setup, check_lengths, check_phase, setup
from rooflm.core.memory import MemoryUse, memory_use
from rooflm.core.roofline import BOUNDS
from rooflm.errors import InvalidInputError, RooflmError
from rooflm.kinds import OP_CLASSES
from rooflm.ops.cost import Num, Op
from rooflm.specs.hardware import HardwareSpec
from rooflm.specs.model import ModelSpec
from rooflm.specs.parallel import Parallelism
from rooflm.specs.quant import QuantScheme, load_scheme
from rooflm.specs.workload import check_positive


@dataclass(frozen=True)
class PhaseResult:
    """Everything computed for a grid of workloads of one phase (arrays over the grid)."""

    ops: list[OpTotals]
    step: StepTotals
    tokens: float | np.ndarray
    memory: MemoryUse | None  # None when the caller asked for times only (rooflm.fit's predictor)
    ttft_s: np.ndarray | None = None
    tpot_s: np.ndarray | None = None
    output_tokens: np.ndarray | None = None


def phase_memory(s: Setup, phase: str, batch: Num, prompt_len: Num, context: Num,
                 gen_len: int, lm_head_all_tokens: bool = False) -> MemoryUse:
    """Per-device memory of the workload's largest step (``batch`` global), without timing anything."""
    m, q, o = s.model, s.quant, s.options
    if phase == "prefill":
        ctx = prompt_len

        def ops(n: float | np.ndarray) -> list[Op]:
            return engine.prefill_chunk_ops(s, n, prompt_len, lm_head_all_tokens)  # activations of one chunk
    elif phase == "decode":
        ctx = context

        def ops(n: float | np.ndarray) -> list[Op]:
            return graph.decode_ops(m, q, n, context, o)
    else:
        ctx = prompt_len + gen_len - 1

        def ops(n: float | np.ndarray) -> list[Op]:
            return engine.prefill_chunk_ops(s, n, prompt_len) + graph.decode_ops(m, q, n, ctx, o)
    return memory_use(m, q, s.hardware, batch, ctx, ops(s.parallel.replica_batch(batch)), ops(1.0), o,
                      capacity=s.memory_capacity)


def run_phase(s: Setup, phase: str, batch: Num, prompt_len: Num, context: Num,
              gen_len: int, lm_head_all_tokens: bool = False, with_memory: bool = True) -> PhaseResult:
    """``batch`` is global, split over the data-parallel replicas in whole sequences: the busiest runs ⌈batch / dp⌉
    (engine.py: prefill in chunks, decode from CUDA graphs, a CPU cost per step) and sets the step time.
    ``with_memory=False`` leaves the memory out (a quarter of the work of a fit's evaluation, which reads only times)."""
    b = s.parallel.replica_batch(batch)
    use = phase_memory(s, phase, batch, prompt_len, context, gen_len, lm_head_all_tokens) if with_memory else None
    if s.parallel.ep > 1 and s.parallel.dp > 1:  # an EP group routes the real sequences, not dp × the busiest's
        s = replace(s, options=replace(s.options, group_replicas=np.asarray(batch, dtype=np.float64) / b))
    if phase == "prefill":
        ops = engine.prefill(s, b, prompt_len, lm_head_all_tokens)
        return PhaseResult(ops, evaluate.sum_ops(ops), batch * prompt_len, use)
    if phase == "decode":
        ops = engine.decode(s, b, context)  # a step emits tokens_per_step tokens per sequence (1 without speculation)
        return PhaseResult(ops, evaluate.sum_ops(ops), batch * engine.tokens_per_step(s) * np.ones_like(context), use)
    pre = engine.prefill(s, b, prompt_len, lm_head_all_tokens)
    dec = engine.decode_steps(s, b, prompt_len, gen_len)
    ops = [o_.renamed(f"prefill/{o_.op.name}") for o_ in pre] + [o_.renamed(f"decode/{o_.op.name}") for o_ in dec]
    ttft = evaluate.sum_ops(pre).time_s
    decode_time = evaluate.sum_ops(dec).time_s
    tpot = decode_time / (gen_len - 1) if gen_len > 1 else np.full_like(ttft, np.nan)
    output = batch * gen_len * np.ones_like(ttft)
    return PhaseResult(ops, evaluate.sum_ops(ops), batch * (prompt_len + gen_len) * np.ones_like(ttft), use,
                       ttft, tpot, output)


# A step's totals that are sums or ratios of its operators' (analyze's "totals", a sweep's columns), in that order.
STEP_COLUMNS: tuple[str, ...] = (
    "time_s", "compute_time_s", "memory_time_s", "comm_time_s", "overhead_time_s", "flops", "bytes", "weight_bytes",
    "activation_bytes", "kv_bytes", "arithmetic_intensity", "ridge_intensity", "tokens_per_s",
)


def total_columns(s: Setup, r: PhaseResult) -> dict[str, np.ndarray | float]:
    """The step's totals by name (``STEP_COLUMNS``, then an e2e request's output tokens/s), arrays over the grid:
    the one place analyze's totals and a sweep's columns are read off a PhaseResult."""
    step = r.step
    values: list[np.ndarray | float] = [
        step.time_s, step.compute_s, step.memory_s, step.comm_s, step.overhead_s, step.flops, step.bytes,
        step.weight_bytes, step.activation_bytes, step.kv_bytes, step.arithmetic_intensity, s.ridge,
        r.tokens / step.time_s]
    out = dict(zip(STEP_COLUMNS, values, strict=True))
    if r.output_tokens is not None:
        out["output_tokens_per_s"] = r.output_tokens / step.time_s
    return out


def _f(x: np.ndarray | float) -> float:
    return float(np.asarray(x).reshape(-1)[0]) if np.size(x) else 0.0


def _by_class(ops: list[OpTotals]) -> dict[str, float]:
    out = dict.fromkeys(OP_CLASSES, 0.0)
    for o in ops:
        out[o.op.op_class] += _f(o.time_s) - _f(o.overhead_s)  # overhead is reported on its own
    return out


def _operator_row(o: OpTotals) -> OperatorRow:
    return OperatorRow(
        name=o.op.name, kind=o.op.kind, op_class=o.op.op_class, count=o.op.count, compute_dtype=o.op.compute_dtype,
        weight_shape=o.op.weight_shape, flops=_f(o.flops), bytes=_f(o.bytes), weight_bytes=_f(o.weight_bytes),
        activation_bytes=_f(o.activation_bytes), kv_bytes=_f(o.kv_bytes),
        arithmetic_intensity=_f(o.flops) / max(_f(o.bytes), 1e-30), compute_time_s=_f(o.compute_s),
        memory_time_s=_f(o.memory_s), overhead_time_s=_f(o.overhead_s), time_s=_f(o.time_s),
        bound=BOUNDS[int(_f(o.bound))], scheme=o.op.scheme or None, weight_dtype=o.op.weight_dtype or None,
        bytes_by_level={k: _f(v) for k, v in o.bytes_by_level.items()}, bound_level=_bound_level(o),
    )


def _bound_level(o: OpTotals) -> str | None:
    """The level whose time is the operator's memory time (the first on a tie, innermost first); None without bytes."""
    times = {k: _f(v) for k, v in o.time_by_level.items()}
    return max(times, key=lambda k: times[k]) if times and max(times.values()) > 0 else None


def _optional(x: np.ndarray | None) -> float | None:
    if x is None or not math.isfinite(_f(x)):
        return None
    return _f(x)


def _memory_report(mem: MemoryUse) -> MemoryReport:
    total = _f(mem.total_bytes)
    return MemoryReport(weights_bytes=mem.weights_bytes, kv_cache_bytes=_f(mem.kv_cache_bytes),
                        state_bytes=_f(mem.state_bytes),
                        activation_bytes=_f(mem.activation_bytes), total_bytes=total,
                        capacity_bytes=mem.capacity_bytes, fits=bool(_f(mem.fits)), max_batch=int(_f(mem.max_batch)),
                        shortfall_bytes=max(0.0, total - mem.capacity_bytes))


def analyze(model: str | Path | ModelSpec = "llama-3.1-8b", hardware: str | Path | HardwareSpec = "h100-sxm", *,
            phase: str = "decode", batch: int = 1, prompt_len: int = 1024, context: int | None = None,
            gen_len: int = 256, lm_head_all_tokens: bool = False, **deployment: Unpack[Deployment]) -> Report:
    """Time, FLOPs, bytes, bound and memory of one step (or one whole request for ``phase='e2e'``) on
    one device of the layout; ``batch`` is global (all data-parallel replicas)."""
    phase = check_phase(phase)
    ctx = prompt_len if context is None else context
    check_positive(batch=batch, prompt_len=prompt_len, context=ctx, gen_len=gen_len)
    s = setup(model, hardware, **deployment)
    check_lengths(s.model, phase, [prompt_len], [ctx], gen_len)
    r = run_phase(s, phase, np.float64(batch), np.float64(prompt_len), np.float64(ctx), gen_len, lm_head_all_tokens)
    columns = {k: _f(v) for k, v in total_columns(s, r).items()}
    totals = Totals(
        **{k: columns[k] for k in STEP_COLUMNS}, bound=BOUNDS[int(_f(r.step.bound))],
        time_by_bound={b: _f(r.step.time_by_bound[i]) for i, b in enumerate(BOUNDS)}, time_by_class=_by_class(r.ops),
        ttft_s=_optional(r.ttft_s), tpot_s=_optional(r.tpot_s), output_tokens_per_s=columns.get("output_tokens_per_s"),
        pipelined_tokens_per_s=_f(r.tokens) * s.parallel.pp / _f(r.step.time_s) if s.parallel.pp > 1 else None,
        **_speculation_totals(s, phase, _f(r.step.time_s), _optional(r.tpot_s)),
        calibrated=_expectation(s, deployment, phase, batch, prompt_len, ctx, gen_len, lm_head_all_tokens),
    )
    assert r.memory is not None  # run_phase computes it unless told not to
    memory = _memory_report(r.memory)
    if not memory.fits:
        memory = memory.model_copy(update={"suggestions": fit_suggestions(s, phase, batch, prompt_len, ctx, gen_len)})
    p = s.parallel
    return Report(
        model=s.model.name, hardware=s.hardware.name, phase=phase, batch=batch, prompt_len=prompt_len, context=ctx,
        gen_len=gen_len, quant=s.quant.label, weight_dtype=s.quant.weight, activation_dtype=s.quant.activation,
        kv_dtype=s.quant.kv, compute_dtype=s.quant.compute, quant_modules=_present_modules(s), efficiency=s.eff.mode,
        efficiency_sources=s.eff.sources, profile=None if s.profile is None else ProfileRef.model_validate(s.profile),
        engine=s.engine, engine_kernels=s.engine_kernels,
        layout=Layout(tp=p.tp, ep=p.ep, pp=p.pp, dp=p.dp, devices=p.devices, comm_algorithm=p.algorithm,
                      label=p.label),
        totals=totals, operators=[_operator_row(o) for o in r.ops], memory=memory,
        moe=moe_report(s, phase, batch, prompt_len, ctx) if s.model.is_moe else None,
    )


def _expectation(s: Setup, deployment: Deployment, phase: str, batch: int, prompt_len: int, context: int, gen_len: int,
                 lm_head_all_tokens: bool) -> Expectation | None:
    """An ideal report's step again in calibrated mode (one more evaluation, times only): what an engine is expected
    to take beside the roofline's bound. None for a report that is not ideal, or keywords calibrated mode refuses."""
    if s.eff.mode != "ideal":
        return None
    try:
        calibrated: Deployment = {**deployment, "efficiency": REALISTIC_EFFICIENCY}
        c = setup(s.model, s.hardware, **calibrated)
    except RooflmError:
        return None
    r = run_phase(c, phase, np.float64(batch), np.float64(prompt_len), np.float64(context), gen_len, lm_head_all_tokens,
                  with_memory=False)
    return Expectation(efficiency=c.eff.mode, time_s=_f(r.step.time_s), bound=BOUNDS[int(_f(r.step.bound))],
                       tokens_per_s=_f(total_columns(c, r)["tokens_per_s"]), ttft_s=_optional(r.ttft_s),
                       tpot_s=_optional(r.tpot_s))


class _Speculation(TypedDict, total=False):
    tokens_per_step: float
    effective_tpot_s: float | None


def _speculation_totals(s: Setup, phase: str, time_s: float, tpot_s: float | None) -> _Speculation:
    """Decode and e2e: the tokens a decode step emits per sequence and the effective TPOT (a decode step's time over
    them; e2e's tpot_s, which already counts (gen_len − 1) / E steps)."""
    if phase == "prefill":
        return {}
    per_step = engine.tokens_per_step(s)
    return {"tokens_per_step": per_step, "effective_tpot_s": time_s / per_step if phase == "decode" else tpot_s}


def _present_modules(s: Setup) -> dict[str, str]:
    """The scheme of each module class the model has (no experts in a dense model, no lm_head when tied)."""
    groups = s.model.params_by_group()
    return {m: name for m, name in s.quant.module_labels().items() if groups.get(m, 1 if m == "router" else 0)}


# What a workload that does not fit is offered: wider tensor parallelism (within the device's scale-up domain) and
# lighter weights. ``explain`` ranks its levers over LEVER_SCHEMES.
FIT_TP: tuple[int, ...] = (2, 4, 8, 16)
FIT_SCHEMES: tuple[str, ...] = ("fp8", "w4a16")
LEVER_SCHEMES: tuple[str, ...] = ("fp8", "w4a8", "w4a16", "fp4")
# The GEMM depth at which schemes' weight bytes are compared: group-wise scales (one per group of weights along K)
# make bytes per weight depend on K; 4096 is a common hidden size (Llama 3.1 8B, Qwen3 8B, Mixtral).
COMPARISON_K = 4096


def lighter_schemes(names: tuple[str, ...], current: QuantScheme, hw: HardwareSpec,
                    spec: ModelSpec | None = None) -> list[tuple[str, QuantScheme]]:
    """The schemes among ``names`` (keeping ``current``'s KV dtype) that store weights in fewer bytes than ``current``
    and whose compute dtype the device has a roof for."""
    out = []
    for name in names:
        q = load_scheme(name, current.kv, spec)
        if q.weight_bytes_per_element(COMPARISON_K) < current.weight_bytes_per_element(COMPARISON_K) \
                and q.compute in hw.supported_dtypes:
            out.append((name, q))
    return out


def fit_suggestions(s: Setup, phase: str, batch: int, prompt_len: int, context: int,
                    gen_len: int) -> list[FitSuggestion]:
    """Layouts and dtypes under which the same workload fits, nearest change first; then the largest batch that
    fits as laid out, if one does."""
    p, hw = s.parallel, s.hardware
    intra = hw.interconnect.intra_node
    domain = intra.devices_per_domain if intra else 1
    candidates: list[tuple[dict[str, int | str], Setup]] = []
    for tp in FIT_TP:
        if p.tp < tp <= domain:
            layout = Parallelism(tp=tp, ep=tp * p.dp if p.ep > 1 else 1, pp=p.pp, dp=p.dp, algorithm=p.algorithm)
            try:
                layout.check(s.model)
            except InvalidInputError:
                continue
            candidates.append(({"tp": tp, "ep": layout.ep} if layout.ep > 1 else {"tp": tp},
                               replace(s, options=replace(s.options, parallel=layout))))
    for scheme, q in lighter_schemes(FIT_SCHEMES, s.quant, hw):
        candidates.append(({"quant": scheme}, replace(s, quant=q)))
    if s.quant.kv_bytes > 1 and "fp8" in hw.supported_dtypes:
        candidates.append(({"kv_dtype": "fp8"}, replace(s, quant=s.quant.with_kv("fp8"))))
    out = []
    for change, alt in candidates:
        use = phase_memory(alt, phase, np.float64(batch), np.float64(prompt_len), np.float64(context), gen_len)
        if bool(_f(use.fits)):
            out.append(FitSuggestion(change=change, bytes_per_device=_f(use.total_bytes)))
    current = phase_memory(s, phase, np.float64(1), np.float64(prompt_len), np.float64(context), gen_len)
    max_batch = int(_f(current.max_batch))
    if max_batch >= 1:
        out.append(FitSuggestion(change={"batch": max_batch}))
    return out
