"""`rooflm validate --quant`: run the quantization section and print or return its document."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.text import Text

from rooflm.cli.output import err, out, print_json, show
from rooflm.measure.bench import past_cache_bytes
from rooflm.measure.configs import Config, model_spec
from rooflm.measure.machine import cpu_busy_fraction, describe_machine
from rooflm.measure.quant import available, run_quant, speedups
from rooflm.measure.quant_render import error_line, quant_table
from rooflm.measure.runner import validation_models
from rooflm.measure.timing import require_torch
from rooflm.specs.hardware import HardwareSpec

MODEL = "dense-small"  # validate's 247 M-parameter Llama: its weights (0.36 GB of layer GEMMs in bf16) pass the caches
THREADS = 1
BATCHES = {True: [1, 16, 64], False: [1, 4, 16, 64, 128, 256]}


def quant_model(quick: bool) -> tuple[str, Config]:
    """The model whose GEMMs are timed: its name and config.json (tests swap in a tiny one)."""
    return MODEL, next(c for c in validation_models(quick) if c.name == MODEL).config


def validate_quant(hw: HardwareSpec, hw_path: Path | None, quick: bool, as_json: bool,
                   progress_bar: Callable[[int, str], AbstractContextManager[Callable[[str], None]]]) -> None:
    torch = require_torch()
    name, config = quant_model(quick)
    spec = model_spec(config, name)
    if cpu_busy_fraction() > 0.1:
        err.print(Text.assemble(("warning:", "yellow"), " other processes keep the CPUs busy: CPU time leaves out "
                                "their turns on the core, not their share of the memory bus"), highlight=False)
    schemes, batches = available(torch), BATCHES[quick]
    llc = max((f.value for f in hw.caches.values()), default=32 * 2**20)
    pool = past_cache_bytes(llc, hw.memory_capacity.value)
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)  # CPU time is the kernels' own only without threads waiting at barriers
    try:
        with progress_bar(2 * len(schemes) * len(batches), "timing quantized GEMMs") as step:
            samples = run_quant(spec, hw, batches, schemes, pool, 3 if quick else 9, step)
    finally:
        torch.set_num_threads(threads)
    gains = speedups(samples)
    if as_json:
        print_json(document(hw, hw_path, quick, torch, samples, gains) | {"model": name})
        return
    out.print(f"hardware: {hw.display_name} · {name} ({spec.num_layers} layers, hidden {spec.hidden_size}) · "
              f"{THREADS} thread, CPU time, medians", highlight=False)
    for case_name in ("gemm", "decode"):
        show(quant_table(samples, gains, case_name))
    if gains:
        out.print(error_line(gains), highlight=False)


def document(hw: HardwareSpec, hw_path: Path | None, quick: bool, torch: Any, samples: list[Any],
             gains: list[Any]) -> dict[str, Any]:
    errors: dict[str, dict[str, float]] = {}
    for scheme in dict.fromkeys(g.scheme for g in gains):
        e = [abs(g.error) for g in gains if g.scheme == scheme]
        errors[scheme] = {"median_abs": statistics.median(e), "max_abs": max(e)}
    return {"machine": describe_machine("cpu").describe(), "hardware": hw.name,
            "hardware_file": None if hw_path is None else str(hw_path), "quick": quick,
            "model": MODEL, "threads": THREADS, "clock": "process CPU time", "torch": torch.__version__,
            "samples": [asdict(s) for s in samples],
            "speedups": [{**asdict(g), "error": g.error} for g in gains], "error": errors}
