"""How a serving engine runs a phase: chunked prefill, CUDA-graph decode, and a per-step CPU cost.

Chunked prefill: an engine processes at most ``max_num_batched_tokens`` tokens per step, so a prefill of B
prompts of L tokens (per replica) runs in chunks, in memory and in time.

- L ≤ C (chunk size): whole prompts share a chunk, ⌊C/L⌋ of them; k = ⌈B / ⌊C/L⌋⌉ chunks of B/k prompts each.
- L > C: each prompt is cut into m = ⌈L/C⌉ pieces of q = L/m tokens, one piece per chunk: k = B·m chunks. Piece j
  attends causally to itself and fully to the j·q tokens cached by the earlier pieces, so a chunk also reads that
  KV cache: over a prompt's pieces the past is q·m(m−1)/2 tokens, i.e. (m−1)/2 · q on average (attention cost is
  linear in the past, so the mean gives the sum exactly).
Every chunk re-reads the weights: k chunks cost k × one chunk. The chunks are averaged (B/k prompts each, a
fraction where k does not divide B), which keeps a sweep vectorised.

Decode runs on the setup's ``decode_efficiency`` (CUDA-graph launches in calibrated mode). Every engine step (a
decode step, a prefill chunk) adds the setup's per-step CPU/scheduler time as a ``step_overhead`` row.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from rooflm.core import evaluate, graph
from rooflm.core.evaluate import _FIELDS, OpTotals
from rooflm.core.graph import GraphBuilder
from rooflm.core.inputs import Setup
from rooflm.core.step import Options, Step
from rooflm.ops.cost import Cost, Num, Op, any_nonzero
from rooflm.specs.model import ModelSpec
from rooflm.specs.quant import IO_DTYPE, QuantScheme


@dataclass(frozen=True)
class Chunks:
    """``count`` chunks, each of ``batch`` prompt pieces of ``q_len`` tokens attending to ``past`` cached tokens
    (on average) beside their own."""

    count: np.ndarray
    batch: np.ndarray
    q_len: np.ndarray
    past: np.ndarray

    @property
    def tokens(self) -> np.ndarray:
        return self.batch * self.q_len


def prefill_chunks(batch: np.ndarray | float, prompt_len: np.ndarray | float, chunk: int) -> Chunks:
    """How a replica's prefill of ``batch`` prompts of ``prompt_len`` tokens splits into chunks of ``chunk`` tokens."""
    b = np.asarray(batch, dtype=np.float64)
    length = np.asarray(prompt_len, dtype=np.float64)
    whole = length <= chunk
    per_chunk = np.maximum(np.floor(chunk / length), 1.0)
    pieces = np.ceil(length / chunk)
    count = np.where(whole, np.ceil(b / per_chunk), b * pieces)
    return Chunks(count=count, batch=np.where(whole, b / count, 1.0), q_len=np.where(whole, length, length / pieces),
                  past=np.where(whole, 0.0, (pieces - 1.0) / 2.0 * length / pieces))


def past_attention_ops(model: ModelSpec, quant: QuantScheme, chunks: Chunks, options: Options) -> list[Op]:
    """The attention of a chunk's q_len new tokens over the ``past`` tokens earlier chunks cached: decode-style
    attention with q_len query rows per sequence, reading that KV once (all the chunk's queries share it)."""
    if not any_nonzero(chunks.past):
        return []
    q = chunks.q_len
    # In a sweep, points whose prompts fit one chunk have no past: their share of this operator is nothing (not a
    # decode attention over an empty cache), so that a sweep's point equals the single analysis of it.
    has_past = (np.asarray(chunks.past) > 0).astype(np.float64)
    step = Step(q, 1.0, chunks.past, False, q)  # q "sequences" of one query each...
    out = []
    builder = GraphBuilder(model, quant, options)
    for op in builder.attention(step):
        if op.kind != "attention":
            continue
        c = op.cost  # ...that share one sequence's cache: the KV is read once, not q times
        cost = replace(c, kv_bytes=c.kv_bytes / q, vector_ops=c.vector_ops / q).scaled(has_past)
        # Engines run a chunk's attention over its past in the prefill kernel (variable-length, paged KV): its
        # efficiency follows the chunk's query rows, not a decode kernel's.
        out.append(replace(op, name=f"{op.name}.past_chunks", cost=cost, family=builder.prefill_attention_family(),
                           gemm_m=q))
    return out


