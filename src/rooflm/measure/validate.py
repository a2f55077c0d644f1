"""Compare rooflm's predictions with measured times: errors, bounds, and the summary `rooflm validate` prints.

Pure functions over typed results, so the comparison itself is unit-tested on synthetic timings.

The *measured* bound of a case is read from the measurements alone, without the model: along a sweep of the same
model (decode: batch at one context; prefill: prompt tokens), the elasticity e = d ln t / d ln tokens is ≈ 0 while
the step is bound by memory (the weights are read once whatever the batch) or by fixed overheads, and ≈ 1 once it
is compute-bound. A flat case is overhead-bound when it moves less than OVERHEAD_BANDWIDTH_FRACTION of the
achievable bandwidth (its bytes cannot explain its time), memory-bound otherwise.
"""

from __future__ import annotations

import csv
import io
import math
import os
import statistics
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from rooflm.specs.files import write_atomic

if TYPE_CHECKING:
    from rooflm.core.profiles import Profile

COMPUTE_ELASTICITY = 0.5
OVERHEAD_BANDWIDTH_FRACTION = 0.25


class CaseResult(BaseModel):
    """One measured step and rooflm's predictions for it (seconds)."""

    model_config = ConfigDict(frozen=True)

    model: str
    phase: Literal["prefill", "decode"]
    batch: int
    context: int = 0  # decode: tokens already in each sequence's cache
    prompt_len: int = 0  # prefill: tokens per prompt
    measured_s: float
    measured_spread: float = 0.0
    predicted_s: float  # calibrated mode
    ideal_s: float
    predicted_bound: str  # calibrated mode
    ideal_bound: str = ""
    bytes: float = 0.0
    flops: float = 0.0
    predicted_by_class: dict[str, float] = {}
    measured_by_class: dict[str, float] = {}
    measured_bound: str | None = None

    @property
    def tokens(self) -> int:
        """Rows through the weight GEMMs: one per sequence in decode, every prompt token in prefill."""
        return self.batch if self.phase == "decode" else self.batch * self.prompt_len

    @property
    def series(self) -> tuple[str, str, int]:
        """Cases that differ only in ``tokens``: decode at one context, or a model's prefills."""
        return self.model, self.phase, self.context if self.phase == "decode" else 0

    @property
    def error(self) -> float:
        return relative_error(self.predicted_s, self.measured_s)

    @property
    def ideal_error(self) -> float:
        return relative_error(self.ideal_s, self.measured_s)

    @property
    def bound_match(self) -> bool | None:
        return None if self.measured_bound is None else self.measured_bound == self.predicted_bound

    def to_json_dict(self) -> dict[str, object]:
        return {**self.model_dump(), "tokens": self.tokens, "error": self.error, "ideal_error": self.ideal_error,
                "bound_match": self.bound_match}


class GemmResult(BaseModel):
    """One [M, K] × [K, N] GEMM (weights cold) against rooflm's GEMM operator on the same hardware file."""

    model_config = ConfigDict(frozen=True)

    dtype: str
    m: int
    k: int
    n: int
    measured_s: float
    predicted_s: float
    ideal_s: float
    predicted_bound: str

    @property
    def error(self) -> float:
        return relative_error(self.predicted_s, self.measured_s)

    @property
    def ideal_error(self) -> float:
        return relative_error(self.ideal_s, self.measured_s)

    def to_json_dict(self) -> dict[str, object]:
        return {**self.model_dump(), "error": self.error, "ideal_error": self.ideal_error}


def relative_error(predicted: float, measured: float) -> float:
    """Signed: (predicted − measured) / measured; −0.5 means predicted twice too fast."""
    return (predicted - measured) / measured


def elasticity(t1: float, t2: float, n1: float, n2: float) -> float:
    """d ln t / d ln n between two points: 0 when the time is flat, 1 when it grows in proportion."""
    return math.log(t2 / t1) / math.log(n2 / n1)


def infer_measured_bounds(cases: list[CaseResult], bandwidth: float) -> list[CaseResult]:
    """Fill ``measured_bound`` from the sweep (see the module docstring): the elasticity of the step from the
    previous size to this one (for the smallest size, to the next one). A case alone in its series stays None.
    ``bandwidth`` is the achievable one (bytes/s)."""
    by_series: dict[tuple[str, str, int], dict[int, CaseResult]] = defaultdict(dict)
    for c in sorted(cases, key=lambda c: c.tokens):
        by_series[c.series].setdefault(c.tokens, c)  # one representative per size
    bounds: dict[tuple[tuple[str, str, int], int], str | None] = {}
    for key, reps in by_series.items():
        points = list(reps.values())
        for i, c in enumerate(points):
            if len(points) < 2:
                bounds[key, c.tokens] = None
                continue
            a, b = (points[i - 1], points[i]) if i > 0 else (points[0], points[1])
            if elasticity(a.measured_s, b.measured_s, a.tokens, b.tokens) >= COMPUTE_ELASTICITY:
                bounds[key, c.tokens] = "compute"
            elif c.bytes / c.measured_s < OVERHEAD_BANDWIDTH_FRACTION * bandwidth:
                bounds[key, c.tokens] = "overhead"
            else:
                bounds[key, c.tokens] = "memory"
    return [c.model_copy(update={"measured_bound": bounds[c.series, c.tokens]}) for c in cases]


class ErrorStats(BaseModel):
    """Absolute relative errors over a set of cases (None when the set is empty)."""

    model_config = ConfigDict(frozen=True)

    n: int
    median_abs_error: float | None
    worst_abs_error: float | None
    ideal_median_abs_error: float | None
    ideal_violations: int  # cases where the ideal (a lower bound) predicted slower than measured

    @classmethod
    def of(cls, results: list[CaseResult] | list[GemmResult]) -> ErrorStats:
        errs = [abs(r.error) for r in results]
        ideal = [abs(r.ideal_error) for r in results]
        return cls(n=len(results), median_abs_error=statistics.median(errs) if errs else None,
                   worst_abs_error=max(errs) if errs else None,
                   ideal_median_abs_error=statistics.median(ideal) if ideal else None,
                   ideal_violations=sum(r.ideal_s > r.measured_s for r in results))


