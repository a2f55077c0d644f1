"""The regime table: the usual rule of thumb's four regimes of LLM inference, computed for a model × device × scheme.

The usual summary of LLM inference is a table — batch-1 decode bound by DRAM bandwidth, small-batch prefill by
"L2 / shared memory", large-batch prefill by compute, MoE with small per-expert batches by "kernel efficiency". This
module evaluates each row on a stated workload with ``analyze`` (no physics of its own), says what weight
quantization buys there, and says so, with the numbers, where the result contradicts the table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal, cast

from typing_extensions import Unpack

from rooflm import units
from rooflm.analyses.analyze import analyze
from rooflm.analyses.report import OperatorRow, Report
from rooflm.core.inputs import Deployment
from rooflm.errors import InvalidInputError, RooflmError, named
from rooflm.specs.hardware import HardwareSpec, load_hardware
from rooflm.specs.hf_config import load_model
from rooflm.specs.model import ModelSpec
from rooflm.specs.workload import MAX_BATCH, MAX_TOKENS, check_positive

# The rows' workloads. Defensible choices, printed with the table:
# - decode at batch 1 over a 1,024-token cache: one chat user, the step reads every weight once;
# - a small prefill of one 128-token prompt: every GEMM has M = 128 rows, below an H100's ridge of 295 FLOP/B but
#   a tile's worth (the tile sizes of cuBLAS/CUTLASS are 64–256 rows), the case "small-batch prefill" names;
# - a large prefill of 8 × 1,024 tokens, one full chunk of vLLM's default 8,192 batched tokens;
# - MoE decode at batch 64 over a 1,024-token cache: a modest serving batch whose routed tokens spread over most
#   experts, leaving a few tokens per expert (Qwen3-30B-A3B, top-8 of 128: ≈ 4).
DECODE_CONTEXT = 1024
SMALL_PREFILL_TOKENS = 128
LARGE_PREFILL_BATCH, LARGE_PREFILL_TOKENS = 8, 1024
MOE_DECODE_BATCH = 64
INT4_SCHEME = "w4a16"  # weight-only int4 (GPTQ/AWQ-style): what "int4 helps" is said of
# The MoE row agrees with the rule of thumb's "kernel efficiency" when real grouped-GEMM kernels (calibrated mode) take at
# least this many times the experts' roofline time: then the kernels, not a roof, decide the time.
KERNEL_EFFICIENCY_GAP = 1.5
# What only the calibrated mode reads: the MoE row's roofline run leaves them out, so that its gap is the kernels'.
CALIBRATION_KEYS = ("eta_memory", "eta_compute", "kernel_overhead_s", "step_overhead_s", "cuda_graphs", "dequant_ops",
                    "kv_dequant_ops", "act_quant", "profile")
CACHE_LEVELS = ("l2", "smem_per_sm", "lds_per_cu", "l1", "infinity_cache", "l3")


# What binds a row when the rule of thumb holds: DRAM bandwidth, a cache level (L2 / shared memory), compute, or
# the kernels (grouped GEMMs far slower than their roofline).
Binds = Literal["dram", "cache", "compute", "kernels"]

# The analyze field a row's size reaches → the regimes flag that set it, for error messages' field.
_FLAGS: dict[tuple[str, str, str | None], str] = {("step", "prefill", "prompt_len"): "small_prefill",
                                                  ("experts", "decode", "batch"): "moe_batch"}


@dataclass(frozen=True)
class Workload:
    name: str
    phase: str
    batch: int
    prompt_len: int
    context: int
    rule_of_thumb: str  # what the usual rule of thumb says binds this row, in its words
    binds: Binds  # the same claim as data: what must bind for the row to agree with it
    focus: str  # "step": the whole step's operators; "experts": the routed experts only

    def describe(self) -> str:
        if self.phase == "decode":
            return f"decode step, batch {self.batch}, context {self.context}"
        return f"prefill of {self.batch} × {self.prompt_len} tokens"


WORKLOADS = (
    Workload("batch-1 decode", "decode", 1, DECODE_CONTEXT, DECODE_CONTEXT, "DRAM bandwidth", "dram", "step"),
    Workload("small-batch prefill", "prefill", 1, SMALL_PREFILL_TOKENS, SMALL_PREFILL_TOKENS, "L2 / shared memory",
             "cache", "step"),
    Workload("large-batch prefill", "prefill", LARGE_PREFILL_BATCH, LARGE_PREFILL_TOKENS, LARGE_PREFILL_TOKENS,
             "compute", "compute", "step"),
    Workload("MoE, small per-expert batches", "decode", MOE_DECODE_BATCH, DECODE_CONTEXT, DECODE_CONTEXT,
             "kernel efficiency", "kernels", "experts"),
)


@dataclass(frozen=True)
class Regime:
    name: str
    workload: str
    arithmetic_intensity: float  # of the focus operators: ΣFLOPs / Σbytes (from DRAM)
    ridge_intensity: float
    bound: str
    level: str | None  # the memory level that binds ("dram", "l2", ...); None when compute-bound
    time_s: float  # the whole step at the scheme asked for
    focus_time_s: float  # the focus operators' share of it (the step itself for the step rows)
    bf16_time_s: float | None
    int4_time_s: float | None
    scheme_speedup: float | None  # bf16 time / time at the scheme asked for
    quant_speedup: float | None  # bf16 time / int4 (W4A16) time: what int4 weights buy in this row
    rule_of_thumb: str
    agrees_with_rule_of_thumb: bool | None
    note: str
    tokens_per_expert: float | None = None
    kernel_efficiency_gap: float | None = None  # MoE row: calibrated experts time / ideal experts time


@dataclass(frozen=True)
class Regimes:
    model: str
    hardware: str
    quant: str
    efficiency: str
    regimes: list[Regime]
    engine_kernels: str | None = None  # the engine's part of the mode's name (Setup.engine_kernels)

    def to_json_dict(self) -> dict[str, object]:
        return {"model": self.model, "hardware": self.hardware, "quant": self.quant, "efficiency": self.efficiency,
                "engine_kernels": self.engine_kernels, "regimes": [asdict(r) for r in self.regimes]}


def _focus(r: Report, focus: str) -> list[OperatorRow]:
    return [o for o in r.operators if focus == "step" or o.op_class == "expert"]


def _intensity(ops: list[OperatorRow]) -> float:
    nbytes = sum(o.bytes for o in ops)
    return sum(o.flops for o in ops) / nbytes if nbytes else 0.0


def _bound(ops: list[OperatorRow]) -> str:
    by_bound: dict[str, float] = {}
    for o in ops:
        by_bound[o.bound] = by_bound.get(o.bound, 0.0) + o.time_s
    return max(by_bound, key=lambda b: by_bound[b])


def _level(ops: list[OperatorRow], bound: str) -> str | None:
    """The memory level that binds most of the memory-bound time: the operators' ``bound_level`` where the report
    has one (the memory hierarchy), else DRAM (the one level a flat roofline knows)."""
    if bound != "memory":
        return None
    by_level: dict[str, float] = {}
    for o in ops:
        if o.bound == "memory":
            level = o.bound_level or "dram"
            by_level[level] = by_level.get(level, 0.0) + o.time_s
    return max(by_level, key=lambda lv: by_level[lv]) if by_level else "dram"


def level_times(ops: list[OperatorRow], hw: HardwareSpec) -> dict[str, float]:
    """Each memory level's time for the operators' traffic at it, at the level's full bandwidth (innermost first)."""
    bandwidth = {lv.name: lv.bandwidth.value for lv in hw.levels} | {"dram": hw.memory_bandwidth.value}
    return {name: sum(o.bytes_by_level.get(name, 0.0) for o in ops) / bw for name, bw in bandwidth.items()}


