"""The catalog's JSON documents, as `--json` prints them and the web API returns them.

Results (Report, SweepResult, …) build their own documents with ``to_json_dict``; this module holds the
documents of the catalog commands, so the CLI and the web server call one function each and cannot drift.
"""

from __future__ import annotations

from typing import Any

from rooflm.errors import UnsupportedModelError
from rooflm.specs.hardware import HardwareSpec, catalog_group, grouped, hardware_names, load_hardware
from rooflm.specs.hf_config import catalog, families, load_model, model_names
from rooflm.specs.kernels import curves_for
from rooflm.specs.levels import DRAM
from rooflm.specs.model import ModelSpec


def catalog_models() -> list[tuple[str, ModelSpec | str]]:
    """Every catalog model with its spec, or, for an architecture rooflm cannot model yet, the reason."""
    rows: list[tuple[str, ModelSpec | str]] = []
    for name in model_names():
        try:
            rows.append((name, load_model(name)))
        except UnsupportedModelError:
            rows.append((name, f"{catalog()[name].get('architecture', 'unsupported')} (not supported yet)"))
    return rows


def models_document() -> dict[str, Any]:
    """`rooflm models list --json`."""
    return {"models": [{"name": name, "supported": not isinstance(m, str),
                        **({"total_params": m.total_params} if not isinstance(m, str) else {})}
                       for name, m in catalog_models()],
            "families": families()}


def model_document(m: ModelSpec) -> dict[str, Any]:
    """`rooflm models show NAME --json`: sizes, parameter counts and KV bytes per token (bf16 cache)."""
    return {**m.model_dump(), "total_params": m.total_params, "active_params": m.active_params,
            "active_params_without_embedding": m.active_params_without_embedding,
            "non_embedding_params": m.non_embedding_params, "params_by_group": m.params_by_group(),
            "kv_bytes_per_token": m.kv_bytes_per_token(2.0), "published": catalog().get(m.name, {})}


def hardware_document(h: HardwareSpec) -> dict[str, Any]:
    """`rooflm hardware show NAME --json`: every figure with its source, plus the ridge per dtype and the measured
    kernel families of the device's class (data/kernels.toml; {} for a device without one)."""
    return {**h.model_dump(), "peak_flops": {d: f.value for d, f in h.peak_flops.items()},
            "peak_flops_sources": {d: f.source for d, f in h.peak_flops.items()},
            "memory_bandwidth": h.memory_bandwidth.value, "memory_capacity": h.memory_capacity.value,
            "ridge": {d: h.ridge(d) for d in h.supported_dtypes}, "levels": levels_document(h),
            "kernel_families": {f: c.model_dump() for f, c in
                                curves_for(h.efficiency.kernel_class, h.efficiency.kernel_families).items()}}


def levels_document(h: HardwareSpec) -> list[dict[str, Any]]:
    """The memory levels, innermost first, DRAM last (docs/DESIGN.md, "Memory levels")."""
    levels = [{"name": lv.name, "bandwidth": lv.bandwidth.value, "capacity": lv.capacity.value,
               "tile": {"m": lv.tile.m, "n": lv.tile.n} if lv.tile else None,
               "source": {"bandwidth": lv.bandwidth.source, "capacity": lv.capacity.source,
                          **({"tile": lv.tile.source} if lv.tile else {})}} for lv in h.levels]
    return [*levels, {"name": DRAM, "bandwidth": h.memory_bandwidth.value, "capacity": h.memory_capacity.value,
                      "tile": None, "source": {"bandwidth": h.memory_bandwidth.source,
                                               "capacity": h.memory_capacity.source}}]


def hardware_list_document() -> dict[str, Any]:
    """`rooflm hardware list --json`: every device's document (with its "vendor"), listed in the catalog's groups
    (accelerators by vendor, then CPUs); "group" names the group each is listed under."""
    devices = [h for _, members in grouped([load_hardware(n) for n in hardware_names()]) for h in members]
    return {"hardware": [{**hardware_document(h), "group": catalog_group(h)} for h in devices]}
