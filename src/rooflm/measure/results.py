"""The raw measurements of one `rooflm measure` run (typed, JSON-serialisable), before any fitting."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from rooflm.measure.machine import Machine
from rooflm.measure.timing import Timing


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Run(_Frozen):
    """Seconds per call: median, fastest and slowest of ``repeats`` timed runs."""

    median_s: float
    min_s: float
    max_s: float
    repeats: int

    @classmethod
    def of(cls, t: Timing) -> Run:
        return cls(median_s=t.median_s, min_s=t.min_s, max_s=t.max_s, repeats=t.repeats)

    @property
    def spread(self) -> float:
        return (self.max_s - self.min_s) / self.median_s if self.median_s > 0 else 0.0


class BandwidthSample(_Frozen):
    """A streaming kernel over arrays of ``array_bytes`` each; ``bytes_moved`` per call (STREAM convention:
    a copy counts one read and one write, a triad two reads and one write)."""

    pattern: str  # read | copy | triad
    array_bytes: float
    bytes_moved: float
    run: Run

    @property
    def median_bytes_per_s(self) -> float:
        return self.bytes_moved / self.run.median_s

    @property
    def best_bytes_per_s(self) -> float:
        return self.bytes_moved / self.run.min_s


class WorkingSetPoint(_Frozen):
    """A read over a buffer of ``working_set_bytes``, ``bytes_read`` in all per call (the buffer read many times):
    the bandwidth of the memory level the buffer fits in (rooflm.measure.working_set)."""

    working_set_bytes: float
    bytes_read: float
    run: Run

    @property
    def best_bytes_per_s(self) -> float:
        return self.bytes_read / self.run.min_s


class MatmulSample(_Frozen):
    """One [m, k] × [k, n] matmul in ``dtype`` with hot operands (the compute roof)."""

    dtype: str
    m: int
    k: int
    n: int
    run: Run

    @property
    def flops(self) -> float:
        return 2.0 * self.m * self.k * self.n

    @property
    def median_flops_per_s(self) -> float:
        return self.flops / self.run.median_s

    @property
    def best_flops_per_s(self) -> float:
        return self.flops / self.run.min_s


class CurvePoint(_Frozen):
    """The GEMMs of one decoder layer at ``m`` rows, weights cold (streamed from main memory as in a real
    model whose layers do not fit in the last-level cache). ``shapes`` are (K, N) pairs."""

    dtype: str
    m: int
    shapes: list[tuple[int, int]]
    element_bytes: float
    run: Run  # one whole layer: every shape once
    # Weight-only quantized kernels (quant_curve): the scheme, and the bytes its weights take per element, scales and
    # zero points included (the activations stay in ``dtype``). "" and 0: plain ``dtype`` weights.
    scheme: str = ""
    weight_element_bytes: float = 0.0

    @property
    def flops(self) -> float:
        return sum(2.0 * self.m * k * n for k, n in self.shapes)

    @property
    def weight_bytes(self) -> float:
        return sum(k * n * (self.weight_element_bytes or self.element_bytes) for k, n in self.shapes)

    @property
    def bytes(self) -> float:
        return self.weight_bytes + sum((self.m * k + self.m * n) * self.element_bytes for k, n in self.shapes)

    @property
    def family(self) -> str:
        """The kernel family the layer's GEMMs ran on (rooflm.specs.kernels): "dense" for bf16 weights."""
        return "dense" if (self.scheme or self.dtype) == "bf16" else self.scheme

    @property
    def arithmetic_intensity(self) -> float:
        return self.flops / self.bytes

    @property
    def median_flops_per_s(self) -> float:
        return self.flops / self.run.median_s

    @property
    def best_flops_per_s(self) -> float:
        return self.flops / self.run.min_s

    @property
    def median_bytes_per_s(self) -> float:
        return self.bytes / self.run.median_s


class KernelSample(_Frozen):
    """One non-GEMM operator as an eager framework runs it; ``bytes`` is what rooflm counts for it (the ideal)."""

    kind: str  # rooflm operator kind: norm | elementwise | attention
    name: str
    bytes: float
    run: Run

    @property
    def median_bytes_per_s(self) -> float:
        return self.bytes / self.run.median_s


class EagerStep(_Frozen):
    """One decode step of a tiny decoder of ``layers`` layers run eagerly: almost pure framework overhead."""

    backend: str  # "transformers <ver>" or "torch"
    layers: int
    config: dict[str, int | str]
    run: Run


class Measurements(_Frozen):
    machine: Machine
    quick: bool
    bandwidth: list[BandwidthSample]
    matmul: list[MatmulSample]
    curve: list[CurvePoint]
    dispatch: Run  # one tiny tensor op: the per-kernel dispatch (CPU) or launch (GPU) cost
    eager_steps: list[EagerStep]
    kernels: list[KernelSample] = []
    working_set: list[WorkingSetPoint] = []  # CPU: read bandwidth over working-set sizes (the cache levels)
    # CPU: the decoder layer's GEMMs with bf16, int8 and int4 weights (scheme bf16, w8a16, w4a16), one thread.
    quant_curve: list[CurvePoint] = []
    skipped: dict[str, str] = {}  # what was not measured, and why
