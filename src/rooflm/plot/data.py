"""What each figure shows, taken from the public API (analyze, sweep, critical_batch, serve_traffic, load_hardware).

No physics here: every number is a field of a Report, a SweepResult, a CriticalBatch or a ServingResult, or a
HardwareSpec's datasheet figure (its peaks and ridges). The drawing modules (``mpl`` for PNG/SVG/PDF,
``interactive`` for HTML and the web page) take the dataclasses built here, so a figure's static and
interactive versions always show the same numbers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import rooflm
from rooflm.analyses.report import Report
from rooflm.analyses.sweep import SweepResult
from rooflm.core.inputs import DEFAULTS, Deployment
from rooflm.specs.hardware import HardwareSpec
from rooflm.specs.model import ModelSpec
from rooflm.units import mode_label

# Roofs worth drawing: the formats LLM inference runs its math in. A scheme's own roof is added if missing.
ROOF_DTYPES: tuple[str, ...] = ("bf16", "fp8", "int8", "int4", "fp4")
# The batch trajectory: powers of two, far enough to cross any catalog device's ridge.
DEFAULT_TRAJECTORY: tuple[int, ...] = tuple(2**i for i in range(13))
DEFAULT_BATCHES: tuple[int, ...] = tuple(2**i for i in range(12))


WORKLOAD_KEYS: tuple[str, ...] = ("model", "hardware", "phase", "batch", "prompt_len", "context", "gen_len",
                                  "lm_head_all_tokens")


class QueryArgs(Deployment, total=False):
    """Keyword arguments of a figure: those of ``rooflm.analyze`` (the workload and the deployment)."""

    model: str | Path | ModelSpec
    hardware: str | Path | HardwareSpec
    phase: str
    batch: int
    prompt_len: int
    context: int | None
    gen_len: int
    lm_head_all_tokens: bool


@dataclass(frozen=True)
class Query:
    """The inputs of one analysis; figures vary one axis (batch or context) and keep the rest.

    ``deployment`` holds the keywords every API entry point shares (quant, kv_dtype, efficiency, tp, ep,
    …; see ``rooflm.core.inputs.Deployment``), passed through untouched."""

    model: str | Path | ModelSpec = "llama-3.1-8b"
    hardware: str | Path | HardwareSpec = "h100-sxm"
    phase: str = "decode"
    batch: int = 1
    prompt_len: int = 1024
    context: int | None = None
    gen_len: int = 256
    lm_head_all_tokens: bool = False
    deployment: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, **args: Any) -> Query:
        """From ``rooflm.analyze``'s keyword arguments, workload and deployment mixed as the API takes them."""
        workload = {k: v for k, v in args.items() if k in WORKLOAD_KEYS}
        return cls(**workload, deployment={k: v for k, v in args.items() if k not in WORKLOAD_KEYS})

    @classmethod
    def from_report(cls, report: Report, **overrides: Any) -> Query:
        """The query that made ``report``. Efficiency overrides and MoE routing options are not in a report:
        pass them again (and pass ``model=`` when the report's model came from a config.json outside the
        catalog)."""
        # A report's quant label is "<scheme>" or "<scheme>+kv-<dtype>"; its kv_dtype says the latter.
        layout = report.layout
        args: dict[str, Any] = {
            "model": report.model, "hardware": report.hardware, "phase": report.phase, "batch": report.batch,
            "prompt_len": report.prompt_len, "context": report.context, "gen_len": report.gen_len,
            "quant": report.quant.split("+kv-")[0], "kv_dtype": report.kv_dtype, "efficiency": report.efficiency,
            "tp": layout.tp, "ep": layout.ep, "pp": layout.pp, "dp": layout.dp, "comm_algorithm": layout.comm_algorithm,
        }
        return cls.of(**(args | overrides))

    @property
    def quant(self) -> str:
        return str(self.deployment.get("quant") or DEFAULTS["quant"])

    def replace(self, **changes: Any) -> Query:
        """A copy with workload fields and/or deployment keywords changed."""
        workload = {k: v for k, v in changes.items() if k in WORKLOAD_KEYS}
        deployment = dict(self.deployment) | {k: v for k, v in changes.items() if k not in WORKLOAD_KEYS}
        return dataclasses.replace(self, **workload, deployment=deployment)

    def analyze(self, **changes: Any) -> Report:
        q = self.replace(**changes)
        return rooflm.analyze(q.model, q.hardware, phase=q.phase, batch=q.batch, prompt_len=q.prompt_len,
                              context=q.context, gen_len=q.gen_len, lm_head_all_tokens=q.lm_head_all_tokens,
                              **q.deployment)

    def sweep(self, batch: Sequence[int]) -> SweepResult:
        """The same workload at every batch in ``batch`` (one vectorised evaluation)."""
        return rooflm.sweep(self.model, self.hardware, phase=self.phase, batch=list(batch),
                            prompt_len=[self.prompt_len], context=None if self.context is None else [self.context],
                            gen_len=self.gen_len, lm_head_all_tokens=self.lm_head_all_tokens, **self.deployment)

    def critical_batch(self) -> rooflm.CriticalBatch:
        context = self.prompt_len if self.context is None else self.context
        return rooflm.critical_batch(self.model, self.hardware, context=context, **self.deployment)

    def hardware_spec(self) -> HardwareSpec:
        return rooflm.load_hardware(self.hardware)


