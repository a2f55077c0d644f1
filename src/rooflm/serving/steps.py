"""The time of one engine step of continuous batching, read from a grid that rooflm.sweep prices once.

A step of a continuous-batching engine (vLLM, SGLang) holds ``b`` decode rows (one new token for each running
request past its prefill) and ``t`` prefill tokens (chunks of prompts, ≤ the token budget). Its linear layers
see ``b + t`` rows; its attention is per sequence, each at its own context. Nothing here re-derives the physics:
every term is a column of ``rooflm.sweep`` (or a field of ``rooflm.analyze``), so whatever the calibrated model
does to a GEMM, a kernel or a collective reaches the serving view unchanged.

    D(b, c)      decode step of b sequences at context c            (sweep, phase decode: time_s)
    Datt(b, c)   its attention                                      (… attention_time_s)
    Dlin(M)      a decode step's time outside attention at M rows   (time_s − attention_time_s at context 1)
    Plin(t)      a t-token prefill chunk outside attention          (sweep, phase prefill: time_s − attention_time_s)
    A(L)         the causal attention of a whole L-token prompt     (sweep, phase prefill: attention_time_s)

    step(b, 0, c)        = D(b, c)
    step(b, t, c, a)     = Plin(t) + [Dlin(b + t) − Dlin(t)] + Datt(b, c) + a,   t > 0

A mixed step is the prefill chunk (its weights, kernels and the engine's per-step cost, run eagerly as prefill
is) plus what its b decode rows add to the linear layers' M, plus their attention. ``a`` is the chunk's attention:
a piece of tokens p … p+q−1 of a prompt costs A(p + q) − A(p) (its causal block plus its attention to the p tokens
already cached: attention is quadratic in the prompt, so the difference counts both exactly in FLOPs; a
memory-bound piece is approximate). With b = 0 the step is exactly the prefill chunk analyze prices; with t = 0
exactly analyze's decode step.

Speculative decoding (the deployment's spec_tokens): D, Datt and Dlin are a verify step's (k + 1 rows per request,
plus the draft) divided by the tokens it emits on average, E = analyze's tokens_per_step, so that a request gains
one token per modelled step and TPOT is the effective one. In a mixed step the decode rows' share Dlin(b + t) −
Dlin(t) is then read on the speculative curve (every row there a request of k + 1 rows): an approximation.

Approximations, stated: the decode rows' attention is priced at their mean context c (exact where attention time
is linear in context, as its FLOPs and KV bytes are; a sliding window or a context-dependent kernel efficiency
bends it); a mixed step's linear rows follow Dlin (decode's CUDA-graph launch costs in calibrated mode) for the
added decode rows; values between grid points are linearly interpolated (the grids hold every integer batch up to
``DENSE_BATCH`` and every length the traffic fixes exactly, so fixed-length traffic at concurrency 1 reads grid
points).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from typing_extensions import Unpack

from rooflm.analyses.analyze import analyze
from rooflm.analyses.report import Report
from rooflm.analyses.sweep import sweep
from rooflm.core.inputs import Deployment, default_max_running, kv_free_share, memory_rule, setup
from rooflm.errors import DoesNotFitError, InvalidInputError, arg
from rooflm.specs.engine_policies import EnginePolicy
from rooflm.specs.hardware import HardwareSpec
from rooflm.specs.model import ModelSpec

# Every integer batch up to this is a grid point; past it, steps of GROWTH (decode time is piecewise linear in
# the batch, so linear interpolation between points 2% apart is within a fraction of a percent).
DENSE_BATCH = 256
DENSE_TOKENS = 128
GROWTH = 1.02
CONTEXT_POINTS = 97
# vLLM's default KV-cache block: 16 tokens (CacheConfig.block_size).
BLOCK_TOKENS = 16


def int_grid(top: int, dense: int, exact: tuple[int, ...] = ()) -> np.ndarray:
    """1 … ``dense`` every integer, then × GROWTH to ``top`` (always included), plus ``exact`` values."""
    values = set(range(1, min(top, dense) + 1)) | {top} | {v for v in exact if 1 <= v <= top}
    x = float(dense)
    while x < top:
        values.add(math.ceil(x))
        x *= GROWTH
    return np.asarray(sorted(values), dtype=np.float64)


def grid_cells(grid: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``grid_cell`` over an array: each x clamped to the grid, the ends of its cell and its weight toward the upper
    one (a one-point grid: the point, weight 0)."""
    x = np.minimum(np.maximum(np.asarray(x, dtype=np.float64), grid[0]), grid[-1])
    # np.minimum(np.maximum(…)) rather than np.clip: the same values, without np.clip's per-call cost (the steady
    # model calls this on small arrays thousands of times per evaluation).
    i = np.minimum(np.maximum(np.searchsorted(grid, x, side="right") - 1, 0), len(grid) - 2) if len(grid) > 1 \
        else np.zeros_like(x, int)
    i1 = np.minimum(i + 1, len(grid) - 1)
    w = np.where(grid[i1] > grid[i], (x - grid[i]) / np.where(grid[i1] > grid[i], grid[i1] - grid[i], 1.0), 0.0)
    return i, i1, w


