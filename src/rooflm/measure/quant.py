"""`rooflm validate --quant`: what int8 and int4 weights buy on this CPU, timed, against rooflm's predicted speed-ups.

PyTorch has CPU kernels for weight-only quantized GEMMs with bf16 activations: ``torch._weight_int8pack_mm`` (int8
weights, one scale per output channel: rooflm's ``w8a16``) and ``torch._weight_int4pack_mm_for_cpu`` (int4 weights
packed two per byte, a bf16 scale and zero point per group of 128 along K: rooflm's ``w4a16``). Each is timed against
``F.linear`` in bf16 on the same shapes with cold weights (copies cycled past the last-level cache), for one GEMM
and for the weight GEMMs of a whole decode step, over the batch (the GEMMs' M), on one thread and the process's CPU
time (the machine may be shared: other processes' time on the core is left out). The prediction for each is rooflm's
own ``analyze`` of the same model on the measured hardware file: the operators' times, so the comparison is of
speed-ups (bf16 time / scheme time), measured and predicted, at each batch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rooflm.analyses.analyze import analyze
from rooflm.measure.timing import require_torch, time_fn
from rooflm.specs.hardware import HardwareSpec
from rooflm.specs.model import ModelSpec

Progress = Callable[[str], None]
SCHEMES = ("bf16", "w8a16", "w4a16")
KERNELS = {"bf16": "F.linear", "w8a16": "torch._weight_int8pack_mm", "w4a16": "torch._weight_int4pack_mm_for_cpu"}
INT4_GROUP = 128  # rooflm's w4a16 groups (GPTQ/AWQ); torch's CPU int4 kernel takes 32, 64, 128 or 256
SINGLE_GEMM = "gate_up_proj"  # the step's largest per-layer GEMM: the single-GEMM rows time one of it


@dataclass(frozen=True)
class QuantWeights:
    """One weight matrix [N, K] in a scheme's storage, as its kernel takes it."""

    scheme: str
    tensors: tuple[Any, ...]  # what the kernel takes, and reads
    k: int
    n: int
    codes: Any = None  # int4: the unpacked codes, kept only for a reference product (tests)

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors)


def weight_bytes(k: int, n: int, scheme: str) -> float:
    """Bytes the kernels read for a [K, N] weight, by hand: bf16 2 per weight; int8 1 per weight plus a bf16 scale
    per output channel; int4 half a byte per weight plus a bf16 scale and a bf16 zero point per group of 128."""
    if scheme == "bf16":
        return 2.0 * k * n
    if scheme == "w8a16":
        return k * n + 2.0 * n
    return k * n / 2 + (k / INT4_GROUP) * n * 4.0


def available(torch: Any) -> list[str]:
    """The schemes this PyTorch has CPU kernels for."""
    have = {"bf16": True, "w8a16": hasattr(torch, "_weight_int8pack_mm"),
            "w4a16": hasattr(torch, "_weight_int4pack_mm_for_cpu") and hasattr(torch, "_convert_weight_to_int4pack_for_cpu")}
    return [s for s in SCHEMES if have[s]]


