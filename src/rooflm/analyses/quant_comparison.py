"""What a quantization scheme buys: speed-up over a baseline across batch and context, and why.

Each scheme is one vectorised sweep; the comparison divides times point by point and splits the
difference by operator class, so that the reason for a gain (or its absence) is visible: bytes
saved on memory-bound weight GEMMs, on the KV cache, or on nothing that still binds.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, cast

import numpy as np
from typing_extensions import Unpack

from rooflm.analyses import jsonstream
from rooflm.analyses.sweep import MAX_POINTS_IN_MEMORY, SweepResult, count_points, sweep
from rooflm.core.inputs import DEFAULTS, Deployment, realistic
from rooflm.errors import InvalidInputError
from rooflm.kinds import OP_CLASSES
from rooflm.specs.hardware import HardwareSpec, load_hardware
from rooflm.specs.hf_config import load_model
from rooflm.specs.model import ModelSpec
from rooflm.specs.quant import load_scheme

# Where time goes, for the breakdown: the operator classes plus launch overhead.
BREAKDOWN: tuple[str, ...] = (*OP_CLASSES, "overhead")
# Nesting of a point's fields in the document: {"points": [{"time_by_class_s": {...}}]}.
_FIELD_INDENT = jsonstream.POINT_INDENT + jsonstream.INDENT
# Points turned into text at once by write_json / write_csv: bounds the Python objects alive at a time.
_ROWS_PER_PIECE = 1 << 14
_ALL = slice(None)


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
class SkippedScheme:
    """A scheme left out of the comparison, and why (the device has no roof for its math)."""

    scheme: str
    reason: str


@dataclass(frozen=True)
class RequestView:
    """Each scheme's speed-up on a whole request — the prefill of ``prompt_len`` tokens and ``gen_len`` decode steps,
    as ``analyze(phase="e2e")`` prices it — at each batch of a decode comparison. A scheme fast on decode steps can
    lose it all in prefill (int4 weights on a kernel that dequantizes slowly at large token counts), so the fastest
    scheme on steps (``best_on_steps``, at the largest batch and the first context) and on whole requests
    (``best_on_request``, at the largest batch) may differ."""

    prompt_len: int
    gen_len: int
    batch: list[int]
    speedup: dict[str, list[float]]  # scheme → per batch (the baseline's 1.0 included)
    best_on_steps: str
    best_on_request: str

    @property
    def verdict_changes(self) -> bool:
        return self.best_on_steps != self.best_on_request

    def to_json_dict(self) -> dict[str, object]:
        return {"compares": f"whole requests: prefill of {self.prompt_len} tokens + {self.gen_len} decode steps",
                "prompt_len": self.prompt_len, "gen_len": self.gen_len, "batch": self.batch,
                "speedup": self.speedup, "best_on_steps": self.best_on_steps,
                "best_on_request": self.best_on_request, "verdict_changes": self.verdict_changes}


@dataclass(frozen=True)
class QuantComparison:
    """``speedup[scheme]`` and ``fits[scheme]`` (the workload fits in device memory) are per point, in the order
    of ``results[scheme]``'s rows; ``skipped`` lists the schemes asked for but not compared."""

    model: str
    hardware: str
    phase: str
    baseline: str
    threshold: float
    efficiency: str
    results: dict[str, SweepResult] = field(repr=False)
    speedup: dict[str, np.ndarray] = field(repr=False)
    summaries: list[SchemeSummary]
    fits: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    skipped: list[SkippedScheme] = field(default_factory=list)
    # The deployment keywords given away from their defaults (eta_memory, dequant_ops, …), so that a table or a
    # document says what its numbers assume; the scheme, KV dtype, efficiency and layout are shown on their own.
    overrides: dict[str, object] = field(default_factory=dict)
    profile: dict[str, str | None] | None = None  # the profile predicted with (rooflm.core.inputs.Setup.profile)
    engine_kernels: str | None = None  # the engine's part of the mode's name (Setup.engine_kernels)
    request: RequestView | None = None  # decode: the same schemes on whole requests (prefill + decode steps)

    @property
    def compares(self) -> str:
        """What one point's time is, in words: a decode comparison weighs steps, not requests."""
        base = self.results[self.baseline].axes
        batch = _values(base["batch"])
        if self.phase == "decode":
            return f"decode steps at batch {batch}, context {_values(base['context'])}"
        if self.phase == "prefill":
            return f"prefills at batch {batch}, prompt {_values(base['prompt_len'])} tokens"
        return f"whole requests at batch {batch}, prompt {_values(base['prompt_len'])} tokens"

    def class_time(self, scheme: str, cls: str) -> np.ndarray:
        cols = self.results[scheme].columns
        return cols["overhead_time_s"] if cls == "overhead" else cols[f"{cls}_time_s"]

    def memory_bound(self, scheme: str) -> dict[str, np.ndarray]:
        """Per operator class, the points where it spends at least half its time on bytes."""
        c = self.results[scheme].columns
        return {k: (c[f"{k}_time_s"] > 0) & (c[f"{k}_memory_bound_s"] >= 0.5 * c[f"{k}_time_s"]) for k in OP_CLASSES}

    def memory_bound_classes(self, scheme: str, rows: slice | np.ndarray = _ALL) -> list[list[str]]:
        """Per point (of ``rows``: a slice or an array of indices), the classes of ``memory_bound``, in OP_CLASSES order."""
        flags = self.memory_bound(scheme)
        # One bit per class: a point's set of classes is one integer, its list built once per distinct set.
        code = np.zeros(len(self.results[scheme]), dtype=np.int64)
        for i, k in enumerate(OP_CLASSES):
            code |= flags[k].astype(np.int64) << i
        code = code[rows]
        names = {m: [k for i, k in enumerate(OP_CLASSES) if m >> i & 1] for m in set(code.tolist())}
        return [list(names[m]) for m in code.tolist()]

    def _fields(self, scheme: str, rows: slice = _ALL) -> dict[str, np.ndarray]:
        """A point's flat fields, per scheme, as columns (of ``rows``)."""
        r = self.results[scheme]
        fields = {**r.axes, "time_s": r.columns["time_s"], "speedup": self.speedup[scheme], "bound": r.columns["bound"],
                  "fits": r.columns["fits"]}
        picked = {k: v[rows] for k, v in fields.items()}
        return {"scheme": np.full(len(picked["time_s"]), scheme), **picked}

    def _class_times(self, scheme: str, rows: slice = _ALL) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Time per breakdown class, and the time it saves over the baseline (of ``rows``)."""
        times = {k: self.class_time(scheme, k)[rows] for k in BREAKDOWN}
        return times, {k: self.class_time(self.baseline, k)[rows] - times[k] for k in BREAKDOWN}

    def _pieces(self) -> Iterator[tuple[str, slice]]:
        """(scheme, rows) in document order, a bounded number of rows at a time: text is built a piece at a time."""
        for scheme, r in self.results.items():
            for start in range(0, len(r), _ROWS_PER_PIECE):
                yield scheme, slice(start, start + _ROWS_PER_PIECE)

    def points(self) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for scheme in self.results:
            flat = self._fields(scheme)
            times, saved = self._class_times(scheme)
            rows = zip(*(v.tolist() for v in flat.values()), strict=True)
            by_class = zip(*(v.tolist() for v in times.values()), strict=True)
            saved_by_class = zip(*(v.tolist() for v in saved.values()), strict=True)
            for row, t, dt, mb in zip(rows, by_class, saved_by_class, self.memory_bound_classes(scheme), strict=True):
                point: dict[str, object] = dict(zip(flat, row, strict=True))
                point |= {"time_by_class_s": dict(zip(BREAKDOWN, t, strict=True)),
                          "time_saved_by_class_s": dict(zip(BREAKDOWN, dt, strict=True)), "memory_bound_classes": mb}
                out.append(point)
        return out

    def json_head(self) -> dict[str, object]:
        """The document's keys before "points"."""
        return {"model": self.model, "hardware": self.hardware, "phase": self.phase, "compares": self.compares,
                "request": None if self.request is None else self.request.to_json_dict(), "baseline": self.baseline,
                "threshold": self.threshold, "efficiency": self.efficiency, "engine_kernels": self.engine_kernels,
                "profile": self.profile,
                "overrides": self.overrides, "summaries": [s.__dict__ for s in self.summaries],
                "skipped": [s.__dict__ for s in self.skipped]}

    def to_json_dict(self) -> dict[str, object]:
        return {**self.json_head(), "points": self.points()}

    def json_points(self, scheme: str, rows: slice = _ALL) -> list[str]:
        """One scheme's points (of ``rows``) as JSON text, laid out as ``json.dumps(self.to_json_dict(), indent=2)``
        lays them out."""
        times, saved = self._class_times(scheme, rows)
        columns = {k: jsonstream.scalars(v) for k, v in self._fields(scheme, rows).items()}
        columns["time_by_class_s"] = jsonstream.objects({k: jsonstream.scalars(v) for k, v in times.items()},
                                                        _FIELD_INDENT)
        columns["time_saved_by_class_s"] = jsonstream.objects({k: jsonstream.scalars(v) for k, v in saved.items()},
                                                              _FIELD_INDENT)
        columns["memory_bound_classes"] = jsonstream.string_lists(self.memory_bound_classes(scheme, rows),
                                                                  _FIELD_INDENT)
        return jsonstream.objects(columns)

    def write_json(self, out: TextIO) -> None:
        """``json.dumps(self.to_json_dict(), indent=2)``, written a piece at a time without building the dicts."""
        jsonstream.write_document(out, self.json_head(), (self.json_points(s, rows) for s, rows in self._pieces()))

    def write_csv(self, out: TextIO) -> None:
        """One row per scheme and point: the flat fields, the time per class, the memory-bound classes."""
        writer = csv.writer(out)
        header_done = False
        for scheme, rows in self._pieces():
            times = self._class_times(scheme, rows)[0]
            columns = {**self._fields(scheme, rows), **{f"time_{k}_s": v for k, v in times.items()}}
            if not header_done:
                writer.writerow([*columns, "memory_bound_classes"])
                header_done = True
            classes = [" ".join(m) for m in self.memory_bound_classes(scheme, rows)]
            writer.writerows(zip(*(v.tolist() for v in columns.values()), classes, strict=True))

    def to_csv(self) -> str:
        buf = io.StringIO()
        self.write_csv(buf)
        return buf.getvalue()