def _level_text(ops: list[OperatorRow], hw: HardwareSpec) -> str:
    return "time per level at its bandwidth: " + ", ".join(
        f"{name} {units.seconds(t)}" for name, t in level_times(ops, hw).items())


def _time(ops: list[OperatorRow]) -> float:
    return sum(o.time_s for o in ops)


def _cache_text(hw: HardwareSpec) -> str:
    caches = [(k, hw.caches[k].value) for k in CACHE_LEVELS if k in hw.caches]
    return ", ".join(f"{k} {units.binary_bytes(v)}" for k, v in caches) or "no cache sizes on file"


def _largest_weight(ops: list[OperatorRow]) -> float:
    """Bytes of the largest per-layer weight matrix a GEMM reads (one instance; the lm_head, run once, aside)."""
    per_layer = [o for o in ops if o.weight_bytes and o.count > 1] or [o for o in ops if o.weight_bytes]
    return max((o.weight_bytes / o.count for o in per_layer), default=0.0)


def intensity_text(ai: float) -> str:
    return f"{ai:.3g}" if ai < 1000 else f"{ai:,.0f}"


def _judge(w: Workload, ops: list[OperatorRow], bound: str, level: str | None, ai: float, ridge: float,
           hw: HardwareSpec, gap: float | None) -> tuple[bool | None, str]:
    """Whether the row agrees with the rule of thumb's claim, and a sentence with the numbers either way."""
    where = f"{intensity_text(ai)} FLOP/B against a ridge of {ridge:.4g}"
    if w.binds == "dram":
        ok = bound == "memory" and level == "dram"
        return ok, f"{bound}-bound ({level or bound}): {where}"
    if w.binds == "compute":
        return bound == "compute", f"{bound}-bound: {where}"
    if w.binds == "kernels":
        if gap is None:
            return None, f"{bound}-bound on the roofline: {where}"
        ok = gap >= KERNEL_EFFICIENCY_GAP
        return ok, (f"{bound}-bound ({level or bound}) on the roofline at {where}; real grouped-GEMM kernels "
                    f"(calibrated mode) take {gap:.2f}× the roofline time"
                    + ("" if ok else f", under the {KERNEL_EFFICIENCY_GAP}× that would make kernels the limit"))
    # "cache": true only if a cache level binds.
    ok = bound == "memory" and level not in (None, "dram")
    if ok:
        return True, f"memory-bound on {level}: {where}; {_level_text(ops, hw)}"
    weights = sum(o.weight_bytes for o in ops) / max(sum(o.bytes for o in ops), 1e-30)
    if bound == "memory":
        return False, (f"DRAM-bound, not cache-bound: {where}; weight reads are {weights:.0%} of the bytes and the "
                       f"largest weight read per layer ({_largest_weight(ops) / 1e6:.3g} MB) comes once per step from DRAM "
                       f"({_cache_text(hw)}); {_level_text(ops, hw)}")
    return False, f"{bound}-bound, not cache-bound: {where}"


