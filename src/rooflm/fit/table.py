"""The measurement table `rooflm fit` reads: CSV or JSON, one row per measured point, checked row by row.

Columns are named like the CLI flags (``prompt_len`` or ``prompt-len``); a missing or empty one takes the CLI
default. Each row carries exactly one measurement: ``measured_s`` (``analyze --json``'s ``totals.time_s`` for the
row's phase), ``ttft_s``, ``tpot_s`` or output ``tokens_per_s``. Every measurement is turned into seconds of the
step (or request) rooflm predicts, so the fit compares like with like. A bad row is refused with its line and column.

A ``model`` or ``hardware`` cell may name a file (a config.json, a hardware .toml): a relative path is read from the
table's folder when the file is there, so a table and the files it names can be moved together (`rooflm validate
--write-table` writes such tables).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rooflm.core.inputs import DEPLOYMENT_FIELDS, check_lengths, check_phase, setup
from rooflm.core.profile_params import PARAMETERS
from rooflm.errors import InvalidInputError, RooflmError, quoted
from rooflm.specs.files import MAX_TABLE_BYTES, read_text_limited

MEASURED = ("measured_s", "ttft_s", "tpot_s", "tokens_per_s")
# The workload columns and their CLI defaults (rooflm analyze's).
WORKLOAD: dict[str, Any] = {"model": "llama-3.1-8b", "hardware": "h100-sxm", "phase": "decode", "batch": 1,
                            "prompt_len": 1024, "context": None, "gen_len": 256, "lm_head_all_tokens": False}
_WORKLOAD_TYPES: dict[str, Any] = {"model": str, "hardware": str, "phase": str, "batch": int, "prompt_len": int,
                                   "context": int, "gen_len": int, "lm_head_all_tokens": bool}
# The fit estimates these, in calibrated mode: a table cannot also set them (nor predict with a profile).
_FITTED = {p.cli_name for p in PARAMETERS} | {"efficiency", "profile"}
_DEPLOYMENT = {f.cli_name: f for f in DEPLOYMENT_FIELDS if f.cli_name not in _FITTED}
COLUMNS: tuple[str, ...] = (*WORKLOAD, *_DEPLOYMENT, *MEASURED)
# Which measurements each phase can be compared with (a prefill has no time per output token).
_QUANTITIES = {"prefill": ("measured_s", "ttft_s"), "decode": ("measured_s", "tpot_s", "tokens_per_s"),
               "e2e": MEASURED}
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


@dataclass(frozen=True)
class Point:
    """One measured row, resolved: where it is in the file, the workload, the deployment and the measured seconds."""

    line: int
    model: str
    hardware: str  # the catalog's canonical name, so that "h100" and "h100-sxm" are one device
    phase: str
    batch: int
    prompt_len: int
    context: int
    gen_len: int
    lm_head_all_tokens: bool
    deployment: dict[str, Any] = field(hash=False)  # API keywords (kernel_overhead_s, not kernel_overhead)
    quantity: str = "measured_s"
    value: float = 0.0  # as given, in the column's unit
    seconds: float = 0.0  # the time rooflm predicts for it: tokens / tokens_per_s for a throughput
    # What rooflm.core.inputs.setup is given for the device: the file a hardware cell names (its canonical name, above,
    # is the file's own name, which the catalog does not know); "" means the canonical name itself.
    hardware_source: str = ""

    @property
    def device(self) -> str:
        """The hardware argument that predicts this point (a catalog name or a hardware file)."""
        return self.hardware_source or self.hardware

    @property
    def group(self) -> tuple[Any, ...]:
        """Points one vectorised evaluation covers: everything but batch, prompt length and context."""
        return (self.model, self.hardware, self.phase, self.gen_len, self.lm_head_all_tokens,
                tuple(sorted(self.deployment.items())))


class TableError(InvalidInputError):
    """A malformed row: the message starts with the file, line and column."""


def read_table(path: str | Path) -> list[Point]:
    """Read and check a CSV or JSON measurement table (by extension; .json is JSON, anything else CSV)."""
    p = Path(path)
    text = read_text_limited(p, MAX_TABLE_BYTES, f"measurement table {p}", "a measurement table", field="data")
    is_json = p.suffix.lower() == ".json"
    rows = _json_rows(p.name, text) if is_json else _csv_rows(p.name, text)
    if not rows:
        raise InvalidInputError(f"{p.name}: no measurement rows", field="data")
    return [_point(p.name, "row" if is_json else "line", line, _beside(p.parent, row)) for line, row in rows]


def _beside(folder: Path, row: dict[str, Any]) -> dict[str, Any]:
    """The row with a relative model or hardware file path that exists in the table's folder made to point there."""
    out = dict(row)
    for column in ("model", "hardware"):
        cell = out.get(column)
        if not isinstance(cell, str) or not cell.strip() or Path(cell.strip()).is_absolute():
            continue
        candidate = folder / cell.strip()
        if (cell.strip().endswith((".json", ".toml")) or "/" in cell) and candidate.exists():
            out[column] = str(candidate)
    return out


