"""A device's on-chip memory levels (the memory hierarchy inside DRAM/HBM), as hardware files list them.

``[[levels]]`` in a hardware file, innermost first; DRAM/HBM itself is the file's ``memory_bandwidth`` and
``memory_capacity`` and is reported under the name ``dram``. rooflm.core.levels turns them into traffic and time.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from rooflm.specs.figures import CACHE_SIZE, MEMORY_BANDWIDTH, Figure

# The outermost memory level's name in reports: DRAM on a CPU, HBM/GDDR on an accelerator.
DRAM = "dram"


class Tile(BaseModel):
    """The output tile (m rows × n columns) of the kernels that read their operands from a memory level: a GEMM
    reads its A panel once per column of tiles and its B panel once per row of tiles from that level, and
    FlashAttention's K/V once per block of m queries (rooflm.core.levels)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    m: int = Field(ge=1, le=1 << 16)
    n: int = Field(ge=1, le=1 << 16)
    source: str = "user-supplied"
    note: str = ""


class MemoryLevel(BaseModel):
    """One on-chip memory level inside DRAM/HBM (L1/shared memory, L2, L3, Infinity Cache): bandwidth and capacity
    aggregated over the device (all SMs, CUs or cores). ``tile``: the tile of the kernels reading from it; without
    one, the level carries each byte that crosses it once (streaming)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    bandwidth: Figure
    capacity: Figure
    tile: Tile | None = None

    @field_validator("name")
    @classmethod
    def _not_dram(cls, v: str) -> str:
        if v == DRAM:
            raise ValueError(f"'{DRAM}' is the outermost level (memory_bandwidth, memory_capacity); do not list it")
        return v

    @field_validator("bandwidth", "capacity")
    @classmethod
    def _sane(cls, v: Figure, info: ValidationInfo) -> Figure:
        (MEMORY_BANDWIDTH if info.field_name == "bandwidth" else CACHE_SIZE).check(str(info.field_name), v.value)
        return v


def check_levels(levels: list[MemoryLevel], bandwidth: float, capacity: float) -> None:
    """Levels run innermost first, names unique, each smaller than DRAM and at least as fast (a cache slower than
    the memory behind it is a unit slip or a failed measurement). Capacities need not grow outward: a CPU's private
    L2s can add up to more than its shared, non-inclusive L3 (Sapphire Rapids: 112 MiB against 105 MiB)."""
    names = [lv.name for lv in levels]
    if len(set(names)) != len(names):
        raise ValueError(f"levels: names must be unique, got {names}")
    big = [lv.name for lv in levels if lv.capacity.value >= capacity]
    if big:
        raise ValueError(f"levels: {big} not smaller than memory_capacity")
    slow = [lv.name for lv in levels if lv.bandwidth.value < bandwidth]
    if slow:
        raise ValueError(f"levels: {slow} slower than memory_bandwidth; a level inside DRAM is at least as fast")
