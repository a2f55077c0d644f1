"""Fit the roofline and the calibrated mode's factors from raw measurements.

- Roofs: the fastest streaming bandwidth and FLOP/s per dtype seen in any run (STREAM's and the matmul finders'
  convention: the best run is what the hardware can do; slower runs are noise or inefficiency). The ideal mode
  uses them, so an ideal prediction is a lower bound of what this machine ran.
- η_memory: what GEMMs reading cold weights at M = 1 (a decode step's GEMMs) typically (median) get of the roof.
- η_compute(M): achieved / peak on the GEMM curve, where compute binds; below the first such M the GEMM is
  memory-bound and its compute efficiency is not observable, so the curve is held flat there.
- η_memory per operator kind: norms, element-wise operators and decode attention as an eager framework runs them
  reach only part of the roof on rooflm's (ideal) bytes; see kernels.py.
- Overheads: a tiny decoder's decode step is fitted as κ_op per operator (as rooflm counts operators) plus a
  fixed κ_step per forward call (masks, rotary tables, output objects), charged to the step's embedding.
"""

from __future__ import annotations

import json
import statistics
from functools import lru_cache
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict

from rooflm.measure.results import CurvePoint, EagerStep, Measurements
from rooflm.specs.figures import Figure, GemmCurve
from rooflm.specs.kernels import KernelCurve

# A curve point whose time exceeds the memory-bound time by this factor is taken as compute-bound.
COMPUTE_BOUND_MARGIN = 1.1
# rooflm's models compute in this dtype; its curve sets η_memory (the weight streams of decode GEMMs).
MODEL_DTYPE = "bf16"


class Calibration(BaseModel):
    """The fitted roofline of one machine: roofs, efficiency factors and overheads, with how each was obtained."""

    model_config = ConfigDict(frozen=True)

    memory_bandwidth: float
    bandwidth_note: str
    peak_flops: dict[str, float]
    peak_notes: dict[str, str]
    memory_efficiency: float
    memory_efficiency_note: str
    compute_efficiency: dict[str, float]  # includes "default"
    compute_curve: dict[str, tuple[list[int], list[float]]]
    curve_notes: dict[str, str]
    dispatch_overhead_s: float
    op_overhead_s: float
    step_overhead_s: float
    overhead_note: str
    memory_by_kind: dict[str, float] = {}
    memory_by_kind_notes: dict[str, str] = {}
    # The device's own kernel families (dense, w8a16, w4a16 on a CPU), each figure's source the measurement.
    kernel_families: dict[str, KernelCurve] = {}


def bandwidth_roof(m: Measurements) -> tuple[float, str]:
    """The fastest streaming seen: the best run (STREAM's "best rate") of read, copy and triad at the largest array
    size, or of the cold-weight GEMMs if they streamed faster (the roof must bound every kernel measured)."""
    if not m.bandwidth:
        raise ValueError("no bandwidth measurements")
    largest = max(s.array_bytes for s in m.bandwidth)
    best = max((s for s in m.bandwidth if s.array_bytes == largest), key=lambda s: s.best_bytes_per_s)
    roof = best.best_bytes_per_s
    note = (f"{best.pattern} over {largest / 2**20:.0f} MiB arrays, best of {best.run.repeats} runs (median "
            f"{best.median_bytes_per_s / 1e9:.1f} GB/s); the fastest of read/copy/triad")
    gemv = max(m.curve, key=lambda p: p.bytes / p.run.min_s, default=None)
    if gemv is not None and gemv.bytes / gemv.run.min_s > roof:
        roof = gemv.bytes / gemv.run.min_s
        note = (f"{gemv.dtype} decoder-layer GEMMs at M={gemv.m}, weights cold, best of {gemv.run.repeats} runs: "
                f"faster than the streams ({best.pattern} best {best.best_bytes_per_s / 1e9:.1f} GB/s)")
    return roof, note


