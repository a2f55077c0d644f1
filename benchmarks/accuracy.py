"""Calibrated predictions against published end-to-end measurements of real engines.

    python benchmarks/accuracy.py                 # table of every row, per-group errors, comparisons
    python benchmarks/accuracy.py --json          # one JSON document on stdout
    python benchmarks/accuracy.py --limit 3       # the first three rows only

The measurements live in ``benchmarks/data/published_e2e.csv``, one row per number read from a
public source (its URL and the table it came from are on the row). They are for *checking* the
calibrated model, never for fitting it (docs/DESIGN.md, "Calibration").

How each measurement maps onto rooflm (``B`` = batch or concurrency, ``I`` = prompt length,
``O`` = output length; every analysis uses the row's model, device, scheme, KV dtype and TP/EP):

phase ``e2e`` — a static batch: all ``B`` requests start together (vLLM ``benchmark_latency``,
a fixed-batch run). One ``rooflm.analyze(phase="e2e", batch=B, prompt_len=I, gen_len=O)``:

* ``e2e_latency_s``  = totals.time_s (prefill of the batch + every decode step)
* ``output_tokens_per_s`` = totals.output_tokens_per_s = B·O / time_s
* ``output_tokens_per_s_per_user`` = O / time_s
* ``ttft_s`` = totals.ttft_s, ``tpot_s`` = totals.tpot_s

phase ``serving`` — a closed loop holding ``B`` requests in flight (``--max-concurrency B``, NIM /
AIPerf concurrency, ``trtllm-bench`` with max batch ``B``). Requests arrive staggered, so a new
prompt is prefilled alone while the others decode, and in steady state every prompt is prefilled
once per request cycle. With ``E`` = the e2e analysis at batch ``B`` and ``P1`` = the prefill of
one prompt:

* ``output_tokens_per_s`` ≈ B·O / (TTFT + O·TPOT) = E.output_tokens_per_s (E's TTFT is the
  prefill of all B prompts: the work every cycle must do once)
* ``tpot_s`` ≈ (E.time_s − P1.time_s) / (O − 1): the other B−1 prefills are spread over the
  user's decode steps (at B = 1 this is exactly E.tpot_s)
* ``ttft_s`` ≈ P1.time_s (no queueing; only rows at low concurrency are in the table)
* ``output_tokens_per_s_per_user`` ≈ O / E.time_s

``--engine``: ``none`` (the default: calibrated mode's generic kernel families), ``row`` (each row's own engine
where its ``engine`` column names TensorRT-LLM, vLLM or SGLang; a NIM row names no engine and keeps the generic
families), or one engine for every row (``trtllm``, ``vllm``, ``sglang``): rooflm's ``engine=`` keyword, which prices
dense GEMMs from that engine's measured kernels on devices that have its tables.

phase ``decode`` / ``prefill`` — one step: ``step_time_s`` (and ``tpot_s`` for decode,
``ttft_s`` for prefill) = totals.time_s of ``analyze(phase=..., batch=B, context=I + O)``.

Error = predicted / measured − 1 (for a time, positive means rooflm is too slow; for a rate,
positive means rooflm is too fast). Comparisons: rows sharing a ``comparison`` id form pairs of
each ``alt`` row against the ``ref`` row; the speed ratio is alt/ref for rates and ref/alt for
times; a pair is on the right side when the predicted ratio lies on the same side of 1 as the
measured one. Rows rooflm cannot analyze (model or scheme not modelled, invalid layout) are
reported as skipped with the reason.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import statistics
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

from rich.console import Console
from rich.progress import track
from rich.table import Table

import rooflm
from rooflm.errors import RooflmError

DEFAULT_TABLE = Path(__file__).parent / "data" / "published_e2e.csv"
COLUMNS = ("id", "group", "model", "hardware", "engine", "quant", "kv_dtype", "tp", "ep", "phase", "batch",
           "prompt_len", "gen_len", "metric", "value", "comparison", "comparison_role", "source_model",
           "source_url", "source_note")
GROUPS = ("dense", "quantized", "moe", "multi-gpu")
PHASES = ("e2e", "serving", "decode", "prefill")
RATE_METRICS = ("output_tokens_per_s", "output_tokens_per_s_per_user")
TIME_METRICS = ("tpot_s", "ttft_s", "e2e_latency_s", "step_time_s")
METRICS = RATE_METRICS + TIME_METRICS
ROLES = ("", "ref", "alt")


class TableError(ValueError):
    """A row of the measurement table is malformed (names the row and the column)."""


@dataclass(frozen=True)
class Row:
    id: str
    group: str
    model: str
    hardware: str
    engine: str
    quant: str
    kv_dtype: str
    tp: int
    ep: int
    phase: str
    batch: int
    prompt_len: int
    gen_len: int
    metric: str
    value: float
    comparison: str
    comparison_role: str
    source_model: str
    source_url: str
    source_note: str


def _positive_int(raw: dict[str, str], key: str, where: str) -> int:
    try:
        v = int(raw[key])
    except ValueError:
        raise TableError(f"{where}: column {key!r} must be an integer, got {raw[key]!r}") from None
    if v < 1:
        raise TableError(f"{where}: column {key!r} must be ≥ 1, got {v}")
    return v


def _check_choice(value: str, choices: Sequence[str], key: str, where: str) -> None:
    if value not in choices:
        raise TableError(f"{where}: column {key!r} is {value!r}, expected one of {', '.join(map(repr, choices))}")


def parse_row(raw: dict[str, str], line: int) -> Row:
    """One CSV record → a checked Row; every problem names the line and the column."""
    where = f"line {line}"
    missing = [c for c in COLUMNS if raw.get(c) is None]
    if missing:
        raise TableError(f"{where}: missing column(s) {', '.join(missing)}")
    for key in ("id", "group", "model", "hardware", "engine", "quant", "kv_dtype", "phase", "metric", "source_url",
                "source_note"):
        if not raw[key].strip():
            raise TableError(f"{where}: column {key!r} is empty")
    _check_choice(raw["group"], GROUPS, "group", where)
    _check_choice(raw["phase"], PHASES, "phase", where)
    _check_choice(raw["metric"], METRICS, "metric", where)
    _check_choice(raw["comparison_role"], ROLES, "comparison_role", where)
    if bool(raw["comparison"]) != bool(raw["comparison_role"]):
        raise TableError(f"{where}: columns 'comparison' and 'comparison_role' must be both set or both empty")
    if not raw["source_url"].startswith("https://"):
        raise TableError(f"{where}: column 'source_url' must be an https:// address, got {raw['source_url']!r}")
    try:
        value = float(raw["value"])
    except ValueError:
        raise TableError(f"{where}: column 'value' must be a number, got {raw['value']!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise TableError(f"{where}: column 'value' must be a positive number, got {value}")
    ints = {k: _positive_int(raw, k, where) for k in ("tp", "ep", "batch", "prompt_len", "gen_len")}
    text = {k: raw[k].strip() for k in COLUMNS if k not in ints and k != "value"}
    return Row(**text, **ints, value=value)  # type: ignore[arg-type]


def load_rows(path: Path = DEFAULT_TABLE) -> list[Row]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or tuple(reader.fieldnames) != COLUMNS:
            raise TableError(f"{path}: header must be {','.join(COLUMNS)}")
        rows = [parse_row(raw, i) for i, raw in enumerate(reader, start=2)]
    ids = [r.id for r in rows]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise TableError(f"{path}: duplicate id(s) {', '.join(dupes)}")
    for cid in {r.comparison for r in rows if r.comparison}:
        refs = [r for r in rows if r.comparison == cid and r.comparison_role == "ref"]
        if len(refs) != 1:
            raise TableError(f"{path}: comparison {cid!r} needs exactly one 'ref' row, has {len(refs)}")
    return rows


# --- predictions -------------------------------------------------------------------------------------


ENGINE_CHOICES = ("none", "row", "trtllm", "vllm", "sglang")


def row_engine(row: Row, choice: str) -> str | None:
    """The engine keyword for a row under ``--engine choice`` (None: the generic kernel families)."""
    if choice == "none":
        return None
    if choice != "row":
        return choice
    text = row.engine.lower()
    for prefix, engine in (("tensorrt-llm", "trtllm"), ("trtllm", "trtllm"), ("vllm", "vllm"), ("sglang", "sglang")):
        if text.startswith(prefix):
            return engine
    return None


@cache
def _totals(model: str, hardware: str, quant: str, kv_dtype: str, tp: int, ep: int, efficiency: str, phase: str,
            batch: int, prompt_len: int, context: int, gen_len: int, engine: str | None = None) -> dict[str, object]:
    """rooflm's totals (plus whether it fits) for one analysis; cached since rows share analyses."""
    report = rooflm.analyze(model, hardware, phase=phase, batch=batch, prompt_len=prompt_len, context=context,
                            gen_len=gen_len, quant=quant, kv_dtype=kv_dtype, efficiency=efficiency, tp=tp, ep=ep,
                            engine=engine)
    doc = report.to_json_dict()
    totals = dict(doc["totals"])  # type: ignore[call-overload]
    totals["fits"] = doc["memory"]["fits"]  # type: ignore[index]
    return totals