def _csv_rows(name: str, text: str) -> list[tuple[int, dict[str, str]]]:
    """(line number, cells by column) for each row; blank lines and lines starting with '#' are comments."""
    header: list[str] | None = None
    rows: list[tuple[int, dict[str, str]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            cells = [c.strip() for c in next(csv.reader([line]))]
        except csv.Error as exc:  # a NUL byte, a cell past csv's field limit (128 KiB)
            raise TableError(f"{name} line {number}: not a CSV row ({exc})", field="data") from None
        if header is None:
            header = [_column(name, number, c) for c in cells]
            continue
        if len(cells) != len(header):
            raise TableError(f"{name} line {number}: {len(cells)} cells for {len(header)} columns", field="data")
        rows.append((number, dict(zip(header, cells, strict=True))))
    return rows


def _json_rows(name: str, text: str) -> list[tuple[int, dict[str, Any]]]:
    """A JSON list of objects; a row's "line" is its 1-based position in the list."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TableError(f"{name} line {exc.lineno}: not JSON ({exc.msg})", field="data") from None
    if isinstance(doc, dict) and isinstance(doc.get("points"), list):
        doc = doc["points"]
    if not isinstance(doc, list):
        raise TableError(f"{name}: expected a list of rows (objects), got {type(doc).__name__}", field="data")
    rows = []
    for number, row in enumerate(doc, start=1):
        if not isinstance(row, dict):
            raise TableError(f"{name} row {number}: expected an object, got {quoted(row)}", field="data")
        rows.append((number, {_column(name, number, str(k), "row"): v for k, v in row.items()}))
    return rows


def _column(name: str, line: int, column: str, where: str = "line") -> str:
    key = column.strip().lower().replace("-", "_").lstrip("_")
    if key not in COLUMNS:
        raise TableError(f"{name} {where} {line}, column {quoted(column)}: unknown column (known: {', '.join(COLUMNS)})",
                         field="data")
    return key


def _point(name: str, where: str, line: int, row: dict[str, Any]) -> Point:
    cells = {k: v for k, v in row.items() if v is not None and v != ""}

    def fail(column: str, problem: str) -> TableError:
        return TableError(f"{name} {where} {line}, column {column}: {problem}", field=column)

    values = {k: _parse(cells[k], _WORKLOAD_TYPES[k], k, fail) for k in WORKLOAD if k in cells}
    deployment = {_DEPLOYMENT[k].name: _parse(v, _field_type(k), k, fail) for k, v in cells.items() if k in _DEPLOYMENT}
    measured = [k for k in MEASURED if k in cells]
    if len(measured) != 1:
        problem = "no measurement" if not measured else f"{len(measured)} measurements"
        raise fail(measured[1] if measured else "measured_s", f"{problem}; give one of {', '.join(MEASURED)}")
    quantity = measured[0]
    value = _parse(cells[quantity], float, quantity, fail)
    if not (math.isfinite(value) and value > 0):
        raise fail(quantity, f"a measurement must be a positive number, got {quoted(cells[quantity])}")
    w = {**WORKLOAD, **values}
    try:
        phase = check_phase(w["phase"])
    except RooflmError as exc:
        raise fail("phase", str(exc)) from None
    if quantity not in _QUANTITIES[phase]:
        raise fail(quantity, f"a {phase} row cannot be compared with {quantity} (use {', '.join(_QUANTITIES[phase])})")
    context = w["prompt_len"] if w["context"] is None else w["context"]
    hardware = _resolve(w, phase, context, deployment, fail)
    tokens = w["batch"] * (w["gen_len"] if phase == "e2e" else 1)
    seconds = tokens / value if quantity == "tokens_per_s" else value
    source = w["hardware"] if _is_hardware_file(w["hardware"]) else ""
    return Point(line, w["model"], hardware, phase, w["batch"], w["prompt_len"], context, w["gen_len"],
                 w["lm_head_all_tokens"], deployment, quantity, value, seconds, source)


def _is_hardware_file(cell: str) -> bool:
    """As rooflm.specs.hardware.load_hardware decides: a .toml name or an existing file is a file, not a catalog name."""
    return cell.endswith(".toml") or Path(cell).is_file()


def _resolve(w: dict[str, Any], phase: str, context: int, deployment: dict[str, Any], fail: Any) -> str:
    """Check the row as rooflm would (names, sizes, layout, lengths); returns the device's canonical name."""
    for k in ("batch", "prompt_len", "gen_len"):
        if w[k] < 1:
            raise fail(k, f"must be at least 1, got {w[k]}")
    if context < 1:
        raise fail("context", f"must be at least 1, got {context}")
    try:
        s = setup(w["model"], w["hardware"], efficiency="calibrated", **deployment)
        check_lengths(s.model, phase, [w["prompt_len"]], [context], w["gen_len"])
    except RooflmError as exc:
        column = _column_of(exc.field)
        raise fail(column, str(exc)) from None
    return s.hardware.name


def _column_of(field_name: str | None) -> str:
    """The table column an error from the API is about (its field is the API keyword or the flag's name)."""
    if field_name is None:
        return "model"
    for f in DEPLOYMENT_FIELDS:
        if field_name == f.name:
            return f.cli_name
    return field_name


def _field_type(column: str) -> Any:
    t = _DEPLOYMENT[column].value_type
    for simple in (bool, int, float):
        if t is simple or (hasattr(t, "__args__") and simple in t.__args__):
            return simple
    return str


def _parse(raw: Any, kind: Any, column: str, fail: Any) -> Any:
    """A cell as its column's type: text from CSV, or a JSON value (an integer column refuses 2.5 and true)."""
    if kind is str:
        if not isinstance(raw, str):
            raise fail(column, f"expected text, got {quoted(raw)}")
        return raw.strip()
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise fail(column, f"expected true or false, got {quoted(raw)}")
    if isinstance(raw, bool):
        raise fail(column, f"expected a number, got {quoted(raw)}")
    try:
        number = float(raw) if kind is float else _integer(raw)
    except (TypeError, ValueError, OverflowError):
        raise fail(column, f"expected {'a number' if kind is float else 'an integer'}, got {quoted(raw)}") from None
    if kind is float and not math.isfinite(number):
        raise fail(column, f"expected a finite number, got {quoted(raw)}")
    return number


def _integer(raw: Any) -> int:
    if isinstance(raw, float):
        if not raw.is_integer():
            raise ValueError(raw)
        return int(raw)
    if isinstance(raw, int):
        return raw
    return int(str(raw).strip())