def _time_at(model: ModelSpec, hw: HardwareSpec, w: Workload, scheme: str, d: Deployment) -> float | None:
    """The focus operators' time (the step for step rows) with every weight in ``scheme``; None where the device
    has no roof for its math."""
    if scheme.split("+")[0] != "bf16" and "bf16" not in hw.supported_dtypes:
        return None
    try:
        r = _run(model, hw, w, {**d, "quant": scheme})
    except RooflmError:
        return None
    return _time(_focus(r, w.focus)) if w.focus != "step" else r.totals.time_s


def _run(model: ModelSpec, hw: HardwareSpec, w: Workload, d: Deployment) -> Report:
    return analyze(model, hw, phase=w.phase, batch=w.batch, prompt_len=w.prompt_len, context=w.context, **d)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _context_note(model: ModelSpec) -> str:
    """What the model's attention does with a longer context, where it is not the dense rule (the whole cache read
    each step)."""
    out = ""
    if k := model.attention.index_topk:
        out += (f"; DeepSeek sparse attention reads at most the top-{k} tokens its indexer selects per sequence, so "
                f"decode attention no longer grows with context beyond the top-{k} (the indexer still reads every "
                "cached key)")
    if model.linear_layers:
        out += (f"; its {model.linear_layers} linear-attention layers read one fixed state per sequence, the same "
                "at any context")
    return out