def workload_words(report: Report) -> str:
    """The phase and its sizes, as a figure title says them."""
    if report.phase == "decode":
        return f"decode · context {report.context:,}"
    if report.phase == "prefill":
        return f"prefill · prompt {report.prompt_len:,} tokens"
    return f"whole request · prompt {report.prompt_len:,}, {report.gen_len:,} output tokens"


def title(report: Report, hw: HardwareSpec, *, batch: bool = True, scheme: bool = True) -> str:
    parts = [report.model, hw.display_name]
    if scheme:
        parts.append(report.quant)
    if report.layout.devices > 1:
        parts.append(report.layout.label)
    parts.append(workload_words(report))
    if batch:
        parts.append(f"batch {report.batch:,}")
    parts.append(mode_label(report.efficiency))
    return " · ".join(parts)


# ---------------------------------------------------------------- roofline


@dataclass(frozen=True)
class Roof:
    """A flat compute roof; dtypes that share a peak share a roof ("fp8 / int8")."""

    label: str
    peak_flops: float
    ridge: float
    is_scheme_roof: bool


@dataclass(frozen=True)
class OpPoint:
    name: str
    op_class: str
    intensity: float
    flops_per_s: float
    time_share: float
    bound: str


@dataclass(frozen=True)
class StepPoint:
    """The step's aggregate point: total FLOPs / total bytes, and FLOPs / step time."""

    batch: int
    intensity: float
    flops_per_s: float
    bound: str
    fits: bool


@dataclass(frozen=True)
class RooflineData:
    title: str
    bandwidth: float
    roofs: list[Roof]
    scheme_dtype: str
    operators: list[OpPoint]
    not_drawn: list[str]  # operators without FLOPs (embedding lookup, KV-cache write): intensity 0
    communication: list[str]  # collectives: their time is on the interconnect, not on this roofline
    communication_share: float
    step: StepPoint
    trajectory: list[StepPoint]
    ridge_intensity: float


def _roofs(hw: HardwareSpec, scheme_dtype: str) -> list[Roof]:
    wanted = [d for d in hw.supported_dtypes if d in ROOF_DTYPES or d == scheme_dtype]
    by_peak: dict[float, list[str]] = {}
    for d in wanted:
        by_peak.setdefault(hw.peak(d), []).append(d)
    return [Roof(" / ".join(ds), peak, hw.ridge(ds[0]), scheme_dtype in ds) for peak, ds in sorted(by_peak.items())]


def roofline_data(report: Report, query: Query | None = None,
                  trajectory: Sequence[int] | None = DEFAULT_TRAJECTORY) -> RooflineData:
    """The device's roofs, the report's operators and the step's aggregate point as batch grows."""
    q = query or Query.from_report(report)
    hw = q.hardware_spec()
    t = report.totals
    drawn = [o for o in report.operators if o.flops > 0 and o.bytes > 0 and o.time_s > 0]
    ops = [OpPoint(o.name, o.op_class, o.arithmetic_intensity, o.flops / o.time_s, o.time_s / t.time_s, o.bound)
           for o in drawn]
    # Operators without FLOPs (embedding lookup, KV-cache write) have intensity 0: off a log axis.
    # Collectives run on the interconnect, whose roof is not this one.
    comm = [o.name for o in report.operators if o.op_class == "communication" and o not in drawn]
    not_drawn = [o.name for o in report.operators if o not in drawn and o.name not in comm]
    comm_share = sum(o.time_s for o in report.operators if o.name in comm) / t.time_s
    step = StepPoint(report.batch, t.arithmetic_intensity, t.flops / t.time_s, t.bound, report.memory.fits)
    points: list[StepPoint] = []
    if trajectory:
        s = q.sweep(sorted(set(trajectory)))
        c = s.columns
        points = [StepPoint(int(b), float(ai), float(f / tm), str(bd), bool(fit)) for b, ai, f, tm, bd, fit in zip(
            s.axes["batch"], c["arithmetic_intensity"], c["flops"], c["time_s"], c["bound"], c["fits"], strict=True)]
    return RooflineData(title(report, hw), hw.memory_bandwidth.value, _roofs(hw, report.compute_dtype),
                        report.compute_dtype, ops, not_drawn, comm, comm_share, step, points, t.ridge_intensity)


# ---------------------------------------------------------------- batch


