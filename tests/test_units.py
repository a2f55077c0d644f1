"""Printing units (rooflm.units): binary prefixes for cache sizes."""

from __future__ import annotations

import pytest

from rooflm import units


@pytest.mark.parametrize(("nbytes", "text"), [
    (52428800, "50 MiB"),  # H100's L2: 50 × 2^20
    (233472, "228 KiB"),  # Hopper's shared memory per SM: 228 × 1024
    (132644864, "126.5 MiB"),  # B200's L2: 126.5 × 2^20 = 132,644,864
    (268435456, "256 MiB"),  # MI300X's Infinity Cache: 2^28
    (512, "512 B"),
])
def test_cache_sizes_read_in_binary_units(nbytes: int, text: str) -> None:
    assert units.binary_bytes(nbytes) == text


def test_regimes_name_the_caches_in_binary_units() -> None:
    from rooflm import regimes

    small_prefill = next(r for r in regimes("llama-3.1-8b", "h100-sxm").regimes if r.name == "small-batch prefill")
    assert "(l2 50 MiB, smem_per_sm 228 KiB)" in small_prefill.note
