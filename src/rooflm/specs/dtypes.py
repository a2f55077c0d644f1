"""Number formats: storage width and the compute roof each runs on.

These are definitions of the formats (IEEE / OCP / vendor), not measurements, so they live here
rather than in a data file.
"""

from __future__ import annotations

from rooflm.errors import UnknownNameError

# Math dtypes a device may list a peak for.
COMPUTE_DTYPES: tuple[str, ...] = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4", "fp4")

# Storage widths in bits. tf32 is a math mode that stores as fp32.
STORAGE_BITS: dict[str, int] = {
    "fp32": 32,
    "tf32": 32,
    "bf16": 16,
    "fp16": 16,
    "fp8": 8,
    "int8": 8,
    "int4": 4,
    "fp4": 4,
}


def bytes_per_element(dtype: str) -> float:
    try:
        return STORAGE_BITS[dtype] / 8
    except KeyError:
        raise UnknownNameError("dtype", dtype, [], "rooflm analyze --help") from None