def _values(axis: np.ndarray) -> str:
    """An axis's distinct values in words: "64", "1, 8, 64" or "1…4096"."""
    distinct = sorted(set(axis.tolist()))
    if len(distinct) <= 4:
        return ", ".join(str(v) for v in distinct)
    return f"{distinct[0]}…{distinct[-1]}"


def _request_view(spec: ModelSpec, hw: HardwareSpec, results: dict[str, SweepResult], speedup: dict[str, np.ndarray],
                  base: str, batch: list[int], prompt_len: int, gen_len: int, quants: Mapping[str, object],
                  deployment: Mapping[str, object]) -> RequestView:
    """The schemes of a decode comparison on whole requests of ``prompt_len`` + ``gen_len`` tokens, per batch."""
    e2e = {n: sweep(spec, hw, phase="e2e", batch=batch, prompt_len=[prompt_len], gen_len=gen_len,
                    quant=q, **deployment).columns["time_s"]  # type: ignore[arg-type]
           for n, q in quants.items()}
    on_request = {n: (e2e[base] / t).tolist() for n, t in e2e.items()}
    largest = int(np.argmax(batch))
    width = len(results[base]) // len(batch)  # the grid is batch-major: a batch's first context is at i × width
    on_steps = {n: float(speedup[n][largest * width]) for n in results}
    return RequestView(prompt_len, gen_len, list(batch), on_request, max(on_steps, key=on_steps.__getitem__),
                       max(on_request, key=lambda n: on_request[n][largest]))


