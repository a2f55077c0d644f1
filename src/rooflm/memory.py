"""Device memory: weights, KV cache and activation workspace; whether it fits; the largest batch.

Weight bytes come from the operators' own weight reads at batch 1 (each weight is read once per
step), so memory and time can never disagree on the size of a weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rooflm import graph
from rooflm.ops.cost import Op
from rooflm.specs.dtypes import bytes_per_element
from rooflm.specs.hardware import HardwareSpec
from rooflm.specs.model import ModelSpec
from rooflm.specs.quant import IO_DTYPE, QuantScheme


def weight_bytes(model: ModelSpec, quant: QuantScheme) -> float:
    """Stored weights: every weight the decode step reads, plus the whole embedding table."""
    ops = graph.decode_ops(model, quant, 1.0, 1.0)
    read = sum(op.count * float(np.asarray(op.cost.weight_bytes)) for op in ops if op.kind != "embedding")
    if model.tie_word_embeddings:
        return read  # the head already read the (shared) table
    return read + model.vocab_size * model.hidden_size * bytes_per_element(IO_DTYPE)


def activation_workspace(ops: list[Op]) -> np.ndarray:
    """Peak live activations: the residual stream plus the largest operator's inputs and outputs.

    A lower estimate of what an engine reserves (it also keeps buffers for CUDA graphs and sampling)."""
    per_op = [np.asarray(op.cost.activation_bytes, dtype=np.float64) for op in ops if op.kind != "communication"]
    return np.maximum.reduce(np.broadcast_arrays(*per_op))


@dataclass(frozen=True)
class MemoryUse:
    weights_bytes: float
    kv_cache_bytes: np.ndarray
    activation_bytes: np.ndarray
    capacity_bytes: float
    max_batch: np.ndarray

    @property
    def total_bytes(self) -> np.ndarray:
        return self.weights_bytes + self.kv_cache_bytes + self.activation_bytes

    @property
    def fits(self) -> np.ndarray:
        return self.total_bytes <= self.capacity_bytes


def memory_use(model: ModelSpec, quant: QuantScheme, hw: HardwareSpec, batch: np.ndarray, max_context: np.ndarray,
               step_ops: list[Op], step_ops_batch1: list[Op]) -> MemoryUse:
    """``step_ops`` are the ops of the workload's largest step; ``step_ops_batch1`` the same at batch 1,
    from which the per-sequence cost of growing the batch is taken."""
    weights = weight_bytes(model, quant)
    kv_per_seq = np.asarray(max_context, dtype=np.float64) * model.kv_bytes_per_token(quant.kv_bytes)
    act = activation_workspace(step_ops)
    act_per_seq = activation_workspace(step_ops_batch1)
    free = hw.memory_capacity.value - weights
    max_batch = np.where(free > 0, np.floor(free / (kv_per_seq + act_per_seq)), 0.0)
    return MemoryUse(weights, np.asarray(batch, dtype=np.float64) * kv_per_seq, act, hw.memory_capacity.value,
                     max_batch)
