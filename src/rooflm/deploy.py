"""Resolved inputs: the model, the device, the scheme, the efficiency and the layout, checked once.

Every entry point (analyze, sweep, critical batch) takes the same deployment keywords, named like
the CLI flags, and resolves them here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict, get_args

from typing_extensions import Unpack

from rooflm.errors import InvalidInputError, quoted
from rooflm.graph import MlaDecode, Options
from rooflm.ops.moe import Routing
from rooflm.roofline import Efficiency, efficiency_for
from rooflm.specs.hardware import HardwareSpec, load_hardware
from rooflm.specs.hf_config import load_model
from rooflm.specs.model import MODULES, ModelSpec
from rooflm.specs.parallel import Parallelism
from rooflm.specs.quant import NATIVE, QuantScheme, check_quant, load_scheme
from rooflm.specs.quant_costs import costs_for
from rooflm.specs.workload import PHASES, check_choice, check_context, check_number, check_positive

# Routing skew: 1 is uniform. Past a factor of a million every hot expert is already picked by every token
# (its probability is capped at 1), so a larger one changes nothing but risks overflow (1e308 · experts = inf).
MAX_HOT_EXPERT_FACTOR = 1e6


class Deployment(TypedDict, total=False):
    """How the model is served: every entry point takes these as keyword arguments (CLI flag names)."""

    quant: str | QuantScheme | None  # a scheme, a mix per module class, or None/"native": the checkpoint's own
    kv_dtype: str | None
    efficiency: str  # ideal | calibrated, any case
    eta_memory: float | None
    eta_compute: float | None
    kernel_overhead_s: float | None
    tp: int
    ep: int
    pp: int
    dp: int
    comm_algorithm: str  # ring | tree, any case
    hot_expert_factor: float
    hot_expert_fraction: float
    mla_decode: str  # absorbed | naive, any case
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
    """Check every deployment keyword (type, range, choice) before loading anything, then resolve them. The CLI,
    the API and the web server all come through here, so they refuse the same values with the same message."""
    quant, kv_dtype, act_quant = d.get("quant") or NATIVE, d.get("kv_dtype"), d.get("act_quant")
    if not isinstance(quant, (str, QuantScheme)):
        raise InvalidInputError(f"quant must be a scheme name, got {quoted(quant)}", "quant")
    if kv_dtype is not None and not isinstance(kv_dtype, str):
        raise InvalidInputError(f"kv-dtype must be a dtype name, got {quoted(kv_dtype)}", "kv_dtype")
    kv_dtype = kv_dtype.strip().lower() if kv_dtype else kv_dtype  # dtype names are lower case: "FP8" is fp8
    if act_quant is not None and not isinstance(act_quant, bool):
        raise InvalidInputError(f"act-quant must be true, false or unset, got {quoted(act_quant)}", "act_quant")
    sizes = {k: d.get(k, 1) for k in ("tp", "ep", "pp", "dp")}
    check_positive(**sizes)
    algorithm = check_choice(d.get("comm_algorithm", "ring"), "comm_algorithm", ("ring", "tree"))
    mla_decode: MlaDecode = check_choice(d.get("mla_decode", "absorbed"), "mla_decode",  # type: ignore[assignment]
                                         get_args(MlaDecode))
    routing = Routing(
        check_number(d.get("hot_expert_factor", 1.0), "hot_expert_factor", 1, MAX_HOT_EXPERT_FACTOR),
        check_number(d.get("hot_expert_fraction", 0.1), "hot_expert_fraction", 0, 1, low_open=True, high_open=True),
    )
    hw = load_hardware(hardware)
    # efficiency_for and costs_for check their own overrides (finite, in range), for their other callers too.
    eff = efficiency_for(hw, d.get("efficiency", "ideal"), memory=d.get("eta_memory"), compute=d.get("eta_compute"),
                         kernel_overhead_s=d.get("kernel_overhead_s"))
    if isinstance(quant, str):
        check_quant(quant)  # a malformed --quant is refused before the model is read
    spec = load_model(model)
    scheme = load_scheme(quant, kv_dtype, spec)
    for module in MODULES:
        hw.peak(scheme.for_module(module).compute)  # refuse a scheme the device has no roof for, before any work
    overrides = {"dequant_ops": d.get("dequant_ops"), "kv_dequant_ops": d.get("kv_dequant_ops"), "act_quant": act_quant}
    costs = costs_for(scheme, eff.mode, **overrides)
    module_costs = tuple((m, costs_for(scheme.for_module(m), eff.mode, **overrides)) for m in MODULES)
    parallel = Parallelism(**sizes, algorithm=algorithm)
    parallel.check(spec)
    return Setup(spec, hw, scheme, eff, Options(parallel, routing, mla_decode, costs=costs, module_costs=module_costs))


def check_phase(phase: object) -> str:
    """The phase in lower case ('Decode' is decode); anything else is refused."""
    picked = phase.strip().lower() if isinstance(phase, str) else None
    if picked not in PHASES:
        raise InvalidInputError(f"phase must be one of {', '.join(PHASES)}, got {quoted(phase)}", "phase")
    return picked


def check_lengths(model: ModelSpec, phase: str, prompt_lens: list[int], contexts: list[int], gen_len: int) -> None:
    limit = model.max_position_embeddings
    if phase == "decode":
        check_context(max(contexts), limit)
    elif phase == "prefill":
        check_context(max(prompt_lens), limit, "prompt length")
    else:
        check_context(max(prompt_lens) + gen_len - 1, limit, "prompt length + gen length")
