"""The cost of one operator instance, and an operator as the graph lists it."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from rooflm.kinds import OpClass, OpKind

Num = float | np.ndarray


def any_nonzero(x: Num) -> bool:
    """np.any(x) for a number or an array of numbers (NaN counts, as there), ten times faster on the small arrays
    and scalars every operator's evaluation tests: a fit or a plan tests a few hundred thousand of them."""
    return bool(np.count_nonzero(x))


@dataclass(frozen=True)
class Cost:
    """FLOPs and bytes moved to/from main memory for one instance of an operator."""

    flops: Num = 0.0
    weight_bytes: Num = 0.0
    activation_bytes: Num = 0.0
    kv_bytes: Num = 0.0
    comm_bytes: Num = 0.0  # sent over a link by each device, not main-memory traffic
    comm_steps: int = 0  # latency-bound steps of a collective
    vector_ops: Num = 0.0  # instructions on the vector units (dequantization), not tensor-core FLOPs
    # A collective (ops.comm): which one, its message (S bytes) and the algorithm asked for (auto, ring, tree).
    collective: str = ""
    message_bytes: Num = 0.0
    algorithm: str = ""

    def scaled(self, factor: Num) -> Cost:
        """``factor`` instances of this cost (e.g. the experts hit, each with the same GEMM)."""
        # The constructor, not dataclasses.replace (whose field introspection doubled this): every GEMM the graph
        # builds is scaled once.
        return Cost(flops=self.flops * factor, weight_bytes=self.weight_bytes * factor,
                    activation_bytes=self.activation_bytes * factor, kv_bytes=self.kv_bytes * factor,
                    comm_bytes=self.comm_bytes * factor, comm_steps=self.comm_steps,
                    vector_ops=self.vector_ops * factor, collective=self.collective,
                    message_bytes=self.message_bytes * factor, algorithm=self.algorithm)

    def with_vector_ops(self, ops: Num) -> Cost:
        return replace(self, vector_ops=self.vector_ops + ops)

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
    comm_group: int = 1  # devices taking part in a collective (picks the link)
    gemm_m: Num = 0.0  # a GEMM's rows (M) per instance; a prefill attention's query rows per sequence
    instances: Num = 1.0  # identical GEMMs in one kernel: heads of a batched GEMM, or the experts hit
    family: str = ""  # the kernel family a GEMM or attention runs on (specs.kernels); "" for other operators
    # Weight GEMMs: the module class (specs.model.MODULES), the scheme it runs in and its weights' storage dtype.
    module: str = ""
    scheme: str = ""
    weight_dtype: str = ""
    # The routed experts of a MoE layer (their GEMMs, activation and its quantization): the layer's shape and layout
    # (hidden, expert intermediate size, top-k, experts, expert TP, EP), the tokens entering it on this device's
    # group and the experts' quantization scheme, so that a serving engine's measured MoE layer can price them
    # together (core.roofline).
    moe_shape: tuple[int, int, int, int, int, int] | None = None
    moe_tokens: Num = 0.0
    moe_scheme: str = ""
    # The quantization of a dense GEMM's input: that GEMM's kernel family (an engine whose measured GEMM includes the
    # quantization of its input leaves this pass no time of its own; core.roofline).
    quantizes: str = ""

    @property
    def gemm_rows(self) -> Num:
        """Input rows over all instances."""
        return self.gemm_m * self.instances
