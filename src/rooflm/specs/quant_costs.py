"""The in-kernel cost of quantized formats (dequantization, activation quantization), from data.

Resolved per scheme and efficiency mode: zero in the ideal mode, the data file's figures in the
calibrated mode, and any of them overridable by the user.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from rooflm.specs.dtypes import bytes_per_element
from rooflm.specs.quant import IO_DTYPE, QuantScheme
from rooflm.specs.workload import check_number

COSTS_FILE = Path(__file__).resolve().parent.parent / "data" / "quant_costs.toml"
# The data's conversions cost 0.5-4 vector instructions per element; a thousand would make a bf16 GEMM on an
# H100 (fp32 vector rate 33 T/s vs 989 TFLOP/s) spend ~15x longer converting its weights than multiplying
# them at any batch, which no kernel does. Beyond it a value is a mistake (and 1e308 overflows to inf).
MAX_OPS_PER_ELEMENT = 1000.0


@lru_cache(maxsize=1)
def _table() -> dict[str, Any]:
    with COSTS_FILE.open("rb") as fh:
        return tomllib.load(fh)


def _compute_family(dtype: str) -> str:
    return "bf16" if dtype == "fp16" else dtype


@dataclass(frozen=True)
class QuantCosts:
    """Vector instructions per element for each kind of conversion a scheme needs (0 = none)."""

    weight_ops_per_element: float = 0.0
    weight_tile_m: int = 64
    activation_quant: bool = False
    activation_ops_per_element: float = 0.0
    kv_ops_per_element: float = 0.0
    rescale_ops_per_output: float = 0.0  # per output element per K block (block-scaled formats)
    k_block: int = 0
    sources: tuple[str, ...] = ()

    @property
    def any(self) -> bool:
        return bool(self.weight_ops_per_element or self.activation_quant or self.kv_ops_per_element
                    or self.rescale_ops_per_output)


NO_COSTS = QuantCosts()


def weight_conversion(scheme: QuantScheme) -> str | None:
    """The main-loop conversion a scheme's GEMMs need, e.g. 'int4->bf16'; None when the tensor cores
    take the stored format directly (bf16 on bf16, fp8 on fp8, NVFP4 on fp4)."""
    if scheme.weight == scheme.compute or bytes_per_element(scheme.weight) >= bytes_per_element(scheme.compute):
        return None
    return f"{scheme.weight}->{_compute_family(scheme.compute)}"


def costs_for(scheme: QuantScheme, mode: str, *, dequant_ops: float | None = None, kv_dequant_ops: float | None = None,
              act_quant: bool | None = None) -> QuantCosts:
    """What the scheme costs in kernels under ``mode``; explicit arguments override the data."""
    if dequant_ops is not None:
        dequant_ops = check_number(dequant_ops, "dequant_ops", 0, MAX_OPS_PER_ELEMENT)
    if kv_dequant_ops is not None:
        kv_dequant_ops = check_number(kv_dequant_ops, "kv_dequant_ops", 0, MAX_OPS_PER_ELEMENT)
    table = _table()
    calibrated = mode == "calibrated"
    sources: list[str] = []
    weight_ops, tile_m = 0.0, 64
    conversion = weight_conversion(scheme)
    entry = table["weight_dequant"].get(conversion) if conversion else None
    if entry:
        tile_m = int(entry["tile_m"])
        if calibrated:
            weight_ops = float(entry["ops_per_element"])
            sources.append(f"weight {conversion}: {entry['source']}")
    if dequant_ops is not None:
        weight_ops = dequant_ops
    needs_act_quant = bytes_per_element(scheme.activation) < bytes_per_element(IO_DTYPE)
    act = needs_act_quant and (calibrated if act_quant is None else act_quant)
    if act:
        sources.append(f"activation quantization: {table['activation_quant']['source']}")
    kv_entry = table["kv_dequant"].get(scheme.kv)
    kv_ops = float(kv_entry["ops_per_element"]) if kv_entry and calibrated else 0.0
    if kv_entry and calibrated:
        sources.append(f"KV {scheme.kv}: {kv_entry['source']}")
    if kv_dequant_ops is not None:
        kv_ops = kv_dequant_ops
    rescale = 0.0
    if scheme.k_block and calibrated:
        rescale = float(table["block_rescale"]["ops_per_output"])
        sources.append(f"block rescale: {table['block_rescale']['source']}")
    return QuantCosts(weight_ops, tile_m, act, float(table["activation_quant"]["ops_per_element"]) if act else 0.0,
                      kv_ops, rescale, scheme.k_block, tuple(sources))
