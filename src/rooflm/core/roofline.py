"""Evaluate operators on a device: time = max(compute, memory) + launch overhead, per kernel.

T_math = FLOPs / (peak · η_compute), T_mem = bytes / (bandwidth · η_memory). A step is the sum of
its operators (a per-operator roofline), not one aggregate point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np

from rooflm.core.levels import NOT_RESIDENT, Residency, cache_times, level_bytes
from rooflm.errors import InvalidInputError
from rooflm.ops.comm import collective_time
from rooflm.ops.cost import Num, Op, any_nonzero
from rooflm.specs.engine_kernels import GemmTable, MoeTable
from rooflm.specs.figures import MAX_OVERHEAD_S
from rooflm.specs.hardware import HardwareSpec, Link
from rooflm.specs.kernels import KernelCurve, base_family, curves_for, find_curve
from rooflm.specs.levels import DRAM
from rooflm.specs.workload import check_choice, check_number

EfficiencyMode = Literal["ideal", "calibrated"]
BOUNDS: tuple[str, ...] = ("compute", "memory", "communication", "overhead")
# The smallest efficiency override taken: below 0.1% of a roof is a unit slip, not a kernel, and 5e-324 would make
# every time infinite (a report that is no longer JSON).
MIN_FRACTION = 1e-3


# The key of the factors that apply to operators on no measured kernel family (norms, activations, a device without
# curves): they scale the flat fractions and the per-kernel overhead.
OTHER = "other"
# The key of a factor on every family at once (it multiplies the family's own): what a family no measured point ran
# on takes from the others.
ALL = "all"


@dataclass(frozen=True)
class Factors:
    """Multiplicative corrections to calibrated mode's figures, fitted by `rooflm fit` (1: the catalog's figure).
    Per kernel family (a key of data/kernels.toml, or ``OTHER``): ``bandwidth`` scales the sustained bandwidth
    fraction, ``compute`` the compute fraction (its curve over M keeps its shape), ``fixed`` the fixed time of each
    kernel (the family's fill time and the launch overhead); the ``ALL`` entry multiplies every family's.
    ``step`` scales the engine's per-step CPU time."""

    bandwidth: dict[str, float] = field(default_factory=dict)
    compute: dict[str, float] = field(default_factory=dict)
    fixed: dict[str, float] = field(default_factory=dict)
    step: float = 1.0

    def of(self, which: str, family: str) -> float:
        """The factor of ``family`` (a variant falls back to its base family; unknown: 1). Operators priced on a
        measured family's curve take that family's; the others (priced on the flat fractions) ``OTHER``'s."""
        table: dict[str, float] = getattr(self, which)
        if not table:
            return 1.0
        key = family or OTHER
        return table.get(ALL, 1.0) * table.get(key, table.get(base_family(key), 1.0))


NO_FACTORS = Factors()


@dataclass(frozen=True)
class Efficiency:
    """Achievable fractions of the roofs and the fixed cost of each kernel launch."""

    mode: EfficiencyMode
    memory: float
    compute: dict[str, float]
    kernel_overhead_s: float
    sources: dict[str, str] = field(default_factory=dict)
    # Optional, from measurements: η_compute of a GEMM vs its rows M, per dtype, as ((M, ...), (η, ...));
    # per-operator-kind overheads and memory fractions that replace the flat ones for that kind.
    compute_curve: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = field(default_factory=dict)
    overhead_by_kind: dict[str, float] = field(default_factory=dict)
    memory_by_kind: dict[str, float] = field(default_factory=dict)
    # Measured kernel families of the device's class (data/kernels.toml): they replace the flat fractions
    # for the GEMMs they cover.
    kernels: dict[str, KernelCurve] = field(default_factory=dict)
    # The fraction of communication time hidden behind compute (inputs.setup's comm_overlap; 0: none).
    comm_overlap: float = 0.0
    # A serving engine's measured GEMM tables on this device, by kernel family (specs.engine_kernels; calibrated mode
    # with an engine asked for): they price the dense GEMMs of their families in place of the curves above.
    engine_gemm: dict[str, GemmTable] = field(default_factory=dict)
    # Its measured MoE layers, by the experts' quantization scheme: they price a MoE layer's routed experts (GEMMs,
    # activation, activation quantization) together where the layer's configuration was measured.
    engine_moe: dict[str, MoeTable] = field(default_factory=dict)

    def engine_moe_time(self, op: Op) -> np.ndarray | None:
        """Seconds of one whole MoE layer's routed experts at the op's tokens, where the engine measured this layer's
        configuration; None for every other operator and configuration."""
        if op.moe_shape is None or not self.engine_moe:
            return None
        table = self.engine_moe.get(op.moe_scheme)
        return None if table is None else table.time(op.moe_shape, op.moe_tokens)

    def in_engine_gemm(self, op: Op) -> bool:
        """The quantization of a dense GEMM's input whose engine-measured time already includes it."""
        table = self.engine_gemm.get(op.quantizes) if op.quantizes else None
        return table is not None and table.act_quant_included

    def engine_table(self, op: Op) -> GemmTable | None:
        """The engine's table for a dense weight GEMM (one [M,K]×[K,N] per instance, not a batched or grouped one) of
        a family it measured; None for every other operator."""
        if op.kind != "gemm" or not op.weight_shape or not self.engine_gemm:
            return None
        if np.ndim(op.instances) or float(op.instances) != 1.0:
            return None
        return self.engine_gemm.get(op.family)
    factors: Factors = NO_FACTORS

    def kernel_curve(self, family: str) -> KernelCurve | None:
        """The family's curve, or its base family's for a variant (grouped MoE GEMMs, small attention heads) not
        measured separately."""
        return find_curve(self.kernels, family)

    def compute_fraction(self, dtype: str) -> float:
        return self.compute.get(dtype, self.compute["default"])

    def gemm_compute_fraction(self, dtype: str, rows: Num) -> Num:
        """η_compute of a GEMM with ``rows`` input rows: small-M GEMMs cannot fill the matrix units, so a measured
        curve (interpolated in log M, flat beyond its ends) replaces the flat fraction when there is one."""
        curve = self.compute_curve.get(dtype)
        if curve is None:
            return self.compute_fraction(dtype)
        m, eta = curve
        return np.interp(np.log(np.maximum(rows, 1.0)), np.log(m), eta)

    def overhead_for(self, kind: str) -> float:
        return self.overhead_by_kind.get(kind, self.kernel_overhead_s)

    def memory_for(self, kind: str) -> float:
        return self.memory_by_kind.get(kind, self.memory)


def efficiency_for(hw: HardwareSpec, mode: str = "ideal", *, memory: float | None = None,
                   compute: float | None = None, kernel_overhead_s: float | None = None) -> Efficiency:
    """``ideal``: η = 1 and no overhead (the physical bound). ``calibrated``: the hardware file's
    measured fractions (any case). Any factor can be overridden: a fraction in [MIN_FRACTION, 1], an overhead in
    [0, MAX_OVERHEAD_S] (NaN, inf and 1e308 would reach the report as non-JSON numbers)."""
    mode = check_choice(mode, "efficiency", get_args(EfficiencyMode))
    if memory is not None:
        memory = check_number(memory, "eta_memory", MIN_FRACTION, 1, label="memory efficiency")
    if compute is not None:
        compute = check_number(compute, "eta_compute", MIN_FRACTION, 1, label="compute efficiency")
    if kernel_overhead_s is not None:
        kernel_overhead_s = check_number(kernel_overhead_s, "kernel_overhead", 0, MAX_OVERHEAD_S, unit="s",
                                         label="kernel overhead")
    if mode == "ideal":
        eff = Efficiency("ideal", 1.0, {"default": 1.0}, 0.0, {"all": "ideal: datasheet roofs, no overhead"})
    else:
        e = hw.efficiency
        eff = Efficiency(
            "calibrated", e.memory.value, {d: f.value for d, f in e.compute.items()}, e.kernel_overhead.value,
            {"memory": e.memory.source, "kernel_overhead": e.kernel_overhead.source,
             **{f"compute.{d}": f.source for d, f in e.compute.items()},
             **{f"compute_curve.{d}": c.source for d, c in e.compute_curve.items()},
             **{f"kernel_overhead.{k}": f.source for k, f in e.kernel_overhead_by_kind.items()},
             **{f"memory.{k}": f.source for k, f in e.memory_by_kind.items()},
             **_kernel_sources(e.kernel_class, curves_for(e.kernel_class)),
             **_kernel_sources("measured", e.kernel_families)},
            {d: (tuple(c.rows), tuple(c.value)) for d, c in e.compute_curve.items()},
            {k: f.value for k, f in e.kernel_overhead_by_kind.items()},
            {k: f.value for k, f in e.memory_by_kind.items()},
            curves_for(e.kernel_class, e.kernel_families),
        )
    return Efficiency(
        eff.mode,
        eff.memory if memory is None else memory,
        eff.compute if compute is None else {"default": compute},
        eff.kernel_overhead_s if kernel_overhead_s is None else kernel_overhead_s,
        eff.sources,
        # An override is one flat figure: it replaces the measured curve or per-kind figures too.
        eff.compute_curve if compute is None else {},
        eff.overhead_by_kind if kernel_overhead_s is None else {},
        eff.memory_by_kind if memory is None else {},
        # Any flat override replaces the measured families too: the user asked for one figure.
        eff.kernels if memory is None and compute is None else {},
    )


def _kernel_sources(kernel_class: str | None, kernels: dict[str, KernelCurve]) -> dict[str, str]:
    out: dict[str, str] = {}
    for family, c in kernels.items():
        key = f"kernels.{kernel_class}.{family}"
        out[f"{key}.memory"] = c.memory.source
        out[f"{key}.fill"] = c.fill.source
        if c.compute:
            out[f"{key}.compute"] = c.compute.source
    return out


@dataclass(frozen=True)
class OpTiming:
    """Time of all ``count`` instances of one operator (arrays broadcast like the sizes)."""

    op: Op
    compute_s: np.ndarray
    memory_s: np.ndarray
    comm_s: np.ndarray
    overhead_s: np.ndarray
    # The memory hierarchy (rooflm.core.levels): bytes and seconds of all instances at each level, innermost first, DRAM
    # last; memory_s is the largest of the seconds. Only DRAM on a device without levels.
    bytes_by_level: dict[str, np.ndarray] = field(default_factory=dict)
    time_by_level: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def time_s(self) -> np.ndarray:
        return np.maximum(np.maximum(self.compute_s, self.memory_s), self.comm_s) + self.overhead_s


def link_for(hw: HardwareSpec, group: int) -> Link:
    """The link a collective over ``group`` devices is bound by: within a node (NVLink, ICI domain)
    while the group fits in one, else the inter-node network."""
    ic = hw.interconnect
    if ic.intra_node and group <= ic.intra_node.devices_per_domain:
        return ic.intra_node
    if ic.inter_node:
        return ic.inter_node
    raise InvalidInputError(f"{hw.name} has no interconnect figures for {group} devices; "
                            "add an [interconnect] section to its hardware file")


def comm_time(op: Op, hw: HardwareSpec, eff: Efficiency | None = None) -> np.ndarray:
    """T_comms of the op's collective on its link (ops.comm.collective_time: the bandwidth bound in ideal mode, the
    engine's algorithm in calibrated mode), less the fraction ``eff.comm_overlap`` hidden behind compute."""
    c = op.cost
    if not any_nonzero(c.comm_bytes) and not c.comm_steps:
        return np.zeros(())
    link = link_for(hw, op.comm_group)
    mode, hidden = (eff.mode, eff.comm_overlap) if eff is not None else ("calibrated", 0.0)
    return op.count * collective_time(c, op.comm_group, link, mode) * (1.0 - hidden)


def vector_rate(hw: HardwareSpec) -> float | None:
    """Vector-unit instructions per second: the fp32 (CUDA-core) peak counts an FMA as 2 FLOPs."""
    fp32 = hw.peak_flops.get("fp32")
    return fp32.value / 2 if fp32 else None


def vector_time(op: Op, hw: HardwareSpec, eff: Efficiency) -> Num:
    """Seconds of the op's vector-unit work (dequantization) at the fp32 rate; none on a device without one."""
    rate = vector_rate(hw)
    if not rate or not any_nonzero(op.cost.vector_ops):
        return 0.0
    return op.count * np.asarray(op.cost.vector_ops, dtype=np.float64) / (rate * eff.compute_fraction("fp32"))


def gemm_rows_per_instance(op: Op) -> Num:
    """M of one instance (an expert, a head): what fills the matrix units or not."""
    if any_nonzero(op.gemm_m) or not op.weight_shape:
        return op.gemm_m
    return np.asarray(op.cost.flops, dtype=np.float64) / (2.0 * op.weight_shape[0] * op.weight_shape[1])


def time_on_kernel_curve(op: Op, hw: HardwareSpec, eff: Efficiency, curve: KernelCurve,
                     resident: Residency = NOT_RESIDENT) -> OpTiming:
    """An operator on a measured kernel family: T_math at the family's compute fraction for its M, T_mem at its
    sustained bandwidth fraction plus the kernel's fixed fill time (why small matrices miss the peak). A GEMM gets
    no vector-op dequantization cost: the measured kernel times include it. Attention keeps its KV-cache
    dequantization (the attention kernels were measured on 16-bit caches)."""
    c, n = op.cost, op.count
    flops = np.asarray(c.flops, dtype=np.float64)
    eta: float | np.ndarray
    if curve.compute is not None:
        m = np.maximum(gemm_rows_per_instance(op), 1.0)
        eta = np.interp(np.log(m), np.log(curve.compute.rows), curve.compute.value)
    elif op.kind == "gemm":
        eta = eff.gemm_compute_fraction(op.compute_dtype, gemm_rows_per_instance(op))
    else:
        eta = eff.compute_fraction(op.compute_dtype)
    f, family = eff.factors, op.family
    compute = (n * flops / (hw.peak(op.compute_dtype) * eta * f.of("compute", family)) if any_nonzero(flops)
               else np.zeros(()))
    if op.kind != "gemm":
        compute = compute + vector_time(op, hw, eff)
    by_level = level_bytes(op, hw, resident)
    memory = (n * np.asarray(by_level[DRAM], dtype=np.float64)
              / (hw.memory_bandwidth.value * curve.memory.value * f.of("bandwidth", family))
              + n * op.kernels * curve.fill.value * f.of("fixed", family) * has_work(op))
    overhead = launch_overhead(op, eff, family)
    return _with_levels(OpTiming(op, compute, memory, comm_time(op, hw, eff), overhead), hw, by_level)


def time_on_engine_table(op: Op, hw: HardwareSpec, eff: Efficiency, table: GemmTable,
                         resident: Residency = NOT_RESIDENT) -> OpTiming:
    """A dense GEMM at the time its engine measured for its shape (M rows, the weight's K × N): fill, tile
    quantization, dequantization and the kernel's efficiency are all in that one figure. It is booked to the roof
    that binds at the datasheet figures (the other keeps its datasheet time), so the operator's bound names the same
    resource as in ideal mode; the launch overhead comes on top, as for every kernel."""
    k, n = op.weight_shape or (0, 0)
    measured = op.count * table.time(gemm_rows_per_instance(op), n, k) * has_work(op)
    flops = np.asarray(op.cost.flops, dtype=np.float64)
    by_level = level_bytes(op, hw, resident)
    compute = op.count * flops / hw.peak(op.compute_dtype) if any_nonzero(flops) else np.zeros(())
    memory = op.count * np.asarray(by_level[DRAM], dtype=np.float64) / hw.memory_bandwidth.value
    compute_bound = compute >= memory
    compute, memory = np.where(compute_bound, measured, compute), np.where(compute_bound, memory, measured)
    return _with_levels(OpTiming(op, compute, memory, comm_time(op, hw, eff), launch_overhead(op, eff)), hw, by_level)


def time_on_engine_moe(op: Op, hw: HardwareSpec, eff: Efficiency, layer_s: np.ndarray,
                       resident: Residency = NOT_RESIDENT) -> OpTiming:
    """One of a MoE layer's routed-expert operators at its share of the layer's measured time: the gate/up and down
    GEMMs in proportion to their weights (2:1 for gated experts); the activation and its quantization run inside the
    engine's fused module, so they take no time of their own. The GEMMs are booked to the roof that binds at the
    datasheet figures, as in time_on_engine_table, and never below it (a share below the datasheet time would only
    say the 2:1 split is off for this kernel)."""
    if op.kind != "gemm" or not op.weight_shape or op.moe_shape is None:
        return inside_measured_kernel(op, hw, eff, resident)
    by_level = level_bytes(op, hw, resident)
    k, n = op.weight_shape
    hidden, inter, *_ = op.moe_shape
    width = inter / op.moe_shape[4]
    share = k * n / (3.0 * hidden * width)
    flops = np.asarray(op.cost.flops, dtype=np.float64)
    compute = op.count * flops / hw.peak(op.compute_dtype) if any_nonzero(flops) else np.zeros(())
    memory = op.count * np.asarray(by_level[DRAM], dtype=np.float64) / hw.memory_bandwidth.value
    measured = np.maximum(op.count * layer_s * share, np.maximum(compute, memory)) * has_work(op)
    compute_bound = compute >= memory
    compute, memory = np.where(compute_bound, measured, compute), np.where(compute_bound, memory, measured)
    return _with_levels(OpTiming(op, compute, memory, comm_time(op, hw, eff), launch_overhead(op, eff)), hw, by_level)


def inside_measured_kernel(op: Op, hw: HardwareSpec, eff: Efficiency, resident: Residency = NOT_RESIDENT) -> OpTiming:
    """An operator that runs inside a kernel the engine measured whole (a MoE layer's activation, an input
    quantization its GEMM's measured time includes): no time of its own; its bytes are still reported."""
    zero = np.zeros(())
    by_level = level_bytes(op, hw, resident)
    return OpTiming(op, zero, zero, comm_time(op, hw, eff), zero,
                    bytes_by_level={k: op.count * np.asarray(v, dtype=np.float64) for k, v in by_level.items()},
                    time_by_level=dict.fromkeys(by_level, zero))


def has_work(op: Op) -> np.ndarray:
    """1 at the points where the op has work, 0 elsewhere: in a sweep, an operator that only some points run (the
    attention over earlier prefill chunks) launches nothing, and fills no pipeline, at the others."""
    c = op.cost
    busy = np.asarray(c.flops) + np.asarray(c.bytes) + np.asarray(c.vector_ops) + np.asarray(c.comm_bytes)
    return np.where(busy > 0, 1.0, 0.0) if np.ndim(busy) else np.asarray(1.0)


def launch_overhead(op: Op, eff: Efficiency, family: str = "") -> np.ndarray:
    """Launch cost of the op's kernels, at the points where it has work (the engine's per-step CPU time, a ``host``
    operator, scaled by the step factor; a kernel's by its family's fixed-cost factor)."""
    f = eff.factors
    scale = f.step if op.kind == "host" else f.of("fixed", family)
    return np.asarray(float(op.count * op.kernels * eff.overhead_for(op.kind) * scale)) * has_work(op)


def time_op(op: Op, hw: HardwareSpec, eff: Efficiency, resident: Residency = NOT_RESIDENT) -> OpTiming:
    """T = max(T_math, T_mem, T_comms) + launch overhead. T_math adds the vector-unit work (dequantization)
    to the tensor-core time: it sits in the same kernel's main loop. Devices without a vector roof in their
    file (the TPUs here) get no vector cost. GEMMs and attention of a measured kernel family take its curves
    instead.
    T_mem is the largest time over the memory levels (rooflm.core.levels; ``resident``: data kept on chip across
    steps), DRAM's at η_memory."""
    c = op.cost
    n = op.count
    # A device's own measured attention bandwidth (efficiency.memory_by_kind, as `rooflm measure` writes it)
    # outranks its class's curves, which were measured on other devices of the class.
    layer_s = eff.engine_moe_time(op)
    if layer_s is not None:
        return time_on_engine_moe(op, hw, eff, layer_s, resident)
    if eff.in_engine_gemm(op):
        return inside_measured_kernel(op, hw, eff, resident)
    table = eff.engine_table(op)
    if table is not None:
        return time_on_engine_table(op, hw, eff, table, resident)
    on_curve = op.kind == "gemm" or (op.kind == "attention" and "attention" not in eff.memory_by_kind)
    curve = eff.kernel_curve(op.family) if on_curve else None
    if curve is not None:
        return time_on_kernel_curve(op, hw, eff, curve, resident)
    flops = np.asarray(c.flops, dtype=np.float64)
    eta: float | np.ndarray = eff.compute_fraction(op.compute_dtype)
    if op.kind == "gemm" and op.weight_shape and op.compute_dtype in eff.compute_curve:
        eta = eff.gemm_compute_fraction(op.compute_dtype, gemm_rows_per_instance(op))
    f = eff.factors
    roof = hw.peak(op.compute_dtype) * eta * f.of("compute", OTHER) if any_nonzero(flops) else np.inf
    compute = n * flops / roof
    compute = compute + vector_time(op, hw, eff)
    by_level = level_bytes(op, hw, resident)
    memory = n * np.asarray(by_level[DRAM], dtype=np.float64) / (hw.memory_bandwidth.value * eff.memory_for(op.kind)
                                                                 * f.of("bandwidth", OTHER))
    overhead = launch_overhead(op, eff)
    return _with_levels(OpTiming(op, compute, memory, comm_time(op, hw, eff), overhead), hw, by_level)


def _with_levels(t: OpTiming, hw: HardwareSpec, by_level: dict[str, Num]) -> OpTiming:
    """The timing with its per-level bytes and seconds; its memory time the largest over the levels (DRAM's
    alone on a device without levels: the classic roofline, unchanged)."""
    n = t.op.count
    times = {**cache_times(t.op, hw, by_level), DRAM: t.memory_s}
    memory = t.memory_s
    for name in times:
        if name != DRAM:
            memory = np.maximum(memory, times[name])
    # The constructor, not dataclasses.replace: this runs once per operator evaluation, and replace's field
    # introspection was a tenth of it.
    return OpTiming(t.op, t.compute_s, memory, t.comm_s, t.overhead_s,
                    bytes_by_level={k: n * np.asarray(v, dtype=np.float64) for k, v in by_level.items()},
                    time_by_level=times)
