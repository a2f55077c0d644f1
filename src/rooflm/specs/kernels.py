"""Kernel families and their measured efficiency curves per device class (data/kernels.toml).

A scheme's GEMMs run on one family of kernels (cuBLAS for bf16, Marlin for W4A16, DeepGEMM for block
fp8, ...); each family reaches its own fraction of the bandwidth and of the compute roof, as a function
of the GEMM's rows M and of its weight bytes. The calibrated mode uses these where the hardware file
names its device class (``efficiency.kernel_class``).
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, model_validator

from rooflm.errors import InvalidInputError, arg
from rooflm.specs.dtypes import bytes_per_element
from rooflm.specs.figures import FRACTION, OVERHEAD, Figure, GemmCurve
from rooflm.specs.quant import QuantScheme

KERNELS_FILE = Path(__file__).resolve().parent.parent / "data" / "kernels.toml"
GROUPED = ".grouped"
# The attention families (graph.py names them on attention operators); prefill attention with heads of 64 or fewer
# dimensions runs its own variant where one was measured (half the MMA work per byte of K and V loaded).
PREFILL_ATTENTION = "attention"
SMALL_HEADS = ".d64"
SMALL_HEAD_DIM = 64
DECODE_ATTENTION = "attention-decode"
MLA_DECODE = "mla-decode"
# A variant (experts' grouped GEMMs, small attention heads) falls back to its base family where it has no entry.
VARIANTS = (GROUPED, SMALL_HEADS)


def base_family(family: str) -> str:
    """The family a variant belongs to ("fp8.grouped" → "fp8"; "attention.d64" → "attention")."""
    for suffix in VARIANTS:
        family = family.removesuffix(suffix)
    return family


class KernelCurve(BaseModel):
    """One family on one device class: sustained bandwidth fraction, fixed fill time per kernel, and the
    compute fraction vs M (None: the device's flat fraction for the dtype)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    memory: Figure
    fill: Figure
    compute: GemmCurve | None = None

    @model_validator(mode="after")
    def _sane(self) -> KernelCurve:
        FRACTION.check("memory", self.memory.value)
        OVERHEAD.check("fill", self.fill.value)
        return self

    def bandwidth_fraction(self, weight_bytes: float, bandwidth: float) -> float:
        """Achieved fraction of the bandwidth on a weight-bound matrix of ``weight_bytes``."""
        return 1.0 / (1.0 / self.memory.value + self.fill.value * bandwidth / weight_bytes)


def find_curve(kernels: dict[str, KernelCurve], family: str) -> KernelCurve | None:
    """The family's curve among ``kernels``, or its base family's for a variant not measured separately (None:
    no family, or neither measured)."""
    if not family:
        return None
    return kernels.get(family) or kernels.get(base_family(family))


@lru_cache(maxsize=1)
def _raw() -> dict:
    with KERNELS_FILE.open("rb") as fh:
        return tomllib.load(fh)


def check_families(curves: dict[str, KernelCurve]) -> dict[str, KernelCurve]:
    """Refuse a family (or variant) that kernels.toml does not name, when a hardware file carries its own
    measured families (a ValueError names the key there)."""
    known = set(_raw()["families"])
    unknown = sorted(f for f in curves if base_family(f) not in known)
    if unknown:
        raise ValueError(f"unknown kernel family(ies) {unknown}; known: {sorted(known)}")
    return curves


@lru_cache(maxsize=1)
def _table() -> dict[str, dict[str, KernelCurve]]:
    raw = _raw()
    families = set(raw["families"])
    out: dict[str, dict[str, KernelCurve]] = {}
    for cls in raw["classes"]:
        out[cls] = {}
        for fam, entry in raw.get(cls, {}).items():
            if base_family(fam) not in families:
                raise ValueError(f"kernels.toml: [{cls}.{fam}] names no family in [families]")
            out[cls][fam] = KernelCurve.model_validate(entry)
    return out


def kernel_classes() -> list[str]:
    return list(_table())


def curves_for(kernel_class: str | None, measured: dict[str, KernelCurve] | None = None) -> dict[str, KernelCurve]:
    """The families measured on a device class; {} for a device without one (flat fractions apply). ``measured``:
    the families a hardware file carries from its own device (`rooflm measure`), which outrank its class's, measured
    on other devices of the class."""
    if kernel_class is None:
        return dict(measured or {})
    return {**_class_curves(kernel_class), **(measured or {})}


def _class_curves(kernel_class: str) -> dict[str, KernelCurve]:
    table = _table()
    if kernel_class not in table:
        raise InvalidInputError(f"unknown kernel class {kernel_class!r}; known: {', '.join(table)}",
                                "efficiency.kernel_class")
    return table[kernel_class]


def check_kernel_class(name: str | None) -> str | None:
    """Refuse an unknown class when a hardware file is read (a ValueError names the key there)."""
    if name is not None and name not in _table():
        raise ValueError(f"unknown kernel class {name!r}; known: {', '.join(_table())}")
    return name


def kernel_family(scheme: QuantScheme | None, grouped: bool = False) -> str:
    """The family a GEMM in ``scheme`` runs on (None: an unquantized bf16 GEMM); '.grouped' for the experts of
    a MoE layer (one grouped kernel over all experts)."""
    family = _scheme_family(scheme)
    return family + GROUPED if grouped and family else family


def _scheme_family(scheme: QuantScheme | None) -> str:
    if scheme is None:
        return "dense"
    w, a = bytes_per_element(scheme.weight), bytes_per_element(scheme.activation)
    if w >= 2 and a >= 2:
        return "dense" if w == 2 else ""  # fp32 weights: no family measured
    if a >= 2:
        return "w8a16" if w == 1 else "w4a16"
    if w == 1:
        if scheme.weight == "int8":
            return "int8"
        return "fp8-block" if scheme.k_block else "fp8"
    return "w4a8" if a == 1 else "fp4"



def check_dequant_override(device: str, schemes: dict[str, QuantScheme], kernels: dict[str, KernelCurve]) -> None:
    """Refuse ``dequant_ops`` where a quantized module's GEMMs run on a measured kernel curve: the curve is the
    kernel's measured time, conversion included, so a per-weight vector cost would be silently left unused."""
    for module, q in schemes.items():
        if q.plain:
            continue
        family = kernel_family(q, grouped=module == "experts")
        if find_curve(kernels, family) is not None:
            raise InvalidInputError(
                f"dequant-ops: on {device} calibrated mode times {family} GEMMs ({module}) with a measured kernel "
                f"curve that includes dequantization; use it with {arg('efficiency')} ideal or with "
                f"{arg('eta_memory')}/{arg('eta_compute')}",
                "dequant_ops")