def _interp2(bg: np.ndarray, cg: np.ndarray, table: np.ndarray, b: np.ndarray, c: np.ndarray) -> float | np.ndarray:
    """Bilinear interpolation of ``table[b, c]`` (clamped at the grid's ends)."""
    if np.ndim(b) == 0 and np.ndim(c) == 0:
        return np.float64(_interp2_point(bg, cg, table, float(b), float(c)))
    i, i1, wb = grid_cells(bg, b)
    j, j1, wc = grid_cells(cg, c)
    top = table[i, j] * (1 - wc) + table[i, j1] * wc
    bottom = table[i1, j] * (1 - wc) + table[i1, j1] * wc
    return top * (1 - wb) + bottom * wb


def grid_cell(grid: np.ndarray, x: float) -> tuple[int, int, float]:
    """The grid cell holding ``x`` (already clamped to the grid): its ends and x's weight toward the upper one."""
    n = len(grid)
    i = min(max(bisect.bisect_right(grid, x) - 1, 0), n - 2) if n > 1 else 0
    i1 = min(i + 1, n - 1)
    lo, hi = grid[i], grid[i1]
    return i, i1, (x - lo) / (hi - lo) if hi > lo else 0.0


def _interp2_point(bg: np.ndarray, cg: np.ndarray, table: np.ndarray, b: float, c: float) -> float:
    """_interp2 at one point, in scalar arithmetic: the simulation asks one step at a time, where numpy's per-call
    cost on 0-d arrays was most of a run (the same operations in the same order, so the same value)."""
    i, i1, wb = grid_cell(bg, min(max(b, bg[0]), bg[-1]))
    j, j1, wc = grid_cell(cg, min(max(c, cg[0]), cg[-1]))
    top = table[i, j] * (1 - wc) + table[i, j1] * wc
    bottom = table[i1, j] * (1 - wc) + table[i1, j1] * wc
    return float(top * (1 - wb) + bottom * wb)


@dataclass(frozen=True)
class Engine:
    """The engine's limits, per data-parallel replica."""

    max_running: int  # requests running at once (vLLM max_num_seqs)
    max_tokens_per_step: int  # rows per step: decode rows + prefill chunk (vLLM max_num_batched_tokens)
    kv_capacity_tokens: int  # tokens the KV cache holds