def _first_below(batches: np.ndarray, speedup: np.ndarray, level: float) -> int | None:
    """First batch from which the speed-up stays below ``level`` (the gain does not come back)."""
    above = np.nonzero(speedup >= level)[0]
    if above.size == 0:
        return int(batches[0])
    last_above = above[-1]
    return int(batches[last_above + 1]) if last_above + 1 < len(batches) else None


def _summaries(ref: SweepResult, speedup: dict[str, np.ndarray], schemes: list[str], threshold: float,
               n_batch: int) -> list[SchemeSummary]:
    """Per scheme and per value of the grid's other axis (context, or prompt length), along the batch axis.

    The grid is batch-major, so the points of one batch are a row of ``speedup.reshape(n_batch, -1)`` and those of
    one context a column: one pass over the grid, not a mask over all of it per context."""
    other = next(a for a in ref.axes if a not in ("batch", "gen_len"))
    width = len(ref) // n_batch
    values, batch = ref.axes[other][:width], ref.axes["batch"][::width]  # the other axis's and the batch axis's
    out = []
    for name in schemes:
        sp = speedup[name].reshape(n_batch, width)
        for value in sorted(set(values.tolist())):
            picked = np.flatnonzero(values == value)
            # This context's points in grid order, as a mask over the grid picks them (an axis may repeat a value).
            b, s = np.repeat(batch, len(picked)), sp[:, picked].reshape(-1)
            out.append(SchemeSummary(name, value, value if other == "prompt_len" else 0, float(s[0]), float(s[-1]),
                                     _first_below(b, s, 1 + threshold), _first_below(b, s, 1.0)))
    return out


