"""The parameters `rooflm fit` estimates: calibrated mode's own overrides (rooflm.core.inputs.Deployment), nothing new.

Each is fitted in a space where a step is a relative change (the log of a fraction or an overhead), so that a 10%
change of a 4 µs overhead weighs as much as a 10% change of a 0.8 efficiency; the overlap, which may be 0, is fitted
as it is. An override is one flat figure: it replaces the hardware file's per-dtype, per-kind and per-family figures
(rooflm.core.roofline.efficiency_for), which is why a parameter the data cannot identify is left out of the overrides.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rooflm.core.roofline import MIN_FRACTION, Factors
from rooflm.specs.figures import MAX_OVERHEAD_S

# An overhead is fitted on a log scale, which cannot reach 0: a nanosecond stands for "none" (a kernel launch
# is microseconds, an engine step hundreds of them).
MIN_OVERHEAD_S = 1e-9
# The overlap's upper bound: inputs.check_runtime refuses 1 (communication wholly hidden is not a layout).
MAX_OVERLAP = 0.99


@dataclass(frozen=True)
class Parameter:
    name: str  # the CLI flag's and the profile's name
    keyword: str  # the API keyword (rooflm.analyze(..., keyword=value))
    low: float
    high: float
    log: bool  # fitted as log(value)
    # The value calibrated mode uses without an override, read from a rooflm.core.inputs.Setup (not imported: inputs
    # reads profiles through rooflm.core.profiles, which imports this module).
    catalog: Callable[[Any], float]
    unit: str = ""
    # A log-scale overhead is screened and fitted from at least this share of the shortest predicted step: at a
    # catalog value of 0 (a hardware file without a per-step cost) its slope is 0 and the data would look blind to it.
    start_share: float = 0.0

    @property
    def cli_name(self) -> str:
        return self.name

    def to_internal(self, value: float) -> float:
        v = min(max(value, self.low), self.high)
        return math.log(v) if self.log else v

    def from_internal(self, z: float) -> float:
        # exp(log(bound)) can land an ulp outside the bound, which a profile's reader then refuses: clamp.
        return min(max(math.exp(z) if self.log else z, self.low), self.high)

    def start(self, catalog: float, shortest_s: float) -> float:
        """Where the screen and the fit start: the catalog value, or the floor above when it is (near) zero."""
        return max(catalog, self.start_share * shortest_s)

    @property
    def internal_bounds(self) -> tuple[float, float]:
        return (self.to_internal(self.low), self.to_internal(self.high))


PARAMETERS: tuple[Parameter, ...] = (
    Parameter("eta_memory", "eta_memory", MIN_FRACTION, 1.0, True, lambda s: s.eff.memory),
    Parameter("eta_compute", "eta_compute", MIN_FRACTION, 1.0, True, lambda s: s.eff.compute_fraction(s.quant.compute)),
    # Overriding the per-kernel overhead sets it for decode too (no separate CUDA-graph figure): inputs.with_runtime.
    # Start shares well above fit.solve.MIN_SENSITIVITY (1% of log time): a step runs tens to thousands of kernels,
    # so 1e-3 of the shortest step per kernel is ≥ 5% of it; the step cost starts at 5%.
    Parameter("kernel_overhead", "kernel_overhead_s", MIN_OVERHEAD_S, MAX_OVERHEAD_S, True,
              lambda s: s.eff.kernel_overhead_s, "s", 1e-3),
    Parameter("step_overhead", "step_overhead_s", MIN_OVERHEAD_S, MAX_OVERHEAD_S, True, lambda s: s.step_overhead_s, "s",
              0.05),
    Parameter("comm_overlap", "comm_overlap", 0.0, MAX_OVERLAP, False, lambda s: s.eff.comm_overlap),
)
BY_NAME: dict[str, Parameter] = {p.name: p for p in PARAMETERS}


def overrides(values: dict[str, float]) -> dict[str, float]:
    """Parameter values by name → the keyword overrides ``rooflm.analyze`` takes."""
    return {BY_NAME[name].keyword: value for name, value in values.items()}


# A profile of format 2 holds multiplicative factors on calibrated mode's curves (rooflm.core.roofline.Factors) instead
# of the flat overrides above, which replaced the curves: a factor of 1 is the catalog, so an unfitted one costs nothing.
FORMAT = 2
FACTOR_LOW, FACTOR_HIGH = 0.25, 4.0
PER_FAMILY = ("bandwidth", "compute", "fixed")
STEP = "step"
OVERLAP = "comm_overlap"


def factor_name(which: str, family: str) -> str:
    """A per-family factor's name in the fit and the profile: ``bandwidth.bf16``, ``fixed.other``."""
    return f"{which}.{family}"


def check_factor_name(name: str) -> bool:
    """Whether ``name`` is a factor's name (``step``, ``comm_overlap`` or ``<bandwidth|compute|fixed>.<family>``)."""
    if name in (STEP, OVERLAP):
        return True
    which, _, family = name.partition(".")
    return which in PER_FAMILY and bool(family)


def factor_bounds(name: str) -> tuple[float, float]:
    return (0.0, MAX_OVERLAP) if name == OVERLAP else (FACTOR_LOW, FACTOR_HIGH)


def to_factors(values: dict[str, float]) -> Factors:
    """Factor values by name (``comm_overlap`` left out: it is a deployment keyword) → the core's Factors."""
    tables: dict[str, dict[str, float]] = {w: {} for w in PER_FAMILY}
    for name, v in values.items():
        if name in (STEP, OVERLAP):
            continue
        which, _, family = name.partition(".")
        tables[which][family] = float(v)
    return Factors(tables["bandwidth"], tables["compute"], tables["fixed"], float(values.get(STEP, 1.0)))