@dataclass(frozen=True)
class StepModel:
    """Step times of one replica on grids; see the module's doc for the formulas."""

    batch_grid: np.ndarray
    context_grid: np.ndarray
    decode: np.ndarray  # D(b, c), seconds
    decode_attention: np.ndarray  # Datt(b, c)
    decode_bound: np.ndarray  # the step's bound at (b, c)
    rows_grid: np.ndarray
    decode_linear: np.ndarray  # Dlin(M)
    chunk_grid: np.ndarray
    prefill_linear: np.ndarray  # Plin(t)
    prompt_grid: np.ndarray
    prompt_attention: np.ndarray  # A(L)
    engine: Engine
    devices: int
    dp: int
    kv_bytes_per_token: float
    labels: dict[str, str | None] = field(default_factory=dict)
    profile: dict[str, str | None] | None = None  # the profile predicted with (rooflm.core.inputs.Setup.profile)

    def decode_time(self, b: np.ndarray | float, c: np.ndarray | float) -> float | np.ndarray:
        return _interp2(self.batch_grid, self.context_grid, self.decode, np.asarray(b), np.asarray(c))

    def decode_attention_time(self, b: np.ndarray | float, c: np.ndarray | float) -> np.ndarray:
        """Datt(b, c); below one row, a fraction of one row's (0 rows: none)."""
        b = np.asarray(b, dtype=np.float64)
        one = _interp2(self.batch_grid, self.context_grid, self.decode_attention, np.maximum(b, 1.0), np.asarray(c))
        return np.where(b < 1.0, one * b, one)

    def linear_time(self, rows: np.ndarray | float) -> np.ndarray:
        return np.interp(rows, self.rows_grid, self.decode_linear)

    def chunk_linear_time(self, t: np.ndarray | float) -> np.ndarray:
        return np.interp(t, self.chunk_grid, self.prefill_linear)

    def prompt_attention_time(self, length: np.ndarray | float) -> np.ndarray:
        """A(L), with A(0) = 0."""
        length = np.asarray(length, dtype=np.float64)
        a = np.interp(length, self.prompt_grid, self.prompt_attention)
        return np.where(length <= 0, 0.0, np.where(length < 1, a * length, a))

    def step_time(self, b: np.ndarray | float, t: np.ndarray | float, c: np.ndarray | float,
                  chunk_attention: np.ndarray | float) -> np.ndarray:
        """One step of ``b`` decode rows at mean context ``c`` and a prefill chunk of ``t`` tokens whose attention
        costs ``chunk_attention`` seconds (a sum of A(p + q) − A(p) over its pieces)."""
        b, t = np.asarray(b, dtype=np.float64), np.asarray(t, dtype=np.float64)
        mixed = (self.chunk_linear_time(np.maximum(t, 1.0)) + self.linear_time(b + np.maximum(t, 1.0))
                 - self.linear_time(np.maximum(t, 1.0)) + self.decode_attention_time(b, c) + chunk_attention)
        pure = self.decode_time(np.maximum(b, 1.0), c)
        return np.where(t > 0, mixed, np.where(b > 0, pure, 0.0))

    def step_time_point(self, b: float, t: float, c: float, chunk_attention: float) -> float:
        """step_time at one point, in scalar arithmetic: the simulation asks one step at a time, where numpy's
        per-call cost on 0-d arrays was most of its step (the same operations in the same order: the same value)."""
        if t > 0:
            tt = max(t, 1.0)
            one = _interp2_point(self.batch_grid, self.context_grid, self.decode_attention, max(b, 1.0), c)
            return float(float(np.interp(tt, self.chunk_grid, self.prefill_linear))
                         + float(np.interp(b + tt, self.rows_grid, self.decode_linear))
                         - float(np.interp(tt, self.rows_grid, self.decode_linear))
                         + (one * b if b < 1.0 else one) + chunk_attention)
        if b > 0:
            return _interp2_point(self.batch_grid, self.context_grid, self.decode, max(b, 1.0), c)
        return 0.0

    def bound(self, b: float, c: float) -> str:
        i = int(np.abs(self.batch_grid - b).argmin())
        j = int(np.abs(self.context_grid - c).argmin())
        return str(self.decode_bound[i, j])


def _replica_sweep(model: ModelSpec, hardware: str | Path | HardwareSpec, dp: int, phase: str, batch: np.ndarray,
                   deployment: Deployment, **kw: object) -> dict[str, np.ndarray]:
    """A sweep whose batch axis is per replica (the API's batch is global: ⌈batch / dp⌉ on the busiest)."""
    r = sweep(model, hardware, phase=phase, batch=[int(b) * dp for b in batch], **kw, **deployment)  # type: ignore[arg-type]
    return {**r.axes, **r.columns}