def _num(totals: dict[str, object], key: str) -> float:
    v = totals.get(key)
    if not isinstance(v, (int, float)) or not math.isfinite(v):
        raise RooflmError(f"rooflm reported no {key} for this setup")
    return float(v)


def predict(row: Row, efficiency: str = "calibrated", engine: str = "none") -> tuple[float, bool]:
    """rooflm's value of ``row.metric`` for the row's setup and whether every analysis used fits in memory."""
    def run(phase: str, batch: int, context: int | None = None) -> dict[str, object]:
        return _totals(row.model, row.hardware, row.quant, row.kv_dtype, row.tp, row.ep, efficiency, phase, batch,
                       row.prompt_len, context if context is not None else row.prompt_len, row.gen_len,
                       row_engine(row, engine))

    b, n_out, m = row.batch, row.gen_len, row.metric
    if row.phase in ("decode", "prefill"):
        step = run(row.phase, b, row.prompt_len + row.gen_len if row.phase == "decode" else None)
        if m in ("step_time_s", "tpot_s" if row.phase == "decode" else "ttft_s"):
            return _num(step, "time_s"), bool(step["fits"])
        raise RooflmError(f"metric {m} has no mapping for phase {row.phase}")
    e2e = run("e2e", b)
    fits = bool(e2e["fits"])
    if m == "e2e_latency_s":
        return _num(e2e, "time_s"), fits
    if m == "output_tokens_per_s":
        return _num(e2e, "output_tokens_per_s"), fits
    if m == "output_tokens_per_s_per_user":
        return n_out / _num(e2e, "time_s"), fits
    if row.phase == "e2e":
        return _num(e2e, m), fits  # ttft_s / tpot_s of the static batch
    one = run("prefill", 1)  # serving: a new prompt is prefilled alone
    if m == "ttft_s":
        return _num(one, "time_s"), fits and bool(one["fits"])
    if n_out < 2:
        raise RooflmError("tpot needs gen_len ≥ 2")
    return (_num(e2e, "time_s") - _num(one, "time_s")) / (n_out - 1), fits


