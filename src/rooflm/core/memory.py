"""Device memory: weights, KV cache and activation workspace per device; fit; the largest batch.

Weight bytes come from the operators' own weight reads with every expert hit, so memory and time
can never disagree on the size of a weight. The capacity they must fit in is what the engine may fill, as vLLM
computes it: the device's bytes × ``gpu_memory_utilization`` − the runtime's reserve (inputs.Setup.memory_capacity);
the activation workspace is the largest operator of one engine step (a prefill chunk, not the whole prompt batch).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from rooflm import units
from rooflm.core.graph import GraphBuilder
from rooflm.core.step import DEFAULT_OPTIONS, Options, Step
from rooflm.ops.cost import Num, Op
from rooflm.specs.dtypes import bytes_per_element
from rooflm.specs.hardware import HardwareSpec
from rooflm.specs.model import ModelSpec
from rooflm.specs.quant import IO_DTYPE, QuantScheme


def weight_bytes(model: ModelSpec, quant: QuantScheme, options: Options = DEFAULT_OPTIONS) -> float:
    """Stored weights on the busiest device: its stage's layers (every expert it owns), plus the
    embedding table and the head (first and last stage; the larger of the two under PP)."""
    p = options.parallel
    all_experts = replace(options, all_experts=True)
    ops = GraphBuilder(model, quant, all_experts).build(Step(1.0, 1.0, 1.0, False, 1.0))
    reads = {op.name: op.count * float(np.asarray(op.cost.weight_bytes)) for op in ops if op.kind != "embedding"}
    head = reads.pop("lm_head")
    layers = sum(reads.values())
    table = 0.0 if model.tie_word_embeddings else \
        model.vocab_size // p.tp * model.hidden_size * bytes_per_element(IO_DTYPE)
    ends = head + table if p.pp == 1 else max(head, table)
    return layers / p.pp + ends


def kv_bytes_per_sequence(model: ModelSpec, quant: QuantScheme, context: Num, options: Options = DEFAULT_OPTIONS) -> Num:
    """One sequence's cache on one device: its stage's layers, sliding-window layers capped at W,
    KV heads split over TP (replicated past the KV head count; MLA's latent and DSA's indexer keys are replicated)."""
    p, a = options.parallel, model.attention
    width = a.cache_width if a.kind == "mla" else p.kv_heads_per_device(model) * (a.head_dim + a.v_head_dim)
    kept = sum(g.count * (context if g.sliding_window is None else np.minimum(context, g.sliding_window))
               for g in model.layers if not g.linear)
    index = model.indexer_layers * context * a.index_cache_bytes  # DSA's indexer keys, replicated
    return (kept * width * quant.kv_bytes + index) / p.pp


def state_bytes_per_sequence(model: ModelSpec, options: Options = DEFAULT_OPTIONS) -> float:
    """One sequence's recurrent state on one device (linear-attention layers): every value head's d_k × d_v matrix
    and the short convolution's last inputs, heads split over TP, in the model's dtype — the same at any context."""
    spec, p = model.linear_attention, options.parallel
    if spec is None or not model.linear_layers:
        return 0.0
    hk, hv = -(-spec.num_k_heads // p.tp), -(-spec.num_v_heads // p.tp)
    conv = 2 * hk * spec.head_k_dim + hv * spec.head_v_dim
    elements = hv * spec.head_k_dim * spec.head_v_dim + conv * (spec.conv_kernel - 1)
    return model.linear_layers * elements * bytes_per_element(IO_DTYPE) / p.pp


def activation_workspace(ops: list[Op]) -> np.ndarray:
    """Peak live activations: the largest operator's inputs and outputs at once.

    A lower estimate of what an engine reserves (it also keeps buffers for CUDA graphs and sampling)."""
    per_op = [np.asarray(op.cost.activation_bytes, dtype=np.float64) for op in ops if op.kind != "communication"]
    return np.maximum.reduce(np.broadcast_arrays(*per_op))


@dataclass(frozen=True)
class MemoryUse:
    """Per device. ``max_batch`` is global (all data-parallel replicas together)."""

    weights_bytes: float
    kv_cache_bytes: np.ndarray
    activation_bytes: np.ndarray
    capacity_bytes: float
    max_batch: np.ndarray
    state_bytes: np.ndarray | float = 0.0  # recurrent state of the linear-attention layers (beside the KV cache)

    @property
    def total_bytes(self) -> np.ndarray:
        return self.weights_bytes + self.kv_cache_bytes + self.state_bytes + self.activation_bytes

    @property
    def fits(self) -> np.ndarray:
        return self.total_bytes <= self.capacity_bytes


def memory_use(model: ModelSpec, quant: QuantScheme, hw: HardwareSpec, batch: Num, max_context: Num,
               step_ops: list[Op], step_ops_one_seq: list[Op], options: Options = DEFAULT_OPTIONS, *,
               capacity: float | None = None) -> MemoryUse:
    """``batch`` is global, in whole sequences per replica (the busiest holds ⌈batch / dp⌉); ``step_ops`` are one
    device's ops of the workload's largest step, and ``step_ops_one_seq`` the same for a single sequence, from which
    the cost of one more is taken. ``capacity``: the bytes the engine may fill (default: the device's)."""
    dp = options.parallel.dp
    cap = hw.memory_capacity.value if capacity is None else capacity
    weights = weight_bytes(model, quant, options)
    kv_per_seq = kv_bytes_per_sequence(model, quant, max_context, options)
    state_per_seq = state_bytes_per_sequence(model, options)
    draft = options.speculation.draft if options.speculation else None
    if draft is not None and not draft.mtp:  # a separate draft model is resident beside the target, with its own cache
        weights += weight_bytes(draft.model, draft.quant, draft.options)
        kv_per_seq = kv_per_seq + kv_bytes_per_sequence(draft.model, draft.quant, max_context, draft.options)
    act = activation_workspace(step_ops)
    act_per_seq = activation_workspace(step_ops_one_seq)
    free = cap - weights
    max_batch = np.where(free > 0, np.floor(free / (kv_per_seq + state_per_seq + act_per_seq)) * dp, 0.0)
    seqs = options.parallel.replica_batch(batch)
    state = np.asarray(seqs * state_per_seq, dtype=np.float64)
    return MemoryUse(weights, seqs * kv_per_seq, act, cap, max_batch, state)


def parts_text(weights: float, kv_cache: float, activations: float, capacity: float, state: float = 0.0) -> str:
    """Every part of the total, so the sum can be checked: 'weights … + KV cache … [+ recurrent state …] +
    activations … = … of …' (the state only for models with linear-attention layers)."""
    total = weights + kv_cache + state + activations
    recurrent = f" + recurrent state {units.nbytes(state)}" if state else ""
    return (f"weights {units.nbytes(weights)} + KV cache {units.nbytes(kv_cache)}{recurrent} + activations "
            f"{units.nbytes(activations)} = {units.nbytes(total)} of {units.nbytes(capacity)}")


def overflow_text(weights: float, kv_cache: float, activations: float, capacity: float, state: float = 0.0) -> str:
    """The part that does not fit, in the order an engine allocates them (weights, then the KV cache with the
    recurrent state beside it, then the activation workspace); empty when all fit."""
    kv_cache += state
    if weights > capacity:
        return f"the weights alone exceed the {units.nbytes(capacity)}"
    if weights + kv_cache > capacity:
        return (f"the KV cache ({units.nbytes(kv_cache)}) does not fit in the {units.nbytes(capacity - weights)} "
                "left after the weights")
    if weights + kv_cache + activations > capacity:
        return (f"the activations ({units.nbytes(activations)}) do not fit in the "
                f"{units.nbytes(capacity - weights - kv_cache)} left after the weights and KV cache")
    return ""