def peak_roofs(m: Measurements) -> tuple[dict[str, float], dict[str, str]]:
    """Per dtype, the fastest run of the square matmul or of any point of the GEMM curve."""
    peaks: dict[str, float] = {}
    notes: dict[str, str] = {}
    for s in m.matmul:
        peaks[s.dtype] = s.best_flops_per_s
        notes[s.dtype] = (f"[{s.m}x{s.k}]x[{s.k}x{s.n}] matmul, best of {s.run.repeats} runs (median "
                          f"{s.median_flops_per_s / 1e12:.3g} TFLOP/s)")
    for p in m.curve:
        if p.best_flops_per_s > peaks.get(p.dtype, 0.0):
            peaks[p.dtype] = p.best_flops_per_s
            notes[p.dtype] = (f"decoder-layer GEMMs at M={p.m}, best of {p.run.repeats} runs (median "
                              f"{p.median_flops_per_s / 1e12:.3g} TFLOP/s)")
    return peaks, notes


def isotonic(values: list[float]) -> list[float]:
    """The non-decreasing sequence closest to ``values`` in least squares (pool adjacent violators): GEMM
    efficiency does not fall as M grows, so a dip is noise, averaged with its neighbours."""
    blocks: list[list[float]] = []  # [sum, count]
    for v in values:
        blocks.append([v, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += c
    out: list[float] = []
    for s, c in blocks:
        out.extend([s / c] * int(c))
    return out


def memory_efficiency(m: Measurements, roof: float) -> tuple[float, str]:
    """Weight-streaming bandwidth of the cold GEMMs at the smallest M, as a fraction of the roof."""
    dtype = MODEL_DTYPE if any(p.dtype == MODEL_DTYPE for p in m.curve) else (m.curve[0].dtype if m.curve else "")
    points = [p for p in m.curve if p.dtype == dtype]
    if not points:
        return 1.0, "no GEMM curve measured: assumed to reach the streaming roof"
    first = min(points, key=lambda p: p.m)
    eta = min(1.0, first.median_bytes_per_s / roof)
    return eta, (f"{dtype} decoder-layer GEMMs at M={first.m} with cold weights: {first.median_bytes_per_s / 1e9:.1f} "
                 f"GB/s of {roof / 1e9:.1f} GB/s")


class FittedCurve(NamedTuple):
    rows: list[int]
    values: list[float]
    first_compute_bound: int  # the smallest M at which compute bound the measured GEMMs


def compute_curve(points: list[CurvePoint], peak: float, bandwidth: float) -> FittedCurve | None:
    """η(M) = achieved / peak at the compute-bound points (made non-decreasing), flat below the first one.
    ``bandwidth`` is the achievable one (roof × η_memory). None when no point is compute-bound."""
    pts = sorted(points, key=lambda p: p.m)
    bound = [p.run.median_s >= COMPUTE_BOUND_MARGIN * p.bytes / bandwidth for p in pts]
    if not any(bound):
        return None
    first = bound.index(True)
    fitted = isotonic([min(1.0, p.median_flops_per_s / peak) for p in pts[first:]])
    values = [fitted[0]] * first + fitted
    return FittedCurve([p.m for p in pts], [max(v, 1e-4) for v in values], pts[first].m)


# The device step_inventory resolves the model on: any catalog device, since an ideal step's operators and bytes do
# not depend on it (no roof enters a count).
INVENTORY_DEVICE = "xeon-8480"


@lru_cache(maxsize=16)
def step_inventory(config_json: str) -> tuple[float, float]:
    """(kernels, bytes) rooflm counts in one decode step of this model at batch 1 and a 16-token context."""
    import numpy as np

    from rooflm.core import engine
    from rooflm.core.evaluate import kernel_count, sum_ops
    from rooflm.core.inputs import setup
    from rooflm.measure.configs import model_spec

    s = setup(model_spec(json.loads(config_json), "tiny-decoder"), INVENTORY_DEVICE, efficiency="ideal")
    ops = engine.decode(s, np.float64(1), np.float64(16))
    return kernel_count([o.op for o in ops]), float(sum_ops(ops).bytes)


def fit_overheads(steps: list[EagerStep], bandwidth: float) -> tuple[float, float]:
    """(κ_op, κ_step) from t − bytes/bandwidth = κ_op · operators + κ_step, least squares over the layer counts.
    The subtracted roofline time of the tiny decoder's own bytes is a few percent of its step."""
    inventory = [step_inventory(json.dumps(s.config, sort_keys=True)) for s in steps]
    xs = [ops for ops, _ in inventory]
    ys = [max(s.run.median_s - nbytes / bandwidth, 0.0) for s, (_, nbytes) in zip(steps, inventory, strict=True)]
    if len(set(xs)) < 2:
        return sum(ys) / sum(xs), 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    intercept = my - slope * mx
    if intercept < 0 or slope <= 0:  # noise: fall back to a pure per-operator cost
        return sum(ys) / sum(xs), 0.0
    return slope, intercept


def memory_by_kind(m: Measurements, roof: float) -> tuple[dict[str, float], dict[str, str]]:
    """Per operator kind, the median over its benchmarks of rooflm's bytes / measured time, as a fraction of the
    roof (capped at 1: a kernel whose data stays in cache can beat main memory)."""
    values: dict[str, float] = {}
    notes: dict[str, str] = {}
    for kind in sorted({k.kind for k in m.kernels}):
        samples = [k for k in m.kernels if k.kind == kind]
        values[kind] = min(1.0, statistics.median(k.median_bytes_per_s for k in samples) / roof)
        notes[kind] = "eager " + ", ".join(f"{k.name} {k.median_bytes_per_s / 1e9:.1f} GB/s" for k in samples) + \
            " of rooflm's bytes (median)"
    return values, notes


def kernel_family_curve(points: list[CurvePoint], peak: float, roof: float, source: str) -> KernelCurve:
    """One family from its layer GEMMs over M, in data/kernels.toml's shape: ``memory`` is the fraction of the roof
    the smallest M streamed (its bytes / time: the dequantizing kernels may already be slower than the stream there),
    ``fill`` 0 (the layer's GEMMs are all large: a fixed cost per kernel is not separable from the stream and stays
    in ``memory``), ``compute`` achieved / the 16-bit peak where compute binds (compute_curve; none: never bound).
    At every measured M, max(compute, memory) time is the measured time where the curve is not smoothed."""
    pts = sorted(points, key=lambda p: p.m)
    first = pts[0]
    memory = min(1.0, first.bytes / first.run.median_s / roof)
    fitted = compute_curve(pts, peak, roof * memory)
    family = first.family
    compute = None if fitted is None else GemmCurve(
        rows=[float(r) for r in fitted.rows], value=fitted.values, source=source,
        note=(f"{family}: achieved / bf16 peak of a decoder layer's GEMMs (weights cold) where compute binds; held "
              f"flat below M={fitted.first_compute_bound}"))
    return KernelCurve(
        memory=Figure(value=memory, source=source,
                      note=f"{family}: layer GEMMs at M={first.m}, {first.bytes / first.run.median_s / 1e9:.2f} GB/s "
                           f"of {roof / 1e9:.2f} GB/s (weights, scales and activations)"),
        fill=Figure(value=0.0, source=source, note="not separated from the stream: the layer's GEMMs are all large"),
        compute=compute)


def kernel_families(m: Measurements, roof: float, peaks: dict[str, float]) -> dict[str, KernelCurve]:
    """dense from the bf16 GEMM curve; w8a16 and w4a16 from the quantized layer curve, each point's time the bf16
    curve's at its M times the quantized / bf16 ratio timed beside it (same thread count and clock): the ratio is
    what the quantized kernel costs over bf16, the bf16 curve what this machine's GEMMs take. Every family against
    the bf16 peak (weight-only kernels compute in 16 bits)."""
    dense = {p.m: p for p in m.curve if p.family == "dense"}
    if MODEL_DTYPE not in peaks or not dense:
        return {}
    source = f"measured by rooflm measure on {m.machine.describe()}"
    out = {"dense": kernel_family_curve(list(dense.values()), peaks[MODEL_DTYPE], roof, source)}
    reference = {p.m: p for p in m.quant_curve if p.family == "dense"}
    for family in dict.fromkeys(p.family for p in m.quant_curve if p.family != "dense"):
        pts = [_scaled(p, reference[p.m], dense[p.m]) for p in m.quant_curve
               if p.family == family and p.m in reference and p.m in dense]
        if pts:
            out[family] = kernel_family_curve(pts, peaks[MODEL_DTYPE], roof, f"{source}; {family} / bf16 time ratios "
                                              "on one thread, process CPU time, applied to the bf16 GEMM curve")
    return out


def _scaled(p: CurvePoint, reference: CurvePoint, dense: CurvePoint) -> CurvePoint:
    """``p`` at the bf16 curve's time for its M times its ratio to the bf16 layer timed beside it."""
    ratio = dense.run.median_s / reference.run.median_s
    r = p.run
    return p.model_copy(update={"run": r.model_copy(update={"median_s": r.median_s * ratio, "min_s": r.min_s * ratio,
                                                            "max_s": r.max_s * ratio})})


def calibrate(m: Measurements) -> Calibration:
    roof, bw_note = bandwidth_roof(m)
    peaks, peak_notes = peak_roofs(m)
    eta_mem, mem_note = memory_efficiency(m, roof)
    efficiency = {s.dtype: min(1.0, s.median_flops_per_s / peaks[s.dtype]) for s in m.matmul}
    curves: dict[str, tuple[list[int], list[float]]] = {}
    curve_notes: dict[str, str] = {}
    for dtype in sorted({p.dtype for p in m.curve}):
        pts = [p for p in m.curve if p.dtype == dtype]
        fitted = compute_curve(pts, peaks[dtype], roof * eta_mem)
        if fitted is None:
            continue
        curves[dtype] = (fitted.rows, fitted.values)
        h, i = pts[0].shapes[0][0], pts[0].shapes[-1][0]  # K of the first (q) and last (down) projections
        curve_notes[dtype] = (f"achieved / peak of the GEMMs of a decoder layer (hidden {h}, intermediate {i}, "
                              f"weights cold) where compute binds; held flat below M={fitted.first_compute_bound}, "
                              "where memory binds")
        efficiency.setdefault(dtype, fitted.values[-1])
    efficiency["default"] = efficiency.get(MODEL_DTYPE, max(efficiency.values(), default=1.0))
    op_s, step_s = fit_overheads(m.eager_steps, roof) if m.eager_steps else (m.dispatch.median_s, 0.0)
    by_kind, kind_notes = memory_by_kind(m, roof)
    backend = m.eager_steps[0].backend if m.eager_steps else "none"
    layers = ", ".join(str(s.layers) for s in m.eager_steps)
    overhead_note = (f"decode steps of a tiny decoder ({backend}, eager; {layers} layers) fitted as "
                     f"{op_s * 1e6:.1f} us per operator + {step_s * 1e6:.0f} us per forward call")
    return Calibration(
        memory_bandwidth=roof, bandwidth_note=bw_note, peak_flops=peaks, peak_notes=peak_notes,
        memory_efficiency=eta_mem, memory_efficiency_note=mem_note, compute_efficiency=efficiency,
        compute_curve=curves, curve_notes=curve_notes, dispatch_overhead_s=m.dispatch.median_s,
        op_overhead_s=op_s, step_overhead_s=step_s, overhead_note=overhead_note, memory_by_kind=by_kind,
        memory_by_kind_notes=kind_notes, kernel_families=kernel_families(m, roof, peaks) if m.quant_curve else {},
    )