class Summary(BaseModel):
    model_config = ConfigDict(frozen=True)

    all: ErrorStats
    decode: ErrorStats
    prefill: ErrorStats
    gemm: ErrorStats
    bound_agreement: float | None  # share of cases with a measured bound whose predicted bound matches
    bound_cases: int
    worst_case: str | None


def summarize(cases: list[CaseResult], gemms: list[GemmResult]) -> Summary:
    known = [c for c in cases if c.bound_match is not None]
    worst = max(cases, key=lambda c: abs(c.error), default=None)
    return Summary(
        all=ErrorStats.of(cases), decode=ErrorStats.of([c for c in cases if c.phase == "decode"]),
        prefill=ErrorStats.of([c for c in cases if c.phase == "prefill"]), gemm=ErrorStats.of(gemms),
        bound_agreement=sum(bool(c.bound_match) for c in known) / len(known) if known else None,
        bound_cases=len(known), worst_case=None if worst is None else case_label(worst),
    )


def case_label(c: CaseResult) -> str:
    size = f"context {c.context}" if c.phase == "decode" else f"prompt {c.prompt_len}"
    return f"{c.model} {c.phase} batch {c.batch}, {size}"


class TablePoint(BaseModel):
    """One row of a measurement table and what rooflm predicts for it (seconds of the row's step or request)."""

    model_config = ConfigDict(frozen=True)

    line: int
    model: str
    hardware: str
    phase: str
    batch: int
    prompt_len: int
    context: int
    gen_len: int
    quantity: str  # the table's measurement column
    value: float  # as given, in that column's unit
    measured_s: float
    predicted_s: float
    error: float  # signed, as relative_error


class TableValidation(BaseModel):
    model_config = ConfigDict(frozen=True)

    points: list[TablePoint]
    median_abs: float
    max_abs: float
    profile: dict[str, str | None] | None  # {"name", "data_sha256"} of the profile predicted with


def validate_table(path: str | Path, profile: str | Path | None = None) -> TableValidation:
    """Each row of a `rooflm fit` table predicted in calibrated mode (with the profile's parameters for the row's
    device, when given) and compared with what was measured. The prediction is rooflm.fit.solve.Predictor, the
    one `rooflm fit` computes its catalog and fit errors with, so both commands mean the same by "error"."""
    from rooflm.core.profiles import load_profile  # scipy (through solve) only when a table is validated
    from rooflm.fit.solve import Predictor
    from rooflm.fit.table import read_table

    points = read_table(path)
    loaded = None if profile is None else load_profile(profile)
    predicted: dict[int, float] = {}
    by_device: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(points):
        by_device[p.hardware].append(i)
    for hardware, ix in by_device.items():
        values = {} if loaded is None else _profile_values(loaded, hardware, points[ix[0]].device)
        for i, seconds in zip(ix, Predictor([points[i] for i in ix])(values), strict=True):
            predicted[i] = float(seconds)
    rows = [TablePoint(line=p.line, model=p.model, hardware=p.hardware, phase=p.phase, batch=p.batch,
                       prompt_len=p.prompt_len, context=p.context, gen_len=p.gen_len, quantity=p.quantity,
                       value=p.value, measured_s=p.seconds, predicted_s=predicted[i],
                       error=relative_error(predicted[i], p.seconds)) for i, p in enumerate(points)]
    errs = [abs(r.error) for r in rows]
    sha = None if loaded is None else loaded.provenance.get("data_sha256")
    return TableValidation(points=rows, median_abs=statistics.median(errs), max_abs=max(errs),
                           profile=None if loaded is None else {"name": loaded.path.name,
                                                                "data_sha256": sha if isinstance(sha, str) else None})


def _profile_values(profile: Profile, hardware: str, source: str) -> dict[str, float]:
    """The profile's fitted parameters for ``hardware`` by name (what the Predictor takes, as in the fit); ``source``
    is what names the device to rooflm (a hardware file's path: its name is not in the catalog)."""
    profile.deployment_overrides(source)  # refuses a device the profile does not cover, naming field profile
    return profile.devices[hardware]


# The fit table's columns (rooflm.fit.table's names) for a validation case; measured_s is the step's median.
FIT_TABLE_COLUMNS = ("model", "hardware", "phase", "batch", "prompt_len", "context", "measured_s")


def write_fit_table(path: Path, cases: list[CaseResult], configs: dict[str, Path], hardware: str | Path,
                    note: str) -> None:
    """Write the measured cases as a `rooflm fit` table: one row per case, ``model`` the case's config.json and
    ``hardware`` the hardware file (both relative to the table's folder, where rooflm.fit.table reads them from) or
    a catalog name; ``note`` becomes the comment lines on top (what was measured, where, when)."""
    folder = path.parent.resolve()

    def cell(target: str | Path) -> str:
        return os.path.relpath(Path(target).resolve(), folder) if isinstance(target, Path) else target

    buffer = io.StringIO()
    buffer.writelines(f"# {line}\n" for line in note.splitlines())
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(FIT_TABLE_COLUMNS)
    for c in cases:
        size = ("", c.context) if c.phase == "decode" else (c.prompt_len, "")
        writer.writerow([cell(configs[c.model]), cell(hardware), c.phase, c.batch, *size, f"{c.measured_s:.6g}"])
    write_atomic(path, buffer.getvalue(), str(path), field="write_table")