def scaled(totals: OpTotals, factor: Num) -> OpTotals:
    """The totals of ``factor`` identical chunks."""
    fields = {f: getattr(totals, f) * factor for f in _FIELDS}
    return replace(totals, **fields, time_by_bound=totals.time_by_bound * factor)


def step_overhead(s: Setup, steps: np.ndarray | float, shape: tuple[int, ...]) -> list[OpTotals]:
    """``steps`` engine steps of CPU/scheduler time (calibrated mode; none in ideal mode)."""
    if not s.step_overhead_s:
        return []
    op = Op("step_overhead", "host", "other", 1, Cost(), IO_DTYPE)
    return [scaled(t, np.asarray(steps, dtype=np.float64)) for t in evaluate.evaluate_ops([op], s.hardware, s.eff, shape)]


def prefill(s: Setup, batch: Num, prompt_len: Num, lm_head_all_tokens: bool = False) -> list[OpTotals]:
    """A replica's prefill of ``batch`` prompts, in chunks of the setup's ``max_num_batched_tokens``."""
    m, q, hw, eff, o = s.model, s.quant, s.hardware, s.eff, s.options
    shape = np.broadcast_shapes(np.shape(batch), np.shape(prompt_len))
    c = prefill_chunks(batch, prompt_len, s.max_num_batched_tokens)
    one = evaluate.prefill(m, q, hw, eff, c.batch, c.q_len, lm_head_all_tokens, o)
    past = evaluate.evaluate_ops(past_attention_ops(m, q, c, o), hw, eff, shape)
    return [scaled(t, c.count) for t in one + past] + step_overhead(s, c.count, shape)


def prefill_chunk_ops(s: Setup, batch: np.ndarray | float, prompt_len: np.ndarray | float,
                      lm_head_all_tokens: bool = False) -> list[Op]:
    """The operators of one prefill chunk (what the activation workspace is sized by)."""
    c = prefill_chunks(batch, prompt_len, s.max_num_batched_tokens)
    return graph.prefill_ops(s.model, s.quant, c.batch, c.q_len, lm_head_all_tokens, s.options) + \
        past_attention_ops(s.model, s.quant, c, s.options)


def tokens_per_step(s: Setup) -> float:
    """Expected tokens a decode step emits per sequence: 1, or with speculative decoding 1 + Σ_i Π_{j≤i} p_j."""
    spec = s.options.speculation
    return 1.0 if spec is None else spec.tokens_per_step


def decode(s: Setup, batch: Num, context: Num) -> list[OpTotals]:
    shape = np.broadcast_shapes(np.shape(batch), np.shape(context))
    ops = evaluate.decode(s.model, s.quant, s.hardware, s.decode_efficiency, batch, context, s.options)
    return ops + step_overhead(s, 1.0, shape)


def decode_steps(s: Setup, batch: Num, prompt_len: Num, gen_len: int) -> list[OpTotals]:
    """The gen_len − 1 tokens after the first. With speculative decoding a step emits E tokens on average, so
    (gen_len − 1) / E steps: every step at context L + i is priced and the sum divided by E (step time is linear in
    the context, so the mean over steps E tokens apart equals the mean over all of them)."""
    ops = evaluate.decode_steps(s.model, s.quant, s.hardware, s.decode_efficiency, batch, prompt_len, gen_len,
                                s.options)
    shape = np.broadcast_shapes(np.shape(batch), np.shape(prompt_len))
    ops = ops + step_overhead(s, float(max(gen_len - 1, 0)), shape)
    per_step = tokens_per_step(s)
    return ops if per_step == 1.0 else [scaled(o, np.float64(1.0 / per_step)) for o in ops]