# --- evaluation --------------------------------------------------------------------------------------


@dataclass
class Result:
    row: Row
    predicted: float | None = None
    error: float | None = None  # predicted / measured − 1
    fits: bool | None = None
    skipped: str | None = None


@dataclass
class GroupStats:
    group: str
    rows: int
    skipped: int
    median_abs_error: float | None
    worst_abs_error: float | None
    worst_id: str | None


@dataclass
class Pair:
    comparison: str
    ref: str
    alt: str
    measured_ratio: float
    predicted_ratio: float | None
    right_side: bool | None
    note: str = ""
    reference_quant: str = ""  # the ref row's scheme: int4 vs fp8 is the founding question, int4 vs bf16 is not


@dataclass
class Summary:
    date: str
    efficiency: str
    engine: str
    table: str
    rooflm_version: str
    rows: int
    predicted: int
    skipped: int
    groups: list[GroupStats] = field(default_factory=list)
    pairs: list[Pair] = field(default_factory=list)
    pairs_right_side: int = 0
    pairs_total: int = 0
    # The same count per reference scheme: {"fp8": [right, judged], "bf16": [...]}, so that the easy comparisons
    # (a 4-bit scheme against bf16 at small batch) never hide how the hard ones (against fp8) fare.
    pairs_by_reference: dict[str, list[int]] = field(default_factory=dict)