def quantize(torch: Any, w: Any, scheme: str, keep_codes: bool = False) -> QuantWeights:
    """``w`` [N, K] (float) in ``scheme``: symmetric per-channel int8, or asymmetric int4 per group of 128 (the
    kernel's convention: w = (q − 8) · scale + zero, q in 0..15)."""
    n, k = w.shape
    if scheme == "bf16":
        return QuantWeights(scheme, (w.to(torch.bfloat16).contiguous(),), k, n)
    if scheme == "w8a16":
        scale = w.abs().amax(dim=1).clamp(min=1e-8) / 127
        q = torch.round(w / scale[:, None]).clamp(-128, 127).to(torch.int8)
        return QuantWeights(scheme, (q.contiguous(), scale.to(torch.bfloat16)), k, n)
    groups = w.float().reshape(n, k // INT4_GROUP, INT4_GROUP)
    low, high = groups.amin(-1, keepdim=True), groups.amax(-1, keepdim=True)
    scale = (high - low).clamp(min=1e-8) / 15
    q = torch.round((groups - low) / scale).clamp(0, 15).to(torch.int32).reshape(n, k)
    zero = low + 8 * scale
    scales_zeros = torch.stack([scale.squeeze(-1).t(), zero.squeeze(-1).t()], dim=-1).to(torch.bfloat16).contiguous()
    return QuantWeights(scheme, (torch._convert_weight_to_int4pack_for_cpu(q, 1), scales_zeros), k, n,
                        q if keep_codes else None)


def dequantized(torch: Any, qw: QuantWeights) -> Any:
    """The [N, K] float weights the kernel multiplies by (the reference for its output)."""
    if qw.scheme == "bf16":
        return qw.tensors[0].float()
    if qw.scheme == "w8a16":
        q, scale = qw.tensors
        return q.float() * scale.float()[:, None]
    if qw.codes is None:
        raise ValueError("int4 weights quantized without keep_codes have no reference")
    q, sz = qw.codes, qw.tensors[1].float()  # [K/g, N, 2]
    scale, zero = sz[..., 0].t().repeat_interleave(INT4_GROUP, 1), sz[..., 1].t().repeat_interleave(INT4_GROUP, 1)
    return (q.float() - 8) * scale + zero


def matmul(torch: Any, x: Any, qw: QuantWeights) -> Any:
    """x [M, K] (bf16) × the weights → [M, N] (bf16), with the scheme's kernel."""
    if qw.scheme == "bf16":
        return torch.nn.functional.linear(x, qw.tensors[0])
    if qw.scheme == "w8a16":
        return torch._weight_int8pack_mm(x, qw.tensors[0], qw.tensors[1])
    return torch._weight_int4pack_mm_for_cpu(x, qw.tensors[0], INT4_GROUP, qw.tensors[1])


@dataclass(frozen=True)
class QuantSample:
    """One timed point: a single GEMM or a decode step's weight GEMMs, in one scheme at one batch."""

    case: str  # "gemm" | "decode"
    scheme: str
    batch: int
    weight_bytes: float  # read per call, measured from the tensors
    measured_s: float
    spread: float
    predicted_s: float  # calibrated mode, on the measured hardware file
    ideal_s: float


def step_gemms(spec: ModelSpec, hw: HardwareSpec, batch: int, scheme: str, mode: str) -> dict[str, tuple[Any, float]]:
    """rooflm's layer GEMMs of one decode step: name → ((K, N), count) and their time (lm_head aside: weight-only
    schemes keep it in bf16, so it would dilute every speed-up the same way)."""
    r = analyze(spec, hw, phase="decode", batch=batch, context=128, quant=scheme, efficiency=mode)
    return {o.name: ((o.weight_shape, o.count), o.time_s) for o in r.operators
            if o.op_class == "weight_gemm" and o.name != "lm_head"}


def _layer(torch: Any, shapes: list[tuple[int, int]], scheme: str) -> list[QuantWeights]:
    return [quantize(torch, torch.randn(n, k) * 0.02, scheme) for k, n in shapes]


def _timed(torch: Any, stacks: list[list[QuantWeights]], batch: int, k_of: list[int], repeats: int) -> Any:
    """Median CPU time of one pass over a stack's GEMMs, a different (cold) copy of the stack each call."""
    xs = {k: torch.randn(batch, k, dtype=torch.bfloat16) for k in set(k_of)}
    turn = [0]

    def call() -> None:
        for qw in stacks[turn[0] % len(stacks)]:
            matmul(torch, xs[qw.k], qw)
        turn[0] += 1

    with torch.inference_mode():
        return time_fn(call, warmup=2, repeats=repeats, clock=time.process_time)


def run_quant(spec: ModelSpec, hw: HardwareSpec, batches: list[int], schemes: list[str], pool_bytes: float,
              repeats: int, progress: Progress) -> list[QuantSample]:
    """Time one SINGLE_GEMM and one decode step's layer GEMMs per scheme and batch; predict both with analyze."""
    torch = require_torch()
    layout = step_gemms(spec, hw, 1, "bf16", "ideal")
    shapes = [shape for (shape, _), _ in layout.values()]
    layers = max(count for (_, count), _ in layout.values())
    single = list(layout).index(SINGLE_GEMM)
    # torch's int4 kernel takes whole groups along K.
    schemes = [s for s in schemes if s != "w4a16" or all(k % INT4_GROUP == 0 for k, _ in shapes)]
    out: list[QuantSample] = []
    for scheme in schemes:
        step = [qw for _ in range(layers) for qw in _layer(torch, shapes, scheme)]
        step_bytes = float(sum(qw.nbytes for qw in step))
        copies = max(2, math.ceil(pool_bytes / step_bytes))
        stacks = [step] + [[clone(qw) for qw in step] for _ in range(copies - 1)]
        per_layer = len(shapes)
        # Every layer's instance of the GEMM in every copy, one per call: its weights are cold each time.
        gemms = [[stack[single + j * per_layer]] for stack in stacks for j in range(layers)]
        for batch in batches:
            predicted = step_gemms(spec, hw, batch, scheme, "calibrated")
            ideal = step_gemms(spec, hw, batch, scheme, "ideal")
            progress(f"{scheme} GEMM {SINGLE_GEMM}, batch {batch}")
            t = _timed(torch, gemms, batch, [step[single].k], repeats)
            count = predicted[SINGLE_GEMM][0][1]
            out.append(QuantSample("gemm", scheme, batch, float(step[single].nbytes), t.median_s, t.spread,
                                   predicted[SINGLE_GEMM][1] / count, ideal[SINGLE_GEMM][1] / count))
            progress(f"{scheme} decode step ({layers} layers' GEMMs), batch {batch}")
            t = _timed(torch, stacks, batch, [qw.k for qw in step], repeats)
            out.append(QuantSample("decode", scheme, batch, step_bytes, t.median_s, t.spread,
                                   sum(v for _, v in predicted.values()), sum(v for _, v in ideal.values())))
        del stacks, gemms, step
    return out


def clone(qw: QuantWeights) -> QuantWeights:
    """A copy in fresh memory (a cold weight when the copies outgrow the caches)."""
    return QuantWeights(qw.scheme, tuple(t.clone() for t in qw.tensors), qw.k, qw.n)


@dataclass(frozen=True)
class Speedup:
    """A scheme against bf16 at one point: measured and predicted speed-ups (bf16 time / scheme time)."""

    case: str
    scheme: str
    batch: int
    bf16_s: float
    scheme_s: float
    measured: float
    predicted: float  # calibrated mode
    ideal: float

    @property
    def error(self) -> float:
        """predicted / measured − 1: how far rooflm's calibrated speed-up is from the clock's."""
        return self.predicted / self.measured - 1


def speedups(samples: list[QuantSample]) -> list[Speedup]:
    """Every non-bf16 sample against the bf16 sample of the same case and batch."""
    base = {(s.case, s.batch): s for s in samples if s.scheme == "bf16"}
    out = []
    for s in samples:
        b = base.get((s.case, s.batch))
        if s.scheme == "bf16" or b is None:
            continue
        out.append(Speedup(s.case, s.scheme, s.batch, b.measured_s, s.measured_s, b.measured_s / s.measured_s,
                           b.predicted_s / s.predicted_s, b.ideal_s / s.ideal_s))
    return out
