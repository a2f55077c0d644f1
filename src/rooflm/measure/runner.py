"""Run the validation: real models and single GEMMs timed with PyTorch, next to rooflm's predictions for them.

Models are built with transformers from configs (random weights, bf16, SDPA attention) and run eagerly, one
prefill or one decode step at a time; rooflm predicts the same step for the same config.json on the measured
hardware file, in the ideal and the calibrated mode.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from rooflm.analyses.analyze import analyze
from rooflm.analyses.report import Report
from rooflm.core.evaluate import bound_names, evaluate_ops
from rooflm.core.roofline import efficiency_for
from rooflm.errors import UnsupportedModelError
from rooflm.measure.configs import Config, model_spec
from rooflm.measure.hf import build_model, decode_step, prefill_step
from rooflm.measure.timing import require_torch, time_fn
from rooflm.measure.validate import CaseResult, GemmResult
from rooflm.ops import gemm
from rooflm.ops.cost import Op
from rooflm.specs.hardware import HardwareSpec
from rooflm.specs.model import ModelSpec

Progress = Callable[[str], None]
# Profiler event names → the operator classes compared per case (top-level ops only, so nothing counts twice).
GEMM_EVENTS = ("aten::linear", "aten::_grouped_mm")
ATTENTION_EVENTS = ("aten::scaled_dot_product_attention", "aten::index_copy_")


@dataclass(frozen=True)
class ModelCase:
    """A model to validate and the grid to run it on: decode (batch, context) and prefill (batch, prompt_len)."""

    name: str
    config: Config
    decode: list[tuple[int, int]]
    prefill: list[tuple[int, int]]
    note: str = ""


@dataclass(frozen=True)
class GemmGrid:
    m: tuple[int, ...]
    kn: tuple[tuple[int, int], ...]
    dtype: str = "bf16"


def _llama(hidden: int, inter: int, layers: int, heads: int, kv: int, vocab: int) -> Config:
    return {"model_type": "llama", "hidden_size": hidden, "intermediate_size": inter, "num_hidden_layers": layers,
            "num_attention_heads": heads, "num_key_value_heads": kv, "vocab_size": vocab,
            "max_position_embeddings": 16384}


def validation_models(quick: bool) -> list[ModelCase]:
    """dense-tiny: so small that fixed overheads are the whole step. dense-small: ≈ 0.5 GB of bf16 weights (well
    past the caches), so decode reads them from DRAM and turns compute-bound at a batch of a few dozen on a CPU.
    moe-tiny: a small Mixtral (8 experts, top-2)."""
    small_batches = [1, 4, 16, 32, 64, 128] if quick else [1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256]
    small_decode = [(b, 256) for b in small_batches] + ([(4, 2048)] if quick else
                                                        [(b, 2048) for b in (1, 4, 16, 64)] + [(1, 8192)])
    small_prefill = [(1, 128), (1, 512), (4, 256)] if quick else [(1, 64), (1, 128), (1, 256), (1, 512), (1, 1024),
                                                                  (4, 256), (8, 512)]
    moe = {"model_type": "mixtral", "hidden_size": 512, "intermediate_size": 1024, "num_hidden_layers": 4,
           "num_attention_heads": 8, "num_key_value_heads": 2, "vocab_size": 4096, "num_local_experts": 8,
           "num_experts_per_tok": 2, "max_position_embeddings": 16384}
    return [
        ModelCase("dense-tiny", _llama(256, 704, 4, 4, 2, 4096), [(1, 128), (16, 128)], [(1, 64), (1, 256)]),
        ModelCase("dense-small", _llama(2048, 5632, 4, 16, 4, 16384), small_decode, small_prefill),
        ModelCase("moe-tiny", moe, [(1, 256), (16, 256), (64, 256)], [(1, 256)]),
    ]


def gemm_grid(quick: bool) -> GemmGrid:
    if quick:
        return GemmGrid(m=(1, 16, 128, 512), kn=((2048, 8192), (8192, 2048)))
    return GemmGrid(m=(1, 4, 16, 64, 128, 256, 512, 1024), kn=((2048, 2048), (2048, 8192), (8192, 2048), (4096, 4096)))


@dataclass
class Prediction:
    calibrated: Report
    ideal: Report

    def by_class(self) -> dict[str, float]:
        out = {"gemm": 0.0, "attention": 0.0, "other": 0.0}
        for op in self.calibrated.operators:
            key = "gemm" if op.kind == "gemm" else "attention" if op.op_class == "attention" else "other"
            out[key] += op.time_s
        return out


def predict(spec: ModelSpec, hw: HardwareSpec, phase: str, batch: int, size: int) -> Prediction:
    kw: dict[str, Any] = {"context": size} if phase == "decode" else {"prompt_len": size}
    return Prediction(*(analyze(spec, hw, phase=phase, batch=batch, efficiency=mode, **kw)
                        for mode in ("calibrated", "ideal")))


def profile_classes(step: Callable[[], None], setup: Callable[[], None], total_s: float) -> dict[str, float]:
    """Seconds per class in one profiled step: GEMMs and attention from the profiler's aten events, everything
    else (framework Python included) as the rest of the measured (unprofiled) median."""
    torch = require_torch()
    setup()
    with _native_stderr_silenced(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        step()
    totals = {e.key: e.cpu_time_total * 1e-6 for e in prof.key_averages()}
    gemm_s = sum(totals.get(k, 0.0) for k in GEMM_EVENTS)
    attention_s = sum(totals.get(k, 0.0) for k in ATTENTION_EVENTS)
    return {"gemm": gemm_s, "attention": attention_s, "other": max(0.0, total_s - gemm_s - attention_s)}


@contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """The profiler's native library logs its start and stop on file descriptor 2; keep the terminal clean."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@dataclass
class ModelRun:
    results: list[CaseResult] = field(default_factory=list)
    skipped: str = ""