@dataclass(frozen=True)
class KvRoom:
    """What one replica's engine may fill, less the weights and one step's activations, holds the KV cache."""

    decode: Report  # a decode step at the mean context: the memory figures, the layout and the labels
    activation_bytes: float  # one step's activations at the token budget
    kv_bytes_per_token: float
    free_share: float = 1.0  # the share of the free memory the engine gives its KV cache (TensorRT-LLM's 0.9)

    @property
    def tokens(self) -> int:
        free = self.decode.memory.capacity_bytes - self.decode.memory.weights_bytes - self.activation_bytes
        return int(free * self.free_share // self.kv_bytes_per_token) if free > 0 else 0


def kv_room(model: ModelSpec, hardware: str | Path | HardwareSpec, deployment: Deployment, dp: int,
            mean_context: float) -> KvRoom:
    """The KV room of one replica at ``deployment``'s max_num_batched_tokens (the step's token budget)."""
    budget = int(deployment["max_num_batched_tokens"])
    probe = max(1, min(round(mean_context), model.max_position_embeddings))
    dec = analyze(model, hardware, phase="decode", batch=dp, context=probe, **deployment)
    # A step of more tokens than the model has positions holds several prompts: price its activations as n prompts.
    n = math.ceil(budget / model.max_position_embeddings)
    pre = analyze(model, hardware, phase="prefill", batch=dp * n, prompt_len=math.ceil(budget / n), **deployment)
    # Under SGLang's rule weights + KV cache = mem_fraction_static × memory: activations live in the rest.
    activations = 0.0 if memory_rule(deployment) == "sglang" else pre.memory.activation_bytes
    return KvRoom(dec, activations, dec.memory.kv_cache_bytes / probe, kv_free_share(deployment))


def build(model: ModelSpec, hardware: str | Path | HardwareSpec, *, max_prompt: int, max_context: int,
          exact_prompts: tuple[int, ...], max_running: int | None, max_tokens_per_step: int | None, kv_blocks: int | None,
          mean_context: float, **deployment: Unpack[Deployment]) -> StepModel:
    """Price every grid point with rooflm.sweep and size the KV cache from rooflm.analyze's memory figures."""
    d: Deployment = dict(deployment)  # type: ignore[assignment]
    s = setup(model, hardware, **d)  # the engine's policy: its defaults for the budget, the memory and the limits
    budget = int(max_tokens_per_step or s.max_num_batched_tokens)
    d["max_num_batched_tokens"] = budget
    # The engine's default running limit; without one, 256 (vLLM's max_num_seqs on devices under 70 GiB).
    running = max_running if max_running is not None else (default_max_running(d, s.hardware) or 256)
    for name, v in {"max_running": running, "max_num_batched_tokens": budget}.items():
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 10**6:
            raise InvalidInputError(f"{arg(name)} must be an integer between 1 and 1,000,000, got {v}",
                                    field=name)
    dp = int(d.get("dp", 1) or 1)
    room = kv_room(model, hardware, d, dp, mean_context)
    dec, kv_per_token = room.decode, room.kv_bytes_per_token
    positions = model.max_position_embeddings
    if kv_blocks is not None:
        if isinstance(kv_blocks, bool) or not isinstance(kv_blocks, int) or not 1 <= kv_blocks <= 10**9:
            raise InvalidInputError(f"{arg('kv_blocks')} must be an integer between 1 and 10^9, got {kv_blocks}",
                                    field="kv_blocks")
        kv_tokens = kv_blocks * BLOCK_TOKENS
    else:
        kv_tokens = room.tokens
        if kv_tokens < 1:
            raise DoesNotFitError(
                f"no room for a KV cache: weights {dec.memory.weights_bytes / 1e9:.1f} GB + one step's activations "
                f"{room.activation_bytes / 1e9:.1f} GB leave nothing of the {dec.memory.capacity_bytes / 1e9:.1f}"
                f" GB the engine may use; use more GPUs ({arg('tp')}), a smaller {arg('quant')} or a smaller "
                f"{arg('max_num_batched_tokens')}",
                field="tp")

    batch_grid = int_grid(running, DENSE_BATCH)
    context_grid = np.unique(np.rint(np.linspace(1, max(max_context, 2), CONTEXT_POINTS)))
    dgrid = _replica_sweep(model, hardware, dp, "decode", batch_grid, d, context=[int(c) for c in context_grid])
    dgrid = _eager_past_graphs(model, s.hardware, dp, batch_grid, d, [int(c) for c in context_grid], dgrid,
                               s.graph_max_batch)
    shape = (len(batch_grid), len(context_grid))
    rows_grid = int_grid(running + budget, DENSE_BATCH)
    lin = _replica_sweep(model, hardware, dp, "decode", rows_grid, d, context=[1])
    cap = min(budget, positions)
    chunk_grid = int_grid(budget, DENSE_TOKENS, (*exact_prompts, cap))
    priced = chunk_grid[chunk_grid <= cap]
    chunk = _replica_sweep(model, hardware, dp, "prefill", np.ones(1), d, prompt_len=[int(t) for t in priced])
    prompt_grid = int_grid(max(max_prompt, 1), DENSE_TOKENS, exact_prompts)
    whole: Deployment = {**d, "max_num_batched_tokens": int(prompt_grid[-1])}
    attn = _replica_sweep(model, hardware, dp, "prefill", np.ones(1), whole, prompt_len=[int(t) for t in prompt_grid])
    # Speculative decoding: a decode step emits E tokens per request on average (analyze's tokens_per_step, 1 without
    # it); the model advances a request by one token per step, so its decode terms are a step's time per token: TPOT
    # is the effective one, as analyze's e2e tpot_s.
    per_token = 1.0 / (dec.totals.tokens_per_step or 1.0)
    return StepModel(
        batch_grid=batch_grid, context_grid=context_grid, decode=dgrid["time_s"].reshape(shape) * per_token,
        decode_attention=dgrid["attention_time_s"].reshape(shape) * per_token,
        decode_bound=dgrid["bound"].reshape(shape),
        rows_grid=rows_grid, decode_linear=(lin["time_s"] - lin["attention_time_s"]) * per_token, chunk_grid=chunk_grid,
        prefill_linear=extend_linearly(priced, chunk["time_s"] - chunk["attention_time_s"], chunk_grid),
        prompt_grid=prompt_grid,
        prompt_attention=attn["attention_time_s"],
        engine=Engine(running, budget, kv_tokens), devices=dec.layout.devices, dp=dp, kv_bytes_per_token=kv_per_token,
        labels={"model": dec.model, "hardware": dec.hardware, "quant": dec.quant, "kv_dtype": dec.kv_dtype,
                "efficiency": dec.efficiency, "layout": dec.layout.label, "engine_kernels": dec.engine_kernels,
                "engine_policy": policy_label(s.policy)},
        profile=None if dec.profile is None else dec.profile.model_dump(),
    )


# What the serving views name when no engine is asked: vLLM's memory rule with rooflm's fixed limits.
GENERIC_POLICY = "generic (vLLM's memory rule; 8192 tokens per step, 256 running)"


def policy_label(policy: EnginePolicy | None) -> str:
    return GENERIC_POLICY if policy is None else policy.label


def _eager_past_graphs(model: ModelSpec, hardware: HardwareSpec, dp: int, batch_grid: np.ndarray, d: Deployment,
                       contexts: list[int], dgrid: dict[str, np.ndarray], graph_max: int | None) -> dict[str, np.ndarray]:
    """The decode grid with the batches past the engine's CUDA-graph capture range priced eagerly (each kernel
    launched from the CPU), as the engine runs them; unchanged without an engine or with graphs off."""
    if graph_max is None or d.get("cuda_graphs") is False or batch_grid[-1] <= graph_max:
        return dgrid
    past = batch_grid[batch_grid > graph_max]
    eager = _replica_sweep(model, hardware, dp, "decode", past, {**d, "cuda_graphs": False}, context=contexts)
    rows = len(past) * len(contexts)  # the sweep's rows run batch-major, so the eager rows are the last ones
    return {k: np.concatenate([v[:len(v) - rows], eager[k]]) if k in eager and len(v) == len(batch_grid) * len(
        contexts) else v for k, v in dgrid.items()}


def extend_linearly(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """``y`` (priced at ``x``, the start of ``grid``) over all of ``grid``: past ``x``'s end along the line through
    its last two points. A chunk longer than the model's positions cannot be priced as one prompt; it holds several,
    and its GEMMs (rows past a few thousand) are in their linear, compute-bound regime."""
    if len(x) == len(grid):
        return y
    slope = (y[-1] - y[-2]) / (x[-1] - x[-2]) if len(x) > 1 else y[-1] / x[-1]
    return np.concatenate([y, y[-1] + slope * (grid[len(x):] - x[-1])])


def resolve_model(model: str | Path | ModelSpec) -> ModelSpec:
    from rooflm.specs.hf_config import load_model

    return load_model(model)
