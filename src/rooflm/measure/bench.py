"""Microbenchmarks of the local device: streaming bandwidth, matmul peaks, the GEMM curve over M, overheads.

Each benchmark returns raw timings (median, fastest, slowest of several runs after warm-up); fitting the
roofline and the efficiency factors from them is calibrate.py's job.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rooflm.measure.configs import tiny_config
from rooflm.measure.decoder import eager_decode
from rooflm.measure.kernels import measure_kernels
from rooflm.measure.machine import Machine
from rooflm.measure.quant import KERNELS, QuantWeights, available, clone, matmul, quantize
from rooflm.measure.results import (
    BandwidthSample,
    CurvePoint,
    EagerStep,
    MatmulSample,
    Measurements,
    Run,
)
from rooflm.measure.timing import require_torch, time_fn
from rooflm.measure.working_set import measure_working_set, working_sets

Progress = Callable[[str], None]
MiB = 1024**2
GiB = 1024**3


@dataclass(frozen=True)
class Plan:
    """What to measure and how hard. ``layer`` is (hidden, intermediate) of the decoder layer whose GEMMs
    make the curve; its K/V projections are a quarter of the hidden width (grouped-query attention)."""

    device: str
    bandwidth_bytes: tuple[float, ...]
    matmul_size: int
    matmul_dtypes: tuple[str, ...]
    curve_dtypes: tuple[str, ...]
    curve_m: tuple[int, ...]
    layer: tuple[int, int]
    pool_bytes: float
    repeats: int
    quick: bool = False
    eager_layers: tuple[int, ...] = (1, 2, 4)
    dispatch_inner: int = 200
    kernel_rows: int = 512  # tokens of the prefill-sized norm / element-wise benchmarks; 0 skips them
    working_sets: tuple[float, ...] = ()  # CPU: buffer sizes of the cache-level sweep (measure/working_set.py)
    # CPU: the weight-only quantized kernels timed over M on the same layer (their kernel families), bf16 first as
    # their reference, and the Ms.
    quant_schemes: tuple[str, ...] = ()
    quant_m: tuple[int, ...] = ()

    @property
    def layer_shapes(self) -> list[tuple[int, int]]:
        """(K, N) of the q, k, v, o, gate, up and down projections, unfused as eager frameworks run them."""
        h, i = self.layer
        return [(h, h), (h, h // 4), (h, h // 4), (h, h), (h, i), (h, i), (i, h)]

    @property
    def steps(self) -> int:
        return (3 * len(self.bandwidth_bytes) + len(self.matmul_dtypes) + len(self.curve_dtypes) * len(self.curve_m)
                + 1 + len(self.eager_layers) + (5 if self.kernel_rows else 0) + len(self.working_sets)
                + len(self.quant_schemes) * len(self.quant_m))


def default_dtypes(machine: Machine) -> tuple[str, ...]:
    """fp32, bf16, fp16 and int8 everywhere; tf32 and (from compute capability 8.9, Ada/Hopper) fp8 on CUDA.
    On a CPU PyTorch emulates fp8 matmuls, so they say nothing about the hardware and are left out."""
    if machine.device == "cpu":
        return ("fp32", "bf16", "fp16", "int8")
    dtypes: tuple[str, ...] = ("fp32", "tf32", "bf16", "fp16", "int8")
    cc = machine.driver.rpartition("compute capability ")[2]
    major, _, minor = cc.partition(".")
    if major.isdigit() and minor.isdigit() and (int(major), int(minor)) >= (8, 9):
        dtypes += ("fp8",)
    return dtypes


def past_cache_bytes(last_level_cache: float, memory: float) -> float:
    """An array size well past the last-level cache — 4× it, between 256 MiB and 1 GiB, and at most a sixteenth
    of memory — so that streams and cold GEMM weights come from main memory."""
    return min(max(4 * last_level_cache, 256 * MiB), 1 * GiB, memory / 16)


def make_plan(machine: Machine, quick: bool) -> Plan:
    big = past_cache_bytes(max(machine.caches_bytes.values(), default=32 * MiB), machine.memory_capacity_bytes)
    gpu = machine.device != "cpu"
    sizes = (big,) if quick else (big / 4, big / 2, big)
    m_quick = (1, 4, 16, 32, 64, 128, 256, 512, 1024)
    m_full = (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 2048)
    return Plan(
        device=machine.device, bandwidth_bytes=sizes, matmul_size=(8192 if gpu else 2048 if quick else 4096),
        matmul_dtypes=default_dtypes(machine), curve_dtypes=("bf16", "fp32"), curve_m=m_quick if quick else m_full,
        layer=(4096, 14336) if gpu else (2048, 5632), pool_bytes=big, repeats=5 if quick else 11, quick=quick,
        kernel_rows=512 if quick else 1024, working_sets=() if gpu else working_sets(big, 1 if quick else 2),
        quant_schemes=() if gpu else ("bf16", "w8a16", "w4a16"), quant_m=(1, 16, 64, 256) if quick else
        (1, 4, 16, 64, 128, 256, 512, 1024),
    )


def _torch_dtype(torch: Any, dtype: str) -> Any:
    return {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16,
            "int8": torch.int8, "fp8": torch.float8_e4m3fn}[dtype]


def _stream_kernels(torch: Any, n: int, device: str) -> dict[str, tuple[Callable[[], Any], int]]:
    """pattern → (kernel, arrays it moves) over three fp32 arrays of n elements."""
    a = torch.empty(n, device=device).uniform_()
    b = torch.empty_like(a).uniform_()
    c = torch.empty_like(a).uniform_()
    return {
        "read": (lambda: torch.sum(a), 1),
        "copy": (lambda: b.copy_(a), 2),
        "triad": (lambda: torch.add(b, c, alpha=3.0, out=a), 3),
    }


def measure_bandwidth(plan: Plan, progress: Progress) -> list[BandwidthSample]:
    """read (a sum), copy and triad (a = b + s·c) over fp32 arrays of each size."""
    torch = require_torch()
    out: list[BandwidthSample] = []
    for size in plan.bandwidth_bytes:
        n = int(size // 4)
        for pattern, (fn, arrays) in _stream_kernels(torch, n, plan.device).items():
            progress(f"bandwidth {pattern} {size / MiB:.0f} MiB")
            t = time_fn(fn, device=plan.device, warmup=2, repeats=plan.repeats + 2)
            out.append(BandwidthSample(pattern=pattern, array_bytes=n * 4, bytes_moved=arrays * n * 4, run=Run.of(t)))
    return out


def _matmul_fn(torch: Any, dtype: str, m: int, k: int, n: int, device: str) -> Callable[[], Any]:
    if dtype == "int8":
        a = torch.randint(-64, 64, (m, k), dtype=torch.int8, device=device)
        b = torch.randint(-64, 64, (k, n), dtype=torch.int8, device=device)
        return lambda: torch._int_mm(a, b)
    if dtype == "fp8":
        a = torch.randn(m, k, device=device).to(torch.float8_e4m3fn)
        b = torch.randn(n, k, device=device).to(torch.float8_e4m3fn).t()  # _scaled_mm wants it column-major
        one = torch.tensor(1.0, device=device)
        return lambda: torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
    a = torch.randn(m, k, dtype=_torch_dtype(torch, dtype), device=device)
    b = torch.randn(k, n, dtype=_torch_dtype(torch, dtype), device=device)
    return lambda: torch.matmul(a, b)


def measure_matmul(plan: Plan, progress: Progress, skipped: dict[str, str]) -> list[MatmulSample]:
    """A square matmul per dtype with hot operands: the compute roof. tf32 is fp32 storage with the tensor
    cores' reduced-precision math, switched on only for its own run."""
    torch = require_torch()
    out: list[MatmulSample] = []
    s = plan.matmul_size
    for dtype in plan.matmul_dtypes:
        progress(f"matmul {dtype} {s}³")
        tf32 = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = dtype == "tf32"
        try:
            t = time_fn(_matmul_fn(torch, dtype, s, s, s, plan.device), device=plan.device, warmup=2,
                        repeats=plan.repeats)
        except (RuntimeError, NotImplementedError) as exc:  # e.g. a kernel this build or device lacks
            skipped[f"matmul.{dtype}"] = str(exc).splitlines()[0][:200]
            continue
        finally:
            torch.backends.cuda.matmul.allow_tf32 = tf32
        out.append(MatmulSample(dtype=dtype, m=s, k=s, n=s, run=Run.of(t)))
    return out


