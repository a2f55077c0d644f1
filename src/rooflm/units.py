"""Human-readable units for printing only (everything inside is SI)."""

from __future__ import annotations

import math


def _scaled(value: float, unit: str, prefixes: list[tuple[float, str]], digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    for factor, prefix in prefixes:
        if abs(value) >= factor:
            return f"{value / factor:.{digits}g} {prefix}{unit}"
    return f"{value:.{digits}g} {unit}"


_SI = [(1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]


def mode_label(efficiency: str, engine_kernels: str | None = None) -> str:
    """How every title names the mode its numbers were priced in: "calibrated mode", or with an engine's kernels
    "calibrated mode (vllm 0.24.0 kernels)" (the engine part as the report carries it, ``engine_kernels``)."""
    return f"{efficiency} mode" if not engine_kernels else f"{efficiency} mode ({engine_kernels})"


def seconds(s: float) -> str:
    if s is None or not math.isfinite(s):
        return "–"
    for factor, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if abs(s) >= factor:
            return f"{s / factor:.4g} {unit}"
    return f"{s / 1e-9:.4g} ns"


def nbytes(b: float) -> str:
    return _scaled(b, "B", _SI)


def flops(f: float) -> str:
    return _scaled(f, "FLOP", _SI)


def rate(x: float, unit: str) -> str:
    return _scaled(x, unit, _SI)


_BINARY = [(2.0**40, "Ti"), (2.0**30, "Gi"), (2.0**20, "Mi"), (2.0**10, "Ki")]


def binary_bytes(b: float) -> str:
    """Binary units, for sizes quoted in powers of two (caches: an H100's "50 MB" L2 is 50 MiB)."""
    return _scaled(b, "B", _BINARY, digits=4)


def kib(b: float) -> str:
    """Binary units, for sizes people quote in KiB (KV cache per token)."""
    return f"{b / 1024:.4g} KiB"
