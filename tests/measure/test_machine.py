"""The machine description's CPU load check: the share of CPU time busy between two /proc/stat samples."""

from __future__ import annotations

import pytest

from rooflm.measure.machine import busy_between, cpu_busy_fraction


def test_busy_share_from_two_samples() -> None:
    """Between the samples 400 jiffies passed on all CPUs together, 100 of them idle: 300 / 400 = 0.75 busy."""
    assert busy_between((1000, 600), (1400, 700)) == pytest.approx(0.75)
    assert busy_between((1000, 600), (1400, 1000)) == 0.0  # all idle
    assert busy_between((1000, 600), (1000, 600)) == 0.0  # no tick between them: nothing seen, no warning


def test_fraction_of_this_machine_is_a_share() -> None:
    """On Linux it reads /proc/stat; anywhere it is a share in [0, 1] (0 where the file is missing)."""
    assert 0.0 <= cpu_busy_fraction(0.01) <= 1.0