def run_model(case: ModelCase, hw: HardwareSpec, repeats: int, progress: Progress,
              device: str = "cpu") -> ModelRun:
    try:
        spec = model_spec(case.config, case.name)
    except UnsupportedModelError as exc:
        return ModelRun(skipped=f"rooflm cannot model it yet: {exc}")
    model = build_model(case.config, device)
    run = ModelRun()
    grid = [("decode", b, c) for b, c in case.decode] + [("prefill", b, p) for b, p in case.prefill]
    for phase, batch, size in grid:
        progress(f"{case.name} {phase} batch {batch}, {'context' if phase == 'decode' else 'prompt'} {size}")
        if phase == "decode":
            setup, step = decode_step(model, batch, size)
        else:
            setup, step = (lambda: None), prefill_step(model, batch, size)
        t = time_fn(step, device=device, setup=setup, warmup=1, repeats=repeats)
        p = predict(spec, hw, phase, batch, size)
        run.results.append(CaseResult(
            model=case.name, phase=phase, batch=batch, context=size if phase == "decode" else 0,  # type: ignore[arg-type]
            prompt_len=size if phase == "prefill" else 0, measured_s=t.median_s, measured_spread=t.spread,
            predicted_s=p.calibrated.totals.time_s, ideal_s=p.ideal.totals.time_s,
            predicted_bound=p.calibrated.totals.bound, ideal_bound=p.ideal.totals.bound,
            bytes=p.calibrated.totals.bytes, flops=p.calibrated.totals.flops, predicted_by_class=p.by_class(),
            measured_by_class=profile_classes(step, setup, t.median_s) if device == "cpu" else {},
        ))
    return run


def gemm_op(m: int, k: int, n: int, element_bytes: float, dtype: str) -> Op:
    cost = gemm.linear(float(m), k, n, weight_bytes_per_el=element_bytes, in_bytes=element_bytes,
                       out_bytes=element_bytes)
    return Op(name="gemm", kind="gemm", op_class="weight_gemm", count=1, cost=cost, compute_dtype=dtype,
              weight_shape=(k, n))


def run_gemms(grid: GemmGrid, hw: HardwareSpec, repeats: int, pool_bytes: float, progress: Progress,
              device: str = "cpu") -> list[GemmResult]:
    """Single F.linear calls with cold weights against rooflm's GEMM operator. The overhead charged is one bare
    kernel dispatch (the hardware file's kernel_launch_overhead): here there is no model around the GEMM."""
    torch = require_torch()
    f = torch.nn.functional
    tdt = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[grid.dtype]
    element = torch.empty((), dtype=tdt).element_size()
    calibrated = replace(efficiency_for(hw, "calibrated"), kernel_overhead_s=hw.kernel_launch_overhead.value,
                         overhead_by_kind={})
    ideal = efficiency_for(hw, "ideal")
    out: list[GemmResult] = []
    for k, n in grid.kn:
        first = torch.randn(n, k, dtype=tdt, device=device)
        pool = [first] + [first.clone() for _ in range(max(1, int(pool_bytes // (k * n * element))))]
        for m in grid.m:
            progress(f"GEMM M={m} K={k} N={n}")
            x = torch.randn(m, k, dtype=tdt, device=device)
            turn = [0]

            def call(x: Any = x, turn: list[int] = turn, pool: list[Any] = pool) -> None:
                f.linear(x, pool[turn[0] % len(pool)])
                turn[0] += 1

            with torch.inference_mode():
                t = time_fn(call, device=device, warmup=2, repeats=max(repeats, 5))
            op = gemm_op(m, k, n, element, grid.dtype)
            # The analysis's own totals, so the bound is named exactly as `rooflm analyze` names it.
            (pred,), (best,) = evaluate_ops([op], hw, calibrated, ()), evaluate_ops([op], hw, ideal, ())
            out.append(GemmResult(dtype=grid.dtype, m=m, k=k, n=n, measured_s=t.median_s,
                                  predicted_s=float(pred.time_s), ideal_s=float(best.time_s),
                                  predicted_bound=str(bound_names(pred.bound))))
    return out