def _cold_layer(torch: Any, pool: list[list[Any]], shapes: list[tuple[int, int]], m: int, dtype: Any,
                device: str) -> Callable[[], None]:
    """One call = the layer's GEMMs at M = m on the next copy of the pool."""
    f = torch.nn.functional
    xs = {k: torch.randn(m, k, dtype=dtype, device=device) for k, _ in shapes}
    turn = [0]

    def layer() -> None:
        weights = pool[turn[0] % len(pool)]
        turn[0] += 1
        for (k, _), w in zip(shapes, weights, strict=True):
            f.linear(xs[k], w)

    return layer


def measure_curve(plan: Plan, progress: Progress) -> list[CurvePoint]:
    """The GEMMs of one decoder layer at each M, weights cold: a pool of layer copies larger than the last-level
    cache is cycled through, one copy per call, the way a deep model's layers follow each other."""
    torch = require_torch()
    shapes = plan.layer_shapes
    out: list[CurvePoint] = []
    for dtype in plan.curve_dtypes:
        tdt = _torch_dtype(torch, dtype)
        element = torch.empty((), dtype=tdt).element_size()
        layer_bytes = sum(k * n for k, n in shapes) * element
        first = [torch.randn(n, k, dtype=tdt, device=plan.device) * 0.02 for k, n in shapes]  # nn.Linear: [N, K]
        copies = max(2, math.ceil(plan.pool_bytes / layer_bytes))
        pool = [first] + [[w.clone() for w in first] for _ in range(copies - 1)]
        for m in plan.curve_m:
            progress(f"GEMM curve {dtype} M={m}")
            t = time_fn(_cold_layer(torch, pool, shapes, m, tdt, plan.device), device=plan.device, warmup=2,
                        repeats=max(plan.repeats, 5))
            out.append(CurvePoint(dtype=dtype, m=m, shapes=shapes, element_bytes=element, run=Run.of(t)))
    return out


