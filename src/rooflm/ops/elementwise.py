"""Element-wise and row-wise operators: memory-bound at any size.

FLOPs per element are conventions (stated per function); they never bind on any real device.
"""

from __future__ import annotations

import numpy as np

from rooflm.ops.cost import Cost, Num

# RMSNorm: square, accumulate, scale by 1/rms, multiply by the weight.
RMSNORM_FLOPS_PER_ELEMENT = 4
# SiLU(g)·u: exp, add, divide for the sigmoid, multiply by g, multiply by u.
SWIGLU_FLOPS_PER_ELEMENT = 5
# Rotary embedding: x·cos + rotate(x)·sin.
ROPE_FLOPS_PER_ELEMENT = 3


def rmsnorm(rows: Num, width: int, *, io_bytes: float) -> Cost:
    """Normalise ``rows`` vectors of ``width``: read and write each once, read the weight vector."""
    elements = rows * width
    return Cost(
        flops=RMSNORM_FLOPS_PER_ELEMENT * elements,
        weight_bytes=width * io_bytes,
        activation_bytes=2.0 * elements * io_bytes,
    )


def residual_add(tokens: Num, hidden: int, *, io_bytes: float) -> Cost:
    """x + f(x): read two tensors, write one."""
    elements = tokens * hidden
    return Cost(flops=1.0 * elements, activation_bytes=3.0 * elements * io_bytes)


def swiglu(tokens: Num, intermediate: int, *, io_bytes: float) -> Cost:
    """SiLU(gate)·up: read the fused gate/up output (2·I wide), write I."""
    elements = tokens * intermediate
    return Cost(flops=SWIGLU_FLOPS_PER_ELEMENT * elements, activation_bytes=3.0 * elements * io_bytes)


def rope(tokens: Num, n_heads: int, head_dim: int, rotary_dim: int, *, io_bytes: float) -> Cost:
    """Rotate the first ``rotary_dim`` of each Q and K head in place; read cos/sin per token."""
    rotated = tokens * n_heads * rotary_dim
    return Cost(
        flops=ROPE_FLOPS_PER_ELEMENT * rotated,
        activation_bytes=2.0 * rotated * io_bytes + tokens * rotary_dim * io_bytes,
    )


def embedding_lookup(tokens: Num, hidden: int, vocab: int, *, table_bytes: float, io_bytes: float) -> Cost:
    """Gather one row of the table per token: only the rows used are read (at most the whole table)."""
    rows_read = np.minimum(tokens, vocab)
    return Cost(weight_bytes=rows_read * hidden * table_bytes, activation_bytes=tokens * hidden * io_bytes)