def evaluate_row(row: Row, efficiency: str, engine: str = "none") -> Result:
    try:
        value, fits = predict(row, efficiency, engine)
    except RooflmError as exc:  # the model, scheme or layout is not something rooflm models (yet)
        return Result(row, skipped=str(exc).splitlines()[0])
    return Result(row, predicted=value, error=value / row.value - 1.0, fits=fits)


def group_stats(results: Sequence[Result]) -> list[GroupStats]:
    out = []
    for g in GROUPS:
        mine = [r for r in results if r.row.group == g]
        done = [r for r in mine if r.error is not None]
        worst = max(done, key=lambda r: abs(r.error or 0.0), default=None)
        out.append(GroupStats(
            group=g, rows=len(mine), skipped=len(mine) - len(done),
            median_abs_error=statistics.median(abs(r.error or 0.0) for r in done) if done else None,
            worst_abs_error=abs(worst.error or 0.0) if worst else None, worst_id=worst.row.id if worst else None))
    return out


def _speed(metric: str, value: float) -> float:
    """Larger is faster: rates as they are, times inverted."""
    return value if metric in RATE_METRICS else 1.0 / value


def comparison_pairs(results: Sequence[Result]) -> list[Pair]:
    by_id: dict[str, list[Result]] = {}
    for r in results:
        if r.row.comparison:
            by_id.setdefault(r.row.comparison, []).append(r)
    pairs = []
    for cid, members in sorted(by_id.items()):
        ref = next(r for r in members if r.row.comparison_role == "ref")
        for alt in (r for r in members if r.row.comparison_role == "alt"):
            measured = _speed(alt.row.metric, alt.row.value) / _speed(ref.row.metric, ref.row.value)
            if ref.predicted is None or alt.predicted is None:
                pairs.append(Pair(cid, ref.row.id, alt.row.id, measured, None, None, "skipped: a row was not predicted",
                                  ref.row.quant))
                continue
            predicted = _speed(alt.row.metric, alt.predicted) / _speed(ref.row.metric, ref.predicted)
            right = (measured - 1.0) * (predicted - 1.0) > 0 or measured == predicted == 1.0
            pairs.append(Pair(cid, ref.row.id, alt.row.id, measured, predicted, right, reference_quant=ref.row.quant))
    return pairs


def evaluate(rows: Sequence[Row], efficiency: str = "calibrated", progress: bool = True,
             table: Path = DEFAULT_TABLE, engine: str = "none") -> tuple[list[Result], Summary]:
    it: Iterable[Row] = rows
    if progress:
        it = track(rows, description="analyzing", console=Console(stderr=True), transient=True)
    results = [evaluate_row(r, efficiency, engine) for r in it]
    pairs = comparison_pairs(results)
    judged = [p for p in pairs if p.right_side is not None]
    summary = Summary(
        date=datetime.date.today().isoformat(), efficiency=efficiency, engine=engine, table=str(table),
        rooflm_version=getattr(rooflm, "__version__", "unknown"), rows=len(results),
        predicted=sum(r.error is not None for r in results), skipped=sum(r.skipped is not None for r in results),
        groups=group_stats(results), pairs=pairs, pairs_right_side=sum(bool(p.right_side) for p in judged),
        pairs_total=len(judged), pairs_by_reference=pairs_by_reference(judged))
    return results, summary


