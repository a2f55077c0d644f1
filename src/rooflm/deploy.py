"""Resolved inputs: the model, the device, the scheme, the efficiency and the layout, checked once.

Every entry point (analyze, sweep, critical batch) takes the same deployment keywords, named like
the CLI flags, and resolves them here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypedDict

from typing_extensions import Unpack

from rooflm.errors import InvalidInputError
from rooflm.graph import MlaDecode, Options
from rooflm.ops.moe import Routing
from rooflm.roofline import Efficiency, efficiency_for
from rooflm.specs.hardware import HardwareSpec, load_hardware
from rooflm.specs.hf_config import load_model
from rooflm.specs.model import ModelSpec
from rooflm.specs.parallel import Parallelism
from rooflm.specs.quant import QuantScheme, load_scheme
from rooflm.specs.quant_costs import costs_for
from rooflm.specs.workload import PHASES, check_context, check_positive


class Deployment(TypedDict, total=False):
    """How the model is served: every entry point takes these as keyword arguments (CLI flag names)."""

    quant: str | QuantScheme
    kv_dtype: str | None
    efficiency: str
    eta_memory: float | None
    eta_compute: float | None
    kernel_overhead_s: float | None
    tp: int
    ep: int
    pp: int
    dp: int
    comm_algorithm: Literal["ring", "tree"]
    hot_expert_factor: float
    hot_expert_fraction: float
    mla_decode: MlaDecode
    dequant_ops: float | None
    kv_dequant_ops: float | None
    act_quant: bool | None


@dataclass(frozen=True)
class Setup:
    """Resolved inputs shared by every entry point."""

    model: ModelSpec
    hardware: HardwareSpec
    quant: QuantScheme
    eff: Efficiency
    options: Options

    @property
    def parallel(self) -> Parallelism:
        return self.options.parallel

    @property
    def ridge(self) -> float:
        """Ridge of the scheme's compute roof, at the efficiencies in use (the datasheet ridge when ideal)."""
        hw, eff, dtype = self.hardware, self.eff, self.quant.compute
        return hw.peak(dtype) * eff.compute_fraction(dtype) / (hw.memory_bandwidth.value * eff.memory)


def setup(model: str | Path | ModelSpec, hardware: str | Path | HardwareSpec, **d: Unpack[Deployment]) -> Setup:
    hw = load_hardware(hardware)
    scheme = load_scheme(d.get("quant", "bf16"), d.get("kv_dtype"))
    hw.peak(scheme.compute)  # refuse a scheme the device has no roof for, before any work
    spec = load_model(model)
    check_positive(tp=d.get("tp", 1), ep=d.get("ep", 1), pp=d.get("pp", 1), dp=d.get("dp", 1))
    parallel = Parallelism(tp=d.get("tp", 1), ep=d.get("ep", 1), pp=d.get("pp", 1), dp=d.get("dp", 1),
                           algorithm=d.get("comm_algorithm", "ring"))
    parallel.check(spec)
    factor, fraction = d.get("hot_expert_factor", 1.0), d.get("hot_expert_fraction", 0.1)
    if factor < 1 or not 0 < fraction < 1:
        raise InvalidInputError("hot-expert-factor must be ≥ 1 and hot-expert-fraction in (0, 1)", "hot_expert_factor")
    mla_decode = d.get("mla_decode", "absorbed")
    if mla_decode not in ("absorbed", "naive"):
        raise InvalidInputError(f"mla-decode must be 'absorbed' or 'naive', got {mla_decode!r}", "mla_decode")
    eff = efficiency_for(hw, d.get("efficiency", "ideal"), memory=d.get("eta_memory"), compute=d.get("eta_compute"),
                         kernel_overhead_s=d.get("kernel_overhead_s"))
    costs = costs_for(scheme, eff.mode, dequant_ops=d.get("dequant_ops"), kv_dequant_ops=d.get("kv_dequant_ops"),
                      act_quant=d.get("act_quant"))
    return Setup(spec, hw, scheme, eff, Options(parallel, Routing(factor, fraction), mla_decode, costs=costs))


def _check_phase(phase: str) -> None:
    if phase not in PHASES:
        raise InvalidInputError(f"phase must be one of {', '.join(PHASES)}, got {phase!r}", "phase")


def check_phase(phase: str) -> None:
    if phase not in PHASES:
        raise InvalidInputError(f"phase must be one of {', '.join(PHASES)}, got {phase!r}", "phase")


def check_lengths(model: ModelSpec, phase: str, prompt_lens: list[int], contexts: list[int], gen_len: int) -> None:
    limit = model.max_position_embeddings
    if phase == "decode":
        check_context(max(contexts), limit)
    elif phase == "prefill":
        check_context(max(prompt_lens), limit, "prompt length")
    else:
        check_context(max(prompt_lens) + gen_len - 1, limit, "prompt length + gen length")
