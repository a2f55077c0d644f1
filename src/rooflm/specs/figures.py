"""Sourced figures and their sane ranges: the building blocks of hardware files and kernel-curve data.

A module of its own so that both ``specs.hardware`` and ``specs.kernels`` can use them without importing each other.
"""

from __future__ import annotations

from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Bounds(NamedTuple):
    """The physically sane range of one kind of figure; ``low_open`` excludes ``low`` itself."""

    low: float
    high: float
    unit: str
    low_open: bool = False

    def check(self, key: str, value: float) -> None:
        inside = (self.low < value if self.low_open else self.low <= value) and value <= self.high
        if not inside:
            interval = f"{'(' if self.low_open else '['}{self.low:g}, {self.high:g}]"
            raise ValueError(f"{key} = {value:g} is outside {interval}{' ' + self.unit if self.unit else ''}: "
                             "check the units (SI: FLOP/s, B/s, B, s; fractions in (0, 1])")


# What a figure may be. Far wider than any real device, yet narrow enough to catch a unit slip (3.35 written
# for 3.35 TB/s) and to keep every time the roofline computes finite: bytes / 1e-300 B/s overflows to inf,
# which then reaches the JSON report as a non-JSON number.
# - Memory bandwidth: 1 GB/s is below any DRAM an LLM is served from (one DDR4 channel: 25 GB/s); 1 PB/s is
#   over 100× an 8 TB/s B200.
# - Peak FLOP/s: 1 EFLOP/s is 100× a B200's dense fp4 (9 PFLOP/s). The low end is 1 MFLOP/s, not 1 GFLOP/s:
#   ``rooflm measure`` writes the roofs it measures, and a dtype a CPU only emulates (fp16 or int8 matmul in
#   eager torch) can run at a few GFLOP/s or less. 0 keeps its meaning of "no such roof" (``peak`` refuses it).
# - Memory capacity: 1 MB to 1 PB. Caches: above 0, up to 1 PB.
# - Overheads and latencies: 0 to 1 s; a kernel launch or a link hop of a second is longer than a whole step.
# - Link bandwidth: 1 MB/s (slower than any network an accelerator is linked by) to 1 PB/s; 0 divides by zero.
# - Efficiency fractions: (0, 1]. 0 divides by zero; above 1 would be faster than the datasheet roof.
MEMORY_BANDWIDTH = Bounds(1e9, 1e15, "B/s")
PEAK_FLOPS = Bounds(1e6, 1e18, "FLOP/s")
MEMORY_CAPACITY = Bounds(1e6, 1e15, "B")
CACHE_SIZE = Bounds(0, 1e15, "B", low_open=True)
# A runtime reserve (CUDA context, library workspaces): 0 to 1 PB, as a capacity.
MEMORY_RESERVE = Bounds(0, 1e15, "B")
MAX_OVERHEAD_S = 1.0
OVERHEAD = Bounds(0, MAX_OVERHEAD_S, "s")
LINK_BANDWIDTH = Bounds(1e6, 1e15, "B/s")
FRACTION = Bounds(0, 1, "", low_open=True)
# A scale-up domain (NVLink, an ICI slice) of a million devices is ~100× the largest TPU pod.
MAX_DEVICES_PER_DOMAIN = 10**6


class Figure(BaseModel):
    """One number with the place it comes from."""

    # allow_inf_nan=False: NaN and inf are refused as "Input should be a finite number", at the figure's key.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    value: float = Field(ge=0)
    source: str = "user-supplied"
    note: str = ""

    @model_validator(mode="before")
    @classmethod
    def _from_plain_number(cls, data: object) -> object:
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return {"value": float(data)}
        return data


class GemmCurve(BaseModel):
    """Achievable fraction of a dtype's peak for a GEMM with ``rows`` input rows (M), at measured M values;
    interpolated in log M between them and held flat beyond the ends."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    rows: list[float]
    value: list[float]
    source: str = "user-supplied"
    note: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> GemmCurve:
        if not self.rows or len(self.rows) != len(self.value):
            raise ValueError("rows and value need the same, non-zero length")
        if self.rows[0] < 1 or any(b <= a for a, b in zip(self.rows, self.rows[1:], strict=False)):
            raise ValueError("rows must be ≥ 1 and strictly increasing")
        if any(not 0 < v <= 1 for v in self.value):
            raise ValueError("each value must be in (0, 1]")
        return self
