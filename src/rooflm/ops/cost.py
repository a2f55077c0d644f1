"""The cost of one operator instance, and an operator as the graph lists it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

Num = float | np.ndarray

OpKind = Literal["gemm", "attention", "norm", "elementwise", "embedding", "memory", "communication"]
# The classes a report groups time by; quantization and plotting reason per class.
OpClass = Literal["weight_gemm", "attention", "expert", "communication", "other"]


@dataclass(frozen=True)
class Cost:
    """FLOPs and bytes moved to/from main memory for one instance of an operator."""

    flops: Num = 0.0
    weight_bytes: Num = 0.0
    activation_bytes: Num = 0.0
    kv_bytes: Num = 0.0

    @property
    def bytes(self) -> Num:
        return self.weight_bytes + self.activation_bytes + self.kv_bytes


@dataclass(frozen=True)
class Op:
    """One operator of a step: ``count`` identical instances (one per layer), each one kernel.

    ``compute_dtype`` picks the compute roof; ``weight_shape`` (K, N) is kept for GEMMs so that
    reports can name the shape and the critical-batch search can reason per GEMM.
    """

    name: str
    kind: OpKind
    op_class: OpClass
    count: int
    cost: Cost
    compute_dtype: str
    weight_shape: tuple[int, int] | None = None
    kernels: int = 1


def as_array(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)
