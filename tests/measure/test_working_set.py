"""The cache-level sweep: sizes, plateaus and levels from synthetic points by hand; a real tiny sweep; the levels a
measured hardware file carries and that they load in the catalog's [[levels]] schema."""

from __future__ import annotations

from pathlib import Path

import pytest

import rooflm
from rooflm.measure import working_set
from rooflm.measure.hwfile import write_hardware_file
from rooflm.measure.results import Measurements, Run, WorkingSetPoint
from rooflm.measure.working_set import measure_working_set, measured_levels, plateaus, working_sets

from .test_hwfile import CAL, MACHINE

KiB, MiB = 1024.0, 1024.0**2


def _point(size: float, bandwidth: float) -> WorkingSetPoint:
    # 1 GB read per call, timed at exactly the bandwidth given (fastest = median)
    t = 1e9 / bandwidth
    return WorkingSetPoint(working_set_bytes=size, bytes_read=1e9, run=Run(median_s=t, min_s=t, max_s=t, repeats=1))


# A CPU with 48 KiB L1 and 2 MiB L2 per core and a shared 32 MiB L3, swept by 2 threads: the L1s hold 96 KiB in all,
# the L2s 4 MiB. Plateaus at 200, 100, 50 GB/s, then DRAM at 10 GB/s.
POINTS = [_point(16 * KiB, 200e9), _point(32 * KiB, 210e9), _point(256 * KiB, 100e9), _point(512 * KiB, 95e9),
          _point(8 * MiB, 50e9), _point(16 * MiB, 52e9), _point(256 * MiB, 10e9)]
CACHES = {"l1": 48 * KiB, "l2": 2 * MiB, "l3": 32 * MiB}


def test_sizes_double_from_16_kib() -> None:
    assert working_sets(1 * MiB) == tuple(16 * KiB * 2**i for i in range(7))  # 16 KiB … 1 MiB: 7 sizes
    assert len(working_sets(1 * MiB, per_octave=2)) == 13


def test_plateaus_by_hand() -> None:
    # Neighbours within ±25% of their group's median join it: {16, 32 KiB}, {256, 512 KiB}, {8, 16 MiB}, {256 MiB}.
    found = plateaus(POINTS)
    expected = [(16 * KiB, 32 * KiB, 210e9), (256 * KiB, 512 * KiB, 100e9), (8 * MiB, 16 * MiB, 52e9),
                (256 * MiB, 256 * MiB, 10e9)]
    assert [x for f in found for x in f] == pytest.approx([x for e in expected for x in e])


def test_levels_by_hand() -> None:
    # l1: 96 KiB over 2 threads, sizes ≤ 48 KiB → 210 GB/s; l2: 4 MiB, sizes in [192 KiB, 2 MiB] → 100 GB/s;
    # l3: 32 MiB, sizes in [8 MiB, 16 MiB] → 52 GB/s. DRAM (10 GB/s) is not a level.
    levels = measured_levels(POINTS, CACHES, 2, 10e9)
    assert [n for n, _, _ in levels] == ["l1", "l2", "l3"]
    assert [x for _, bw, cap in levels for x in (bw, cap)] == pytest.approx(
        [210e9, 96 * KiB, 100e9, 4 * MiB, 52e9, 32 * MiB])
    # A level no faster than DRAM is left out.
    assert [n for n, _, _ in measured_levels(POINTS, CACHES, 2, 60e9)] == ["l1", "l2"]


def test_a_real_sweep_reads_what_it_says(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    monkeypatch.setattr(working_set, "READ_PER_CALL", 1 * MiB)
    labels: list[str] = []
    points = measure_working_set((16 * KiB, 256 * KiB), 2, labels.append)
    assert labels == ["working set 16 KiB", "working set 256 KiB"]
    # 1 MiB per call: a 16 KiB buffer read 64 times, a 256 KiB one 4 times.
    assert [(p.working_set_bytes, p.bytes_read) for p in points] == [(16 * KiB, 1 * MiB), (256 * KiB, 1 * MiB)]
    assert all(p.best_bytes_per_s > 0 for p in points)


def test_measured_file_carries_the_levels(tmp_path: Path) -> None:
    r = Run(median_s=1.0, min_s=1.0, max_s=1.0, repeats=1)
    m = Measurements(machine=MACHINE, quick=True, bandwidth=[], matmul=[], curve=[], dispatch=r, eager_steps=[],
                     working_set=POINTS)
    path = tmp_path / "measured.toml"
    write_hardware_file(path, CAL, m)  # CAL's DRAM roof is 30 GB/s; MACHINE's caches: l2 2 MiB, l3 32 MiB
    hw = rooflm.load_hardware(str(path))
    # l2 (2 threads × 2 MiB = 4 MiB): sizes in [0, 2 MiB] → 210 GB/s; l3 (32 MiB): sizes in [8, 16 MiB] → 52 GB/s.
    assert [lv.name for lv in hw.levels] == ["l2", "l3"]
    assert [x for lv in hw.levels for x in (lv.bandwidth.value, lv.capacity.value)] == pytest.approx(
        [210e9, 4 * MiB, 52e9, 32 * MiB], rel=1e-5)  # written with 6 significant digits
    assert "working sets inside the level" in hw.levels[0].bandwidth.source