def _regime(model: ModelSpec, hw: HardwareSpec, w: Workload, d: Deployment) -> tuple[Regime, Report]:
    r = _run(model, hw, w, d)
    ops = _focus(r, w.focus)
    ai, bound = _intensity(ops), _bound(ops)
    level = _level(ops, bound)
    focus_time = _time(ops)
    gap = None
    if w.focus == "experts":
        roofline = cast(Deployment, {k: v for k, v in d.items() if k not in CALIBRATION_KEYS})  # d less some keys
        ideal = _time(_focus(_run(model, hw, w, {**roofline, "efficiency": "ideal"}), w.focus))
        real = _time(_focus(_run(model, hw, w, {**d, "efficiency": "calibrated"}), w.focus))
        gap = real / ideal if ideal else None
    agrees, note = _judge(w, ops, bound, level, ai, r.totals.ridge_intensity, hw, gap)
    if agrees is False:
        note = f"contradicts the rule of thumb ({w.rule_of_thumb}): {note}"
    if w.phase == "decode" and w.focus == "step":
        note += _context_note(model)
    now = focus_time if w.focus != "step" else r.totals.time_s
    bf16, int4 = _time_at(model, hw, w, "bf16", d), _time_at(model, hw, w, INT4_SCHEME, d)
    return Regime(name=w.name, workload=w.describe(), arithmetic_intensity=ai, ridge_intensity=r.totals.ridge_intensity,
                  bound=bound, level=level, time_s=r.totals.time_s, focus_time_s=focus_time, bf16_time_s=bf16,
                  int4_time_s=int4, scheme_speedup=_ratio(bf16, now), quant_speedup=_ratio(bf16, int4),
                  rule_of_thumb=w.rule_of_thumb, agrees_with_rule_of_thumb=agrees, note=note,
                  tokens_per_expert=r.moe.tokens_per_expert if r.moe and w.focus == "experts" else None,
                  kernel_efficiency_gap=gap), r


def regimes(model: str | Path | ModelSpec = "llama-3.1-8b", hardware: str | Path | HardwareSpec = "h100-sxm", *,
            context: int = DECODE_CONTEXT, small_prefill: int = SMALL_PREFILL_TOKENS,
            moe_batch: int = MOE_DECODE_BATCH, **deployment: Unpack[Deployment]) -> Regimes:
    """The usual rule of thumb's regime table for ``model`` on ``hardware`` at the deployment's scheme: one row per
    regime (the MoE row only for a model with experts), each with its intensity, bound, binding level, time and what
    int4 weights buy there."""
    check_positive(context=context, small_prefill=small_prefill, moe_batch=moe_batch)
    for name, value, limit in (("small_prefill", small_prefill, MAX_TOKENS), ("moe_batch", moe_batch, MAX_BATCH)):
        if value > limit:
            raise InvalidInputError(f"{named(name)} must be at most {limit:,}, got {value}", name)
    spec, hw = load_model(model), load_hardware(hardware)
    rows, reports = [], []
    for w in WORKLOADS:
        if w.focus == "experts" and not spec.is_moe:
            continue
        if w.phase == "decode":
            w = replace(w, context=context, prompt_len=context, batch=moe_batch if w.focus == "experts" else w.batch)
        elif w.batch == 1:
            w = replace(w, prompt_len=small_prefill, context=small_prefill)
        try:
            row, report = _regime(spec, hw, w, deployment)
        except RooflmError as exc:  # the row's own size is at fault: name the flag that set it
            exc.field = _FLAGS.get((w.focus, w.phase, exc.field), exc.field)
            raise
        rows.append(row)
        reports.append(report)
    first = reports[0]
    return Regimes(first.model, first.hardware, first.quant, first.efficiency, rows, first.engine_kernels)
