"""Grids of workloads, evaluated vectorised a chunk of points at a time.

A grid's points are numbered batch-major (``numpy.meshgrid(..., indexing="ij")`` flattened), and a chunk is a
range of those numbers: its axis values are computed from the numbers, so no array the size of the grid is
ever built. ``sweep`` concatenates the chunks; ``sweep_chunks`` hands them over one by one, and
``write_csv`` / ``write_json`` stream them, so a CSV of 10^8 points needs the memory of one chunk.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
from typing_extensions import Unpack

from rooflm.analyses import jsonstream
from rooflm.analyses.analyze import STEP_COLUMNS, run_phase, total_columns
from rooflm.core import engine, graph
from rooflm.core.evaluate import OpTotals
from rooflm.core.inputs import REALISTIC_EFFICIENCY, Deployment, Setup, check_lengths, check_phase, setup
from rooflm.core.roofline import BOUNDS
from rooflm.errors import InvalidInputError, RooflmError, arg, named
from rooflm.kinds import OP_CLASSES
from rooflm.specs.hardware import HardwareSpec
from rooflm.specs.model import ModelSpec
from rooflm.specs.workload import check_positive

# Columns of a sweep point after its axis values; names follow analyze's "totals".
TOTAL_COLUMNS: tuple[str, ...] = (*STEP_COLUMNS[:-1], "bound", "tokens_per_s", "memory_total_bytes", "fits",
                                  "max_batch")
E2E_COLUMNS: tuple[str, ...] = ("ttft_s", "tpot_s", "output_tokens_per_s")
# An ideal sweep's calibrated expectation per point (analyze's totals.calibrated): the same chunk evaluated once more,
# times only, so the sweep stays vectorised at about twice the work of its times.
EXPECTED_COLUMNS: tuple[str, ...] = ("calibrated_time_s", "calibrated_bound")

# What cannot finish is refused before any work (benchmarks/bench_bounds.py measures these costs). Streamed, a
# point costs ~1 µs to evaluate and ~20 µs to write as text (Python's shortest float repr dominates): 10^8 points
# is about half an hour and ~40 GB of CSV. Held in memory (``sweep``), a point costs ~300 bytes, so 10^7 points
# is ~3 GB. An e2e point also evaluates each of its gen_len − 1 decode steps (~0.2 µs each): 10^10 point-steps is
# about 35 minutes.
MAX_POINTS = 100_000_000
MAX_POINTS_IN_MEMORY = 10_000_000
MAX_E2E_POINT_STEPS = 10_000_000_000
# Array elements per chunk: large enough that numpy's per-call overhead is amortised, small enough that one
# chunk's intermediates stay in the hundreds of megabytes (~2 kB per point, ~0.2 kB per e2e point-step: an e2e
# point's decode steps are a (points × gen_len − 1) array, reduced right after each operator is timed).
CHUNK_ELEMENTS = 1 << 15
E2E_CHUNK_ELEMENTS = 1 << 18


@dataclass(frozen=True)
class SweepResult:
    """One row per grid point, stored as columns (numpy arrays of equal length)."""

    model: str
    hardware: str
    phase: str
    quant: str
    efficiency: str
    layout: str
    axes: dict[str, np.ndarray]
    columns: dict[str, np.ndarray] = field(repr=False)
    profile: dict[str, str | None] | None = None  # the profile predicted with (rooflm.core.inputs.Setup.profile)
    engine_kernels: str | None = None  # the engine's part of the mode's name (Setup.engine_kernels)

    def __len__(self) -> int:
        return len(next(iter(self.axes.values())))

    @classmethod
    def concat(cls, pieces: Sequence[SweepResult]) -> SweepResult:
        """The pieces of one grid (``sweep_chunks``' chunks) as one result, in order."""
        first = pieces[0]
        if len(pieces) == 1:
            return first
        return cls(first.model, first.hardware, first.phase, first.quant, first.efficiency, first.layout,
                   {k: np.concatenate([p.axes[k] for p in pieces]) for k in first.axes},
                   {k: np.concatenate([p.columns[k] for p in pieces]) for k in first.columns}, first.profile,
                   first.engine_kernels)

    def _all_columns(self) -> dict[str, np.ndarray]:
        return {**self.axes, **self.columns}

    def points(self) -> list[dict[str, object]]:
        """One dict per point; an undefined figure (NaN, e.g. TPOT with gen_len 1) is None, as in analyze."""
        names = list(self._all_columns())
        as_py = [_python_values(c) for c in self._all_columns().values()]
        return [dict(zip(names, row, strict=True)) for row in zip(*as_py, strict=True)]

    def json_head(self) -> dict[str, object]:
        """The document's keys before "points"."""
        return {"model": self.model, "hardware": self.hardware, "phase": self.phase, "quant": self.quant,
                "efficiency": self.efficiency, "engine_kernels": self.engine_kernels, "profile": self.profile,
                "layout": self.layout}

    def to_json_dict(self) -> dict[str, object]:
        return {**self.json_head(), "points": self.points()}

    def json_points(self) -> list[str]:
        """The points as JSON text, laid out as in ``json.dumps(self.to_json_dict(), indent=2)``."""
        return jsonstream.objects({k: jsonstream.scalars(v) for k, v in self._all_columns().items()})

    def csv_header(self) -> list[str]:
        return [*self.axes, *self.columns]

    def csv_rows(self) -> Iterator[tuple[object, ...]]:
        return zip(*(c.tolist() for c in self._all_columns().values()), strict=True)

    def to_csv(self) -> str:
        buf = io.StringIO()
        write_csv([self], buf)
        return buf.getvalue()


def _python_values(column: np.ndarray) -> list[object]:
    values = column.tolist()
    if column.dtype.kind == "f" and not np.all(np.isfinite(column)):
        return [jsonstream.finite_or_none(v) for v in values]
    return values


def write_csv(chunks: Iterable[SweepResult], out: TextIO) -> None:
    """A header, then one row per point, a chunk at a time."""
    writer = csv.writer(out)
    for i, chunk in enumerate(chunks):
        if i == 0:
            writer.writerow(chunk.csv_header())
        writer.writerows(chunk.csv_rows())


def write_json(chunks: Iterable[SweepResult], out: TextIO) -> None:
    """The document ``json.dumps(sweep(...).to_json_dict(), indent=2)`` prints, written a chunk at a time."""
    it = iter(chunks)
    first = next(it)
    jsonstream.write_document(out, first.json_head(), (c.json_points() for c in itertools.chain([first], it)))


def _axis_lists(phase: str, batch: Sequence[int], prompt_len: Sequence[int],
                context: Sequence[int] | None) -> dict[str, Sequence[int]]:
    """The axes a phase's grid spans, in grid order (batch outermost)."""
    if phase == "decode":
        return {"batch": batch, "context": prompt_len if context is None else context}
    return {"batch": batch, "prompt_len": prompt_len}


def count_points(*, phase: str = "decode", batch: Sequence[int] = (1,), prompt_len: Sequence[int] = (1024,),
                 context: Sequence[int] | None = None) -> int:
    """How many points ``sweep`` would evaluate for these axes, without evaluating (or checking) any.

    decode spans batch × context (context defaults to prompt_len); prefill and e2e span batch × prompt_len."""
    phase = check_phase(phase)
    return math.prod(len(v) for v in _axis_lists(phase, batch, prompt_len, context).values())


def check_size(phase: str, points: int, gen_len: int, max_points: int = MAX_POINTS) -> None:
    """Refuse, before any work, a grid that cannot finish: too many points, or (e2e) too many decode steps."""
    if points > max_points:
        where = "in memory; stream it with --csv/--json or rooflm.sweep_chunks" if max_points < MAX_POINTS else \
            "in one sweep; split the ranges or step through them (1:N:x2)"
        raise InvalidInputError(f"the sweep has {points:,} points; at most {max_points:,} can be evaluated {where}",
                                field="batch")
    steps = points * max(gen_len - 1, 0) if phase == "e2e" else 0
    if steps > MAX_E2E_POINT_STEPS:
        raise InvalidInputError(
            f"the e2e sweep has {points:,} points × {gen_len - 1:,} decode steps = {steps:,} step evaluations; at "
            f"most {MAX_E2E_POINT_STEPS:,} can be evaluated: fewer points or a shorter {arg('gen_len')}", field="gen_len")


def chunk_size(phase: str, gen_len: int) -> int:
    """Points per chunk: a bounded number of array elements (an e2e point has one per decode step)."""
    if phase == "e2e":
        return max(E2E_CHUNK_ELEMENTS // max(gen_len - 1, 1), 1)
    return CHUNK_ELEMENTS


def sweep_chunks(model: str | Path | ModelSpec = "llama-3.1-8b", hardware: str | Path | HardwareSpec = "h100-sxm", *,
                 phase: str = "decode", batch: Sequence[int] = (1,), prompt_len: Sequence[int] = (1024,),
                 context: Sequence[int] | None = None, gen_len: int = 256, lm_head_all_tokens: bool = False,
                 points_per_chunk: int | None = None, **deployment: Unpack[Deployment]) -> Iterator[SweepResult]:
    """``sweep``'s points as consecutive SweepResults of at most ``points_per_chunk`` points each (by default, as
    many as keep one chunk's arrays small). Every input is checked, and an oversize grid refused, at the call,
    before the first chunk is asked for."""
    grid = _prepare(model, hardware, phase, batch, prompt_len, context, gen_len, MAX_POINTS, deployment)
    size = chunk_size(phase, gen_len) if points_per_chunk is None else points_per_chunk
    if size < 1:
        raise InvalidInputError(f"points_per_chunk must be a positive integer, got {size}", field="points_per_chunk")
    return _chunks(grid, lm_head_all_tokens, size)


def sweep(model: str | Path | ModelSpec = "llama-3.1-8b", hardware: str | Path | HardwareSpec = "h100-sxm", *,
          phase: str = "decode", batch: Sequence[int] = (1,), prompt_len: Sequence[int] = (1024,),
          context: Sequence[int] | None = None, gen_len: int = 256, lm_head_all_tokens: bool = False,
          **deployment: Unpack[Deployment]) -> SweepResult:
    """Every combination of the axes (batch × prompt length × context), evaluated vectorised, chunk by chunk."""
    grid = _prepare(model, hardware, phase, batch, prompt_len, context, gen_len, MAX_POINTS_IN_MEMORY, deployment)
    return SweepResult.concat(list(_chunks(grid, lm_head_all_tokens, chunk_size(phase, gen_len))))


@dataclass(frozen=True)
class _Grid:
    """A checked request: the setup, the axes it spans (grid order) and the values of the one it does not."""

    setup: Setup
    phase: str
    axes: dict[str, np.ndarray]
    fixed: dict[str, np.float64]
    gen_len: int
    expected: Setup | None = None  # the same deployment in calibrated mode, beside an ideal sweep


def _prepare(model: str | Path | ModelSpec, hardware: str | Path | HardwareSpec, phase: str, batch: Sequence[int],
             prompt_len: Sequence[int], context: Sequence[int] | None, gen_len: int, max_points: int,
             deployment: Deployment) -> _Grid:
    """Check every input (the grid's size first: it is the cheapest) and resolve the deployment."""
    phase = check_phase(phase)
    batch, prompt_len = list(batch), list(prompt_len)
    context = prompt_len if context is None else list(context)
    check_size(phase, count_points(phase=phase, batch=batch, prompt_len=prompt_len, context=context), gen_len,
               max_points)
    for name, values in {"batch": batch, "prompt_len": prompt_len, "context": context}.items():
        if not values:
            raise InvalidInputError(f"{named(name)} lists no value: the sweep has no point", field=name)
    check_positive(batch=batch, prompt_len=prompt_len, context=context, gen_len=gen_len)
    s = setup(model, hardware, **deployment)
    check_lengths(s.model, phase, prompt_len, context, gen_len)
    axes = {name: np.asarray(v, dtype=np.int64) for name, v in _axis_lists(phase, batch, prompt_len, context).items()}
    # The axis a phase does not span is fixed at its first value (prompt_len in decode, context elsewhere).
    fixed = {"prompt_len": np.float64(prompt_len[0]), "context": np.float64(context[0])}
    return _Grid(s, phase, axes, fixed, gen_len, _expected_setup(s, deployment))


def _expected_setup(s: Setup, deployment: Deployment) -> Setup | None:
    """The deployment in calibrated mode, for an ideal sweep's expectation; None when the sweep is not ideal or
    calibrated mode refuses one of its keywords (analyze's totals.calibrated is null there too)."""
    if s.eff.mode != "ideal":
        return None
    try:
        calibrated: Deployment = {**deployment, "efficiency": REALISTIC_EFFICIENCY}
        return setup(s.model, s.hardware, **calibrated)
    except RooflmError:
        return None


def _chunks(grid: _Grid, lm_head_all_tokens: bool, size: int) -> Iterator[SweepResult]:
    """Points ``start`` … ``start + size − 1`` of the flattened grid, their axis values computed from the numbers."""
    shape = tuple(len(v) for v in grid.axes.values())
    n = math.prod(shape)
    for start in range(0, n, size):
        index = np.unravel_index(np.arange(start, min(start + size, n)), shape)
        flat = {name: values[i] for (name, values), i in zip(grid.axes.items(), index, strict=True)}
        yield _evaluate(grid, flat, lm_head_all_tokens)


def _evaluate(grid: _Grid, flat: dict[str, np.ndarray], lm_head_all_tokens: bool) -> SweepResult:
    """One chunk's points (``flat``: their axis values) through the one evaluation path."""
    s, phase, gen_len = grid.setup, grid.phase, grid.gen_len
    b = flat["batch"].astype(np.float64)
    pl = flat["prompt_len"].astype(np.float64) if "prompt_len" in flat else grid.fixed["prompt_len"]
    ctx = flat["context"].astype(np.float64) if "context" in flat else grid.fixed["context"]
    r = run_phase(s, phase, b, pl, ctx, gen_len, lm_head_all_tokens)
    assert r.memory is not None  # run_phase computes it unless told not to
    step, n = r.step, len(b)

    def full(x: object) -> np.ndarray:
        return np.broadcast_to(np.asarray(x, dtype=np.float64), (n,)).copy()

    totals = {k: full(v) for k, v in total_columns(s, r).items()}
    cols: dict[str, np.ndarray] = {
        **{k: totals[k] for k in STEP_COLUMNS[:-1]}, "bound": np.asarray(BOUNDS)[np.broadcast_to(step.bound, (n,))],
        "tokens_per_s": totals["tokens_per_s"], "memory_total_bytes": full(r.memory.total_bytes),
        "fits": np.broadcast_to(r.memory.fits, (n,)).copy(), "max_batch": full(r.memory.max_batch).astype(np.int64),
    }
    memory_index = BOUNDS.index("memory")
    for c in OP_CLASSES:
        members = [o for o in r.ops if o.op.op_class == c]
        cols[f"{c}_time_s"] = full(sum((o.time_s - o.overhead_s for o in members), np.zeros(())))
        cols[f"{c}_memory_bound_s"] = full(sum((o.time_by_bound[memory_index] for o in members), np.zeros(())))
    if phase == "e2e":
        cols |= {"ttft_s": full(r.ttft_s), "tpot_s": full(r.tpot_s), "output_tokens_per_s": totals["output_tokens_per_s"]}
    if grid.expected is not None:
        expected = run_phase(grid.expected, phase, b, pl, ctx, gen_len, lm_head_all_tokens, with_memory=False).step
        cols |= {"calibrated_time_s": full(expected.time_s),
                 "calibrated_bound": np.asarray(BOUNDS)[np.broadcast_to(expected.bound, (n,))]}
    if s.options.speculation is not None and phase == "decode":  # as analyze's totals: tokens per verify step
        per_step = engine.tokens_per_step(s)
        cols |= {"tokens_per_step": full(per_step), "effective_tpot_s": cols["time_s"] / per_step}
    if s.model.is_moe and phase != "e2e":
        cols |= _expert_columns(s, r.ops, b, pl if phase == "prefill" else np.float64(1.0), full)
    axes = {name: v.astype(np.int64) for name, v in flat.items()}
    if phase == "e2e":
        axes["gen_len"] = np.full(n, gen_len, dtype=np.int64)
    return SweepResult(s.model.name, s.hardware.name, phase, s.quant.label, s.eff.mode, s.parallel.label, axes, cols,
                       s.profile, s.engine_kernels)


def _expert_columns(s: Setup, ops: list[OpTotals], batch: np.ndarray, q_len: float | np.ndarray,
                    full: Callable[[object], np.ndarray]) -> dict[str, np.ndarray]:
    """Per point: tokens each routed expert sees, experts hit per layer, and what bounds the experts."""
    load = graph.expert_load(s.model, batch / s.parallel.dp * q_len, s.options)
    gemms = [o for o in ops if graph.is_routed_expert_gemm(o.op)]
    compute_bound = sum(o.compute_s for o in gemms) >= sum(o.memory_s for o in gemms)
    return {"experts_hit": full(load.experts_hit), "tokens_per_expert": full(load.tokens_per_expert),
            "expert_bound": np.where(np.broadcast_to(compute_bound, (len(batch),)), "compute", "memory")}
