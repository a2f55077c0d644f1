"""The hierarchical roofline's data: one bandwidth slope per memory level, each operator at its intensity for the
level that binds it (docs/DESIGN.md, "Memory levels"). Read off a Report and the device: nothing is recomputed."""

from __future__ import annotations

from dataclasses import dataclass

from rooflm.analyses.documents import levels_document
from rooflm.analyses.report import Report
from rooflm.specs.hardware import HardwareSpec
from rooflm.units import mode_label


@dataclass(frozen=True)
class LevelSlope:
    name: str
    bandwidth: float  # bytes/s


@dataclass(frozen=True)
class LevelPoint:
    """One operator at one level: intensity = FLOPs / that level's bytes, achieved FLOP/s = FLOPs / time."""

    operator: str
    level: str
    intensity: float
    flops_per_s: float
    binds: bool  # the level is the operator's bound_level


@dataclass(frozen=True)
class LevelsData:
    title: str
    peak_flops: float
    levels: list[LevelSlope]  # innermost first, DRAM last
    points: list[LevelPoint]


def levels_data(report: Report, hw: HardwareSpec, all_levels: bool = False) -> LevelsData:
    """Operators with FLOPs and bytes, each at its binding level (every level with ``all_levels``)."""
    points = []
    for o in report.operators:
        if o.flops <= 0 or o.time_s <= 0 or not o.bytes_by_level:
            continue
        for level, moved in o.bytes_by_level.items():
            binds = level == o.bound_level
            if moved > 0 and (binds or all_levels):
                points.append(LevelPoint(o.name, level, o.flops / moved, o.flops / o.time_s, binds))
    slopes = [LevelSlope(lv["name"], lv["bandwidth"]) for lv in levels_document(hw)]
    title = (f"{report.model} on {hw.display_name}: hierarchical roofline ({report.phase}, batch {report.batch}, "
             f"{mode_label(report.efficiency)})")
    return LevelsData(title, hw.peak(report.compute_dtype), slopes, points)