@dataclass(frozen=True)
class BatchSeries:
    label: str
    batch: list[int]
    time_s: list[float]
    tokens_per_s: list[float]
    bound: list[str]
    fits: list[bool]
    max_batch: int
    critical_batch: int | None
    critical_batch_beyond_memory: int | None


@dataclass(frozen=True)
class BatchData:
    title: str
    phase: str
    series: list[BatchSeries]


def batch_data(query: Query, batches: Sequence[int] = DEFAULT_BATCHES, quants: Sequence[str] | None = None,
               hardwares: Sequence[str | Path | HardwareSpec] | None = None) -> BatchData:
    """Time per step and tokens/s against batch, one series per (hardware, scheme)."""
    hw_list = list(hardwares) if hardwares else [query.hardware]
    quant_list = list(quants) if quants else [query.quant]
    series: list[BatchSeries] = []
    first: Report | None = None
    for hw_name in hw_list:
        for quant in quant_list:
            q = query.replace(hardware=hw_name, quant=quant)
            report = q.analyze(batch=min(batches))
            first = first or report
            s = q.sweep(batches)
            c = s.columns
            # Catalog names (h100-sxm, mi300x): display names are too long for a legend of several devices.
            parts = ([q.hardware_spec().name] if len(hw_list) > 1 else []) + (
                [report.quant] if len(quant_list) > 1 else [])
            cb = q.critical_batch() if q.phase == "decode" else None
            series.append(BatchSeries(
                " · ".join(parts) or report.quant, [int(b) for b in s.axes["batch"]], c["time_s"].tolist(),
                c["tokens_per_s"].tolist(), [str(b) for b in c["bound"]], [bool(f) for f in c["fits"]],
                int(c["max_batch"][0]), cb.critical_batch if cb else None,
                cb.critical_batch_unconstrained if cb and cb.critical_batch is None else None))
    assert first is not None
    hw0 = rooflm.load_hardware(hw_list[0])
    head = [first.model, hw0.display_name if len(hw_list) == 1 else "several devices"]
    if len(quant_list) == 1:
        head.append(first.quant)
    head.append(workload_words(first))
    head.append(mode_label(first.efficiency))
    return BatchData(" · ".join(head), query.phase, series)


# ---------------------------------------------------------------- breakdown


@dataclass(frozen=True)
class BreakdownData:
    title: str
    axis: Literal["batch", "context"]
    x: list[int]
    layers: dict[str, list[float]]  # op class (or "overhead") → seconds per x
    total_s: list[float]
    fits: list[bool]


def breakdown_data(query: Query, axis: Literal["batch", "context"] = "batch",
                   values: Sequence[int] | None = None) -> BreakdownData:
    """Step time split by operator class at each batch (or context), from each report's time_by_class."""
    xs = sorted(set(values or (DEFAULT_BATCHES if axis == "batch" else tuple(2**i for i in range(7, 18)))))
    reports = [query.analyze(**{axis: x}) for x in xs]
    # time_by_class leaves the kernels' launch overhead out: it is reported on its own, and drawn so.
    layers: dict[str, list[float]] = {c: [r.totals.time_by_class[c] for r in reports]
                                      for c in reports[0].totals.time_by_class}
    layers["overhead"] = [r.totals.overhead_time_s for r in reports]
    layers = {c: v for c, v in layers.items() if any(x > 0 for x in v)}
    hw = query.hardware_spec()
    head = title(reports[0], hw, batch=False) if axis == "batch" else _context_title(reports[0], hw)
    return BreakdownData(head, axis, xs, layers, [r.totals.time_s for r in reports],
                         [r.memory.fits for r in reports])


def _context_title(report: Report, hw: HardwareSpec) -> str:
    """The title of a figure over context: the batch is fixed, the context is the axis."""
    parts = [report.model, hw.display_name, report.quant, report.phase, f"batch {report.batch:,}"]
    if report.layout.devices > 1:
        parts.insert(3, report.layout.label)
    parts.append(mode_label(report.efficiency))
    return " · ".join(parts)


# ---------------------------------------------------------------- memory


@dataclass(frozen=True)
class MemoryData:
    title: str
    batch: list[int]
    weights: list[float]
    kv_cache: list[float]
    activations: list[float]
    capacity: float
    max_batch: int


def memory_data(query: Query, batches: Sequence[int] | None = None, points: int = 48) -> MemoryData:
    """Weights + KV cache + activations against batch, up to a little past the largest batch that fits."""
    first = query.analyze(batch=1)
    max_batch = first.memory.max_batch
    if batches is None:
        top = max(16, round(max_batch * 1.3))
        step = max(1, top // points)
        batches = sorted({1, *range(step, top + 1, step)})
    reports = [query.analyze(batch=b) for b in batches]
    return MemoryData(title(first, query.hardware_spec(), batch=False), list(batches),
                      [r.memory.weights_bytes for r in reports], [r.memory.kv_cache_bytes for r in reports],
                      [r.memory.activation_bytes for r in reports], first.memory.capacity_bytes, max_batch)