# Shown in a comparison's header already, or varied by it: not overrides.
_SHOWN_ELSEWHERE = frozenset({"quant", "kv_dtype", "efficiency", "profile", "tp", "ep", "pp", "dp"})


def overrides(deployment: Mapping[str, object]) -> dict[str, object]:
    """The deployment keywords given a value other than their default, as JSON values (a path or a spec by its
    name)."""
    def plain(v: object) -> object:
        if isinstance(v, str | int | float | bool) or (isinstance(v, list) and all(isinstance(x, float) for x in v)):
            return v
        return str(getattr(v, "name", v))

    return {k: plain(v) for k, v in deployment.items()
            if k not in _SHOWN_ELSEWHERE and k in DEFAULTS and v is not None and v != DEFAULTS[k]}


def compare_quant(model: str | Path | ModelSpec = "llama-3.1-8b", hardware: str | Path | HardwareSpec = "h100-sxm", *,
                  schemes: Sequence[str] = ("bf16", "fp8", "w4a16", "w4a8"), baseline: str | None = None,
                  phase: str = "decode", batch: Sequence[int] = (1,), prompt_len: Sequence[int] = (1024,),
                  context: Sequence[int] | None = None, gen_len: int = 256, threshold: float = 0.10,
                  **deployment: Unpack[Deployment]) -> QuantComparison:
    """Every scheme over the same grid; speed-up = baseline time / scheme time at the same point.

    ``schemes`` may carry a KV dtype as ``scheme+kv-fp8`` (e.g. ``bf16+kv-fp8``). A scheme whose math the device
    has no roof for (fp8 on an A100) is skipped, and listed in ``skipped``; the baseline is never skipped. Calibrated
    mode unless ``efficiency`` says otherwise."""
    deployment = realistic(deployment)  # calibrated unless asked: what a kernel reaches decides a scheme's gain
    if not schemes:
        raise InvalidInputError("give at least one scheme to compare", field="schemes")
    if not 0 < threshold < 10:
        raise InvalidInputError(f"threshold must be a fraction such as 0.1, got {threshold}", field="threshold")
    base = baseline or schemes[0]
    deployment.pop("quant", None)
    kv_default = deployment.pop("kv_dtype", None)
    hw = load_hardware(hardware)
    spec = load_model(model)  # resolves 'native' and mixes per module class
    names, skipped = [], []
    for name in dict.fromkeys([base, *schemes]):
        scheme, _, kv = name.partition("+kv-")
        compute = load_scheme(scheme, kv or kv_default, spec).compute  # an unknown scheme is refused here, by name
        if name != base and compute not in hw.supported_dtypes:
            skipped.append(SkippedScheme(name, f"{hw.name} has no {compute} compute roof"))
        else:
            names.append(name)
    batch = list(batch)
    points = count_points(phase=phase, batch=batch, prompt_len=prompt_len, context=context)
    if points * len(names) > MAX_POINTS_IN_MEMORY:
        raise InvalidInputError(
            f"the comparison has {points:,} points × {len(names)} schemes = {points * len(names):,}; at most "
            f"{MAX_POINTS_IN_MEMORY:,} can be compared in memory: fewer batches or contexts", field="batch")
    quants = {name: load_scheme(name.partition("+kv-")[0], name.partition("+kv-")[2] or kv_default, spec)
              for name in names}
    results = {name: sweep(spec, hw, phase=phase, batch=batch, prompt_len=prompt_len, context=context,
                           gen_len=gen_len, quant=quants[name],
                           **cast(dict[str, Any], deployment))  # quant and kv_dtype were popped above
               for name in names}
    ref = results[base]
    speedup = {n: ref.columns["time_s"] / r.columns["time_s"] for n, r in results.items()}
    request = None
    if phase == "decode":
        request = _request_view(spec, hw, results, speedup, base, batch, next(iter(prompt_len)), gen_len, quants,
                                deployment)
    return QuantComparison(ref.model, ref.hardware, phase, base, threshold, ref.efficiency, results, speedup,
                           _summaries(ref, speedup, names[1:], threshold, len(batch)),
                           {n: r.columns["fits"] for n, r in results.items()}, skipped, overrides(deployment),
                           ref.profile, ref.engine_kernels, request)