def pairs_by_reference(judged: Sequence[Pair]) -> dict[str, list[int]]:
    """Right-side count and judged count per reference scheme, in first-seen order."""
    out: dict[str, list[int]] = {}
    for p in judged:
        count = out.setdefault(p.reference_quant, [0, 0])
        count[0] += bool(p.right_side)
        count[1] += 1
    return out


# --- output ------------------------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:+.1f}%"


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.4g}"


def _reason(r: Result) -> str:
    return f"skipped: {(r.skipped or '').split(';')[0]}"


def print_report(results: Sequence[Result], summary: Summary, console: Console) -> None:
    engine = "" if summary.engine == "none" else f", engine {summary.engine}"
    rows = Table(title=f"rooflm {summary.efficiency}{engine} vs published measurements ({summary.date})")
    for col in ("id", "group", "metric", "measured", "predicted", "error"):
        rows.add_column(col, justify="right" if col in ("measured", "predicted", "error") else "left")
    for r in results:
        w = r.row
        err = _reason(r) if r.skipped else _pct(r.error) + ("" if r.fits in (None, True) else " (no fit)")
        rows.add_row(w.id, w.group, w.metric, _fmt(w.value), _fmt(r.predicted), err)
    console.print(rows)

    groups = Table(title="error per group (|predicted / measured − 1|)")
    for col in ("group", "rows", "skipped", "median", "worst", "worst row"):
        groups.add_column(col)
    for g in summary.groups:
        groups.add_row(g.group, str(g.rows), str(g.skipped), _pct(g.median_abs_error).lstrip("+"),
                       _pct(g.worst_abs_error).lstrip("+"), g.worst_id or "—")
    console.print(groups)

    per_ref = "; ".join(f"against {q}: {r} of {n}" for q, (r, n) in summary.pairs_by_reference.items())
    pairs = Table(title=f"quantization comparisons on the right side of 1: {summary.pairs_right_side} of "
                        f"{summary.pairs_total} ({per_ref})")
    for col in ("comparison", "alt vs ref", "measured speed ratio", "predicted", "right side"):
        pairs.add_column(col)
    for p in summary.pairs:
        side = p.note or ("yes" if p.right_side else "NO")
        pairs.add_row(p.comparison, f"{p.alt} / {p.ref}", f"{p.measured_ratio:.3f}", _fmt(p.predicted_ratio), side)
    console.print(pairs)


def to_json(results: Sequence[Result], summary: Summary) -> dict[str, object]:
    return {
        "summary": asdict(summary),
        "rows": [{**asdict(r.row), "predicted": r.predicted, "error": r.error, "fits": r.fits, "skipped": r.skipped}
                 for r in results],
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--table", type=Path, default=DEFAULT_TABLE, help="the CSV of published measurements")
    ap.add_argument("--efficiency", default="calibrated", choices=("calibrated", "ideal"))
    ap.add_argument("--engine", default="none", choices=ENGINE_CHOICES,
                    help="kernel tables of an engine: none (generic families), row (each row's), or one engine")
    ap.add_argument("--limit", type=int, default=None, help="evaluate only the first N rows")
    ap.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    args = ap.parse_args(argv)
    try:
        rows = load_rows(args.table)
    except (OSError, TableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.limit is not None:
        if args.limit < 1:
            print("error: --limit must be ≥ 1", file=sys.stderr)
            return 2
        rows = rows[: args.limit]
    results, summary = evaluate(rows, args.efficiency, progress=sys.stderr.isatty(), table=args.table,
                                engine=args.engine)
    if args.json:
        print(json.dumps(to_json(results, summary), indent=2))
    else:
        print_report(results, summary, Console())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
