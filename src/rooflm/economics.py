"""What a quantization scheme buys: speed-up over a baseline across batch and context, and why.

Each scheme is one vectorised sweep; the comparison divides times point by point and splits the
difference by operator class, so that the reason for a gain (or its absence) is visible: bytes
saved on memory-bound weight GEMMs, on the KV cache, or on nothing that still binds.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from typing_extensions import Unpack

from rooflm.deploy import Deployment
from rooflm.errors import InvalidInputError
from rooflm.ops.cost import OP_CLASSES
from rooflm.specs.hardware import HardwareSpec
from rooflm.specs.model import ModelSpec
from rooflm.specs.quant import load_scheme
from rooflm.sweep import SweepResult, sweep

# Where time goes, for the breakdown: the operator classes plus launch overhead.
BREAKDOWN: tuple[str, ...] = (*OP_CLASSES, "overhead")


@dataclass(frozen=True)
class SchemeSummary:
    """Per scheme, along the batch axis at each context: where its gain fades and where it turns into a loss."""

    scheme: str
    context: int
    prompt_len: int
    speedup_at_smallest_batch: float
    speedup_at_largest_batch: float
    batch_gain_below_threshold: int | None  # first batch whose speed-up is under 1 + threshold
    batch_slower_than_baseline: int | None  # first batch whose speed-up is under 1


@dataclass(frozen=True)
class QuantComparison:
    model: str
    hardware: str
    phase: str
    baseline: str
    threshold: float
    efficiency: str
    results: dict[str, SweepResult] = field(repr=False)
    speedup: dict[str, np.ndarray] = field(repr=False)
    summaries: list[SchemeSummary]

    def class_time(self, scheme: str, cls: str) -> np.ndarray:
        cols = self.results[scheme].columns
        return cols["overhead_time_s"] if cls == "overhead" else cols[f"{cls}_time_s"]

    def points(self) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for scheme, r in self.results.items():
            c = r.columns
            for i in range(len(r)):
                point: dict[str, object] = {"scheme": scheme, **{a: int(v[i]) for a, v in r.axes.items()},
                                            "time_s": float(c["time_s"][i]), "speedup": float(self.speedup[scheme][i]),
                                            "bound": str(c["bound"][i]), "fits": bool(c["fits"][i])}
                point["time_by_class_s"] = {k: float(self.class_time(scheme, k)[i]) for k in BREAKDOWN}
                point["time_saved_by_class_s"] = {
                    k: float(self.class_time(self.baseline, k)[i] - self.class_time(scheme, k)[i]) for k in BREAKDOWN}
                point["memory_bound_classes"] = [
                    k for k in OP_CLASSES
                    if c[f"{k}_time_s"][i] > 0 and c[f"{k}_memory_bound_s"][i] >= 0.5 * c[f"{k}_time_s"][i]]
                out.append(point)
        return out

    def to_json_dict(self) -> dict[str, object]:
        return {"model": self.model, "hardware": self.hardware, "phase": self.phase, "baseline": self.baseline,
                "threshold": self.threshold, "efficiency": self.efficiency,
                "summaries": [s.__dict__ for s in self.summaries], "points": self.points()}

    def to_csv(self) -> str:
        buf = io.StringIO()
        rows = self.points()
        flat = [{k: v for k, v in p.items() if not isinstance(v, (dict, list))}
                | {f"time_{k}_s": v for k, v in p["time_by_class_s"].items()}  # type: ignore[union-attr]
                | {"memory_bound_classes": " ".join(p["memory_bound_classes"])}  # type: ignore[arg-type]
                for p in rows]
        writer = csv.DictWriter(buf, fieldnames=list(flat[0]))
        writer.writeheader()
        writer.writerows(flat)
        return buf.getvalue()


def _first_below(batches: np.ndarray, speedup: np.ndarray, level: float) -> int | None:
    """First batch from which the speed-up stays below ``level`` (the gain does not come back)."""
    above = np.nonzero(speedup >= level)[0]
    if above.size == 0:
        return int(batches[0])
    last_above = above[-1]
    return int(batches[last_above + 1]) if last_above + 1 < len(batches) else None


def compare_quant(model: str | Path | ModelSpec = "llama-3.1-8b", hardware: str | Path | HardwareSpec = "h100-sxm", *,
                  schemes: Sequence[str] = ("bf16", "fp8", "w4a16", "w4a8"), baseline: str | None = None,
                  phase: str = "decode", batch: Sequence[int] = (1,), prompt_len: Sequence[int] = (1024,),
                  context: Sequence[int] | None = None, gen_len: int = 256, threshold: float = 0.10,
                  **deployment: Unpack[Deployment]) -> QuantComparison:
    """Every scheme over the same grid; speed-up = baseline time / scheme time at the same point.

    ``schemes`` may carry a KV dtype as ``scheme+kv-fp8`` (e.g. ``bf16+kv-fp8``)."""
    if not schemes:
        raise InvalidInputError("give at least one scheme to compare")
    if not 0 < threshold < 10:
        raise InvalidInputError(f"threshold must be a fraction such as 0.1, got {threshold}")
    base = baseline or schemes[0]
    names = list(dict.fromkeys([base, *schemes]))
    deployment.pop("quant", None)
    kv_default = deployment.pop("kv_dtype", None)
    results: dict[str, SweepResult] = {}
    for name in names:
        scheme, _, kv = name.partition("+kv-")
        results[name] = sweep(model, hardware, phase=phase, batch=batch, prompt_len=prompt_len, context=context,
                              gen_len=gen_len, quant=load_scheme(scheme, kv or kv_default), **deployment)
    speedup = {n: results[base].columns["time_s"] / r.columns["time_s"] for n, r in results.items()}
    ref = results[base]
    summaries = []
    group_axes = [a for a in ref.axes if a not in ("batch", "gen_len")]
    keys = sorted({tuple(int(ref.axes[a][i]) for a in group_axes) for i in range(len(ref))})
    for name in names[1:]:
        for key in keys:
            mask = np.ones(len(ref), dtype=bool)
            for a, v in zip(group_axes, key, strict=True):
                mask &= ref.axes[a] == v
            b, sp = ref.axes["batch"][mask], speedup[name][mask]
            values = dict(zip(group_axes, key, strict=True))
            summaries.append(SchemeSummary(
                name, values.get("context", values.get("prompt_len", 0)), values.get("prompt_len", 0),
                float(sp[0]), float(sp[-1]), _first_below(b, sp, 1 + threshold), _first_below(b, sp, 1.0)))
    first = results[base]
    return QuantComparison(first.model, first.hardware, phase, base, threshold, first.efficiency, results, speedup,
                           summaries)