def measure_quant_curve(plan: Plan, progress: Progress, skipped: dict[str, str]) -> list[CurvePoint]:
    """The same decoder layer's GEMMs with int8 and int4 weights and bf16 activations on PyTorch's CPU kernels
    (measure/quant.py), and in bf16 beside them, weights cold as in measure_curve: what the w8a16 and w4a16 kernel
    families reach over M, relative to bf16 measured the same way. One thread and the process's CPU time, as
    `rooflm validate --quant` times them: on a shared machine the wall clock counts other processes' turns."""
    torch = require_torch()
    have = available(torch)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return [p for scheme in plan.quant_schemes for p in _quant_layer_curve(torch, plan, scheme, have, progress,
                                                                               skipped)]
    finally:
        torch.set_num_threads(threads)


def _quant_layer_curve(torch: Any, plan: Plan, scheme: str, have: list[str], progress: Progress,
                       skipped: dict[str, str]) -> list[CurvePoint]:
    if scheme not in have:
        skipped[f"quant_curve.{scheme}"] = f"this PyTorch has no CPU kernel for {scheme} ({KERNELS[scheme]})"
        return []
    shapes = plan.layer_shapes
    first = [quantize(torch, torch.randn(n, k) * 0.02, scheme) for k, n in shapes]
    layer_bytes = sum(qw.nbytes for qw in first)
    copies = max(2, math.ceil(plan.pool_bytes / layer_bytes))
    pool = [first] + [[clone(qw) for qw in first] for _ in range(copies - 1)]
    per_weight = layer_bytes / sum(k * n for k, n in shapes)
    out: list[CurvePoint] = []
    for m in plan.quant_m:
        progress(f"GEMM curve {scheme} M={m} (one thread)")
        xs = {k: torch.randn(m, k, dtype=torch.bfloat16) for k, _ in shapes}
        turn = [0]

        def layer(xs: dict[int, Any] = xs, turn: list[int] = turn, pool: list[list[QuantWeights]] = pool) -> None:
            for qw in pool[turn[0] % len(pool)]:
                matmul(torch, xs[qw.k], qw)
            turn[0] += 1

        t = time_fn(layer, device="cpu", warmup=1, repeats=max(plan.repeats, 3), clock=time.process_time)
        out.append(CurvePoint(dtype="bf16", m=m, shapes=shapes, element_bytes=2, run=Run.of(t), scheme=scheme,
                              weight_element_bytes=per_weight))
    return out


def measure_dispatch(plan: Plan, progress: Progress) -> Run:
    """One-element adds back to back: the fixed cost of issuing one kernel (dispatch on a CPU, launch on a GPU)."""
    torch = require_torch()
    progress("per-kernel dispatch overhead")
    a = torch.ones(1, device=plan.device)
    b = torch.ones(1, device=plan.device)
    return Run.of(time_fn(lambda: torch.add(a, b), device=plan.device, warmup=20, repeats=max(plan.repeats, 15),
                          inner=plan.dispatch_inner))


def measure_eager_steps(plan: Plan, progress: Progress) -> list[EagerStep]:
    out: list[EagerStep] = []
    for layers in plan.eager_layers:
        progress(f"eager decode step overhead, {layers} layer(s)")
        backend, rewind, step = eager_decode(layers, plan.device)
        t = time_fn(step, device=plan.device, setup=rewind, warmup=5, repeats=max(3 * plan.repeats, 15))
        out.append(EagerStep(backend=backend, layers=layers, config=tiny_config(layers), run=Run.of(t)))
    return out


def measure_machine(machine: Machine, plan: Plan, progress: Progress | None = None) -> Measurements:
    """Run every benchmark of ``plan``; ``progress`` is called once before each step (``plan.steps`` in all)."""
    torch = require_torch()
    note = progress or (lambda _label: None)
    skipped: dict[str, str] = {}
    with torch.inference_mode():
        bandwidth = measure_bandwidth(plan, note)
        matmul = measure_matmul(plan, note, skipped)
        curve = measure_curve(plan, note)
        dispatch = measure_dispatch(plan, note)
        kernels = measure_kernels(plan.device, plan.kernel_rows, plan.layer, plan.pool_bytes, plan.repeats, note) \
            if plan.kernel_rows else []
        levels = measure_working_set(plan.working_sets, plan.repeats, note)
        quant_curve = measure_quant_curve(plan, note, skipped) if plan.quant_schemes else []
    eager = measure_eager_steps(plan, note)
    return Measurements(machine=machine, quick=plan.quick, bandwidth=bandwidth, matmul=matmul, curve=curve,
                        dispatch=dispatch, eager_steps=eager, kernels=kernels, working_set=levels, skipped=skipped,
                        quant_curve=quant_curve)
