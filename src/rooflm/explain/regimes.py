"""The regime table in words, for ``explain``: one line per regime, and on a CPU why weight quantization pays there
(or does not), next to the same model on a GPU. Every number comes from ``regimes`` and ``critical_batch``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from rooflm import units
from rooflm.analyses.critical import critical_batch
from rooflm.analyses.regimes import INT4_SCHEME, Regime, Regimes, intensity_text, regimes
from rooflm.errors import RooflmError
from rooflm.specs.hardware import HardwareSpec
from rooflm.specs.model import ModelSpec

REFERENCE_GPU = "h100-sxm"  # the GPU a CPU is compared with
# Deployment keywords that mean the same on another device (a layout, a profile or overheads are the device's own).
PORTABLE = ("quant", "kv_dtype", "efficiency")


@dataclass(frozen=True)
class DeviceQuant:
    """What int4 weights buy on one device, from its regime table and critical batches."""

    hardware: str
    ridge_intensity: float
    decode_speedup: float | None  # batch-1 decode, W4A16 vs bf16
    prefill_speedup: float | None  # the large prefill
    critical_batch_bf16: int | None
    critical_batch_int4: int | None


@dataclass(frozen=True)
class CpuComparison:
    cpu: DeviceQuant
    gpu: DeviceQuant

    def to_json_dict(self) -> dict[str, Any]:
        return {"cpu": asdict(self.cpu), "gpu": asdict(self.gpu)}


def _row(t: Regimes, name: str) -> Regime | None:
    return next((r for r in t.regimes if r.name == name), None)


def device_quant(model: ModelSpec, hw: HardwareSpec | str, deployment: dict[str, Any]) -> DeviceQuant:
    table = regimes(model, hw, **deployment)
    decode, prefill = _row(table, "batch-1 decode"), _row(table, "large-batch prefill")
    crossing = {q: critical_batch(model, hw, quant=q, **{k: v for k, v in deployment.items() if k != "quant"})
                for q in ("bf16", INT4_SCHEME)}
    return DeviceQuant(table.hardware, decode.ridge_intensity if decode else float("nan"),
                       decode.quant_speedup if decode else None, prefill.quant_speedup if prefill else None,
                       crossing["bf16"].critical_batch_unconstrained, crossing[INT4_SCHEME].critical_batch_unconstrained)


def cpu_comparison(model: ModelSpec, hw: HardwareSpec, deployment: dict[str, Any]) -> CpuComparison | None:
    """On a CPU: int4's gains there and on the reference GPU, for the same model and scheme; None elsewhere or
    where either cannot be evaluated."""
    if hw.kind != "cpu":
        return None
    portable = {k: v for k, v in deployment.items() if k in PORTABLE and v is not None}
    try:
        return CpuComparison(device_quant(model, hw, portable), device_quant(model, REFERENCE_GPU, portable))
    except RooflmError:
        return None


def regime_lines(t: Regimes) -> list[str]:
    out = []
    for r in t.regimes:
        where = f"{r.bound}-bound" + (f" on {r.level}" if r.level else "")
        gain = "" if r.quant_speedup is None else f"; int4 ({INT4_SCHEME}) weights: {r.quant_speedup:.2f}×"
        out.append(f"- **{r.name}** ({r.workload}): {intensity_text(r.arithmetic_intensity)} FLOP/byte, {where}, "
                   f"{units.seconds(r.time_s)}{gain}.")
        if r.agrees_with_rule_of_thumb is False:
            out.append(f"  The rule of thumb says {r.rule_of_thumb}; {r.note.split(': ', 1)[1]}.")
    return out


def _x(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}×"


def _batch(b: int | None) -> str:
    return "never" if b is None else f"batch {b}"


def comparison_lines(c: CpuComparison) -> list[str]:
    cpu, gpu = c.cpu, c.gpu
    sooner = "sooner" if (cpu.critical_batch_int4 or 0) < (gpu.critical_batch_int4 or 0) else "later"
    lines = [
        f"- Batch-1 decode reads every weight once on both devices: int4 weights buy {_x(cpu.decode_speedup)} on "
        f"{cpu.hardware} and {_x(gpu.decode_speedup)} on {gpu.hardware}. Where the step is DRAM-bound the gain is "
        "the bytes saved, whatever the device.",
        f"- The difference is the ridge: {cpu.ridge_intensity:.3g} FLOP/byte on {cpu.hardware} against "
        f"{gpu.ridge_intensity:.3g} on {gpu.hardware}. The weight GEMMs turn compute-bound at "
        f"{_batch(cpu.critical_batch_bf16)} in bf16 and {_batch(cpu.critical_batch_int4)} in int4 on the CPU "
        f"({_batch(gpu.critical_batch_bf16)} and {_batch(gpu.critical_batch_int4)} on the GPU), so int4 stops "
        f"paying {sooner} there.",
        f"- A large prefill is compute-bound on both: int4 buys {_x(cpu.prefill_speedup)} on the CPU and "
        f"{_x(gpu.prefill_speedup)} on the GPU (its math runs on the bf16 roof).",
    ]
    verdict = ("pays on this CPU for a single user's decode (batch below the int4 crossover), as on a GPU, and less "
               "the more sequences share a step") if (cpu.decode_speedup or 0) > 1.1 else \
        "buys little on this CPU even at batch 1"
    return [*lines, f"- So weight quantization {verdict}."]
