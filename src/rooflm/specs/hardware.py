"""Hardware description: peaks, memory, caches, links and efficiency factors.

Every figure in a catalog file carries its source: a figure is written either as a plain
number (allowed in a user's own file, reported as "user-supplied") or as an inline table
``{ value = ..., source = "...", note = "..." }``. All values are SI: FLOP/s, bytes/s,
bytes, seconds. See ``data/hardware/h100-sxm.toml`` for a complete example.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from rooflm.errors import InvalidInputError, UnknownNameError, blames
from rooflm.kinds import OP_KINDS
from rooflm.specs.dtypes import COMPUTE_DTYPES
from rooflm.specs.figures import (
    CACHE_SIZE,
    FRACTION,
    LINK_BANDWIDTH,
    MAX_DEVICES_PER_DOMAIN,
    MEMORY_BANDWIDTH,
    MEMORY_CAPACITY,
    MEMORY_RESERVE,
    OVERHEAD,
    PEAK_FLOPS,
    Bounds,
    Figure,
    GemmCurve,
)
from rooflm.specs.files import MAX_SPEC_BYTES, path_test, read_limited
from rooflm.specs.kernels import KernelCurve, check_families, check_kernel_class
from rooflm.specs.levels import MemoryLevel, check_levels
from rooflm.specs.names import closest, normalise_name

HARDWARE_DIR = Path(__file__).resolve().parent.parent / "data" / "hardware"


class AllReduceAlgorithm(BaseModel):
    """One all-reduce implementation an engine can pick on a link (a one-shot custom kernel, NVLS multicast, NCCL),
    fitted to measured latencies as T = latency + 2·S·(n−1)/n / (bus_efficiency · link bandwidth) for a message of
    S bytes over n devices: the ring's bytes per device at a fraction of the link, so that no algorithm beats the
    ideal (bandwidth-bound) time. ``max_devices`` and ``max_bytes`` bound where the engine uses it."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str
    latency: Figure
    bus_efficiency: Figure
    max_devices: int = Field(default=MAX_DEVICES_PER_DOMAIN, ge=2, le=MAX_DEVICES_PER_DOMAIN)
    max_bytes: float = Field(default=1e15, gt=0, le=1e15)

    @field_validator("latency", "bus_efficiency")
    @classmethod
    def _sane(cls, v: Figure, info: ValidationInfo) -> Figure:
        (OVERHEAD if info.field_name == "latency" else FRACTION).check(str(info.field_name), v.value)
        return v


class Link(BaseModel):
    """A device-to-device link; ``bandwidth`` is per device, per direction. ``all_reduce`` lists the measured
    algorithms engines pick from on it (calibrated mode's ``auto``); without any, NCCL's ring or tree."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str
    bandwidth: Figure
    latency: Figure
    devices_per_domain: int = Field(default=1, ge=1, le=MAX_DEVICES_PER_DOMAIN)
    all_reduce: list[AllReduceAlgorithm] = []

    @field_validator("bandwidth", "latency")
    @classmethod
    def _sane(cls, v: Figure, info: ValidationInfo) -> Figure:
        (LINK_BANDWIDTH if info.field_name == "bandwidth" else OVERHEAD).check(str(info.field_name), v.value)
        return v


class Interconnect(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    intra_node: Link | None = None
    inter_node: Link | None = None


class Efficiency(BaseModel):
    """Achievable fractions of the datasheet roofs, used by the ``calibrated`` mode. ``compute_curve`` (per dtype,
    vs GEMM rows), ``kernel_overhead_by_kind`` and ``memory_by_kind`` (per operator kind) are optional refinements
    from measurements. ``kernel_class`` names the device class whose kernel-family curves (data/kernels.toml)
    time the GEMMs, ``kernel_families`` the device's own measured ones; without either the flat fractions apply."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    memory: Figure
    compute: dict[str, Figure]
    kernel_overhead: Figure
    compute_curve: dict[str, GemmCurve] = {}
    kernel_overhead_by_kind: dict[str, Figure] = {}
    memory_by_kind: dict[str, Figure] = {}
    kernel_class: str | None = None
    # This device's own kernel families, measured by `rooflm measure` (CPU: PyTorch's bf16, int8 and int4 weight
    # GEMMs over M); they outrank the class's families of the same name.
    kernel_families: dict[str, KernelCurve] = {}

    @field_validator("kernel_families")
    @classmethod
    def _known_families(cls, v: dict[str, KernelCurve]) -> dict[str, KernelCurve]:
        return check_families(v)

    @field_validator("kernel_class")
    @classmethod
    def _known_class(cls, v: str | None) -> str | None:
        return check_kernel_class(v)

    @field_validator("compute_curve")
    @classmethod
    def _curve_dtypes(cls, v: dict[str, GemmCurve]) -> dict[str, GemmCurve]:
        _check_dtypes(v)
        return v

    @field_validator("kernel_overhead_by_kind", "memory_by_kind")
    @classmethod
    def _known_kinds(cls, v: dict[str, Figure]) -> dict[str, Figure]:
        unknown = sorted(set(v) - set(OP_KINDS))
        if unknown:
            raise ValueError(f"unknown operator kind(s) {unknown}; known: {list(OP_KINDS)}")
        return v

    @field_validator("memory", "kernel_overhead", "compute", "memory_by_kind", "kernel_overhead_by_kind")
    @classmethod
    def _sane(cls, v: Figure | dict[str, Figure], info: ValidationInfo) -> Figure | dict[str, Figure]:
        _check_figures(f"efficiency.{info.field_name}", v, OVERHEAD if "overhead" in str(info.field_name) else FRACTION)
        return v

    @field_validator("compute")
    @classmethod
    def _known_dtypes(cls, v: dict[str, Figure]) -> dict[str, Figure]:
        _check_dtypes(v)
        if "default" not in v:
            raise ValueError("efficiency.compute needs a 'default' entry")
        return v

    def compute_fraction(self, dtype: str) -> float:
        return (self.compute.get(dtype) or self.compute["default"]).value


def _check_figures(key: str, v: Figure | dict[str, Figure], bounds: Bounds) -> None:
    """One figure, or each figure of a table (named ``key.entry`` in the message), within ``bounds``."""
    for name, fig in (v.items() if isinstance(v, dict) else [("", v)]):
        bounds.check(f"{key}.{name}" if name else key, fig.value)


def _check_dtypes(table: Mapping[str, object]) -> None:
    unknown = sorted(set(table) - set(COMPUTE_DTYPES) - {"default"})
    if unknown:
        raise ValueError(f"unknown dtype(s) {unknown}; known: {sorted(COMPUTE_DTYPES)}")


class Runtime(BaseModel):
    """What a serving engine adds on this device, for the calibrated mode: the launch cost of a kernel replayed from
    a CUDA graph (engines capture decode steps), a per-step CPU/scheduler cost, and the memory the runtime holds
    beside weights, KV cache and activations (CUDA context, NCCL and library workspaces, graph pools)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    graph_kernel_overhead: Figure
    step_overhead: Figure
    memory_reserve: Figure

    @field_validator("graph_kernel_overhead", "step_overhead", "memory_reserve")
    @classmethod
    def _sane(cls, v: Figure, info: ValidationInfo) -> Figure:
        (MEMORY_RESERVE if info.field_name == "memory_reserve" else OVERHEAD).check(str(info.field_name), v.value)
        return v


class HardwareSpec(BaseModel):
    """One device (one GPU, one TPU chip, one CPU socket)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str
    display_name: str
    vendor: str
    kind: Literal["gpu", "tpu", "npu", "cpu"]  # npu: a matrix-engine accelerator sold as neither (Ascend, Gaudi)
    aliases: list[str] = []
    peak_flops: dict[str, Figure]
    memory_bandwidth: Figure
    memory_capacity: Figure
    caches: dict[str, Figure] = {}
    levels: list[MemoryLevel] = []  # on-chip levels inside DRAM, innermost first (none: DRAM alone, as before)
    interconnect: Interconnect = Interconnect()
    kernel_launch_overhead: Figure
    efficiency: Efficiency
    runtime: Runtime | None = None  # engine costs for the calibrated mode; none: no graphs, no step cost, no reserve

    @field_validator("peak_flops")
    @classmethod
    def _peaks_known(cls, v: dict[str, Figure]) -> dict[str, Figure]:
        _check_dtypes(v)
        if not v:
            raise ValueError("peak_flops needs at least one dtype")
        return v

    @field_validator("peak_flops")
    @classmethod
    def _peaks_sane(cls, v: dict[str, Figure]) -> dict[str, Figure]:
        _check_figures("peak_flops", {d: f for d, f in v.items() if f.value != 0}, PEAK_FLOPS)  # 0: no such roof
        return v

    @field_validator("memory_bandwidth", "memory_capacity", "caches", "kernel_launch_overhead")
    @classmethod
    def _sane(cls, v: Figure | dict[str, Figure], info: ValidationInfo) -> Figure | dict[str, Figure]:
        bounds = {"memory_bandwidth": MEMORY_BANDWIDTH, "memory_capacity": MEMORY_CAPACITY, "caches": CACHE_SIZE,
                  "kernel_launch_overhead": OVERHEAD}[str(info.field_name)]
        _check_figures(str(info.field_name), v, bounds)
        return v

    @model_validator(mode="after")
    def _levels_ordered(self) -> HardwareSpec:
        check_levels(self.levels, self.memory_bandwidth.value, self.memory_capacity.value)
        return self

    def peak(self, dtype: str) -> float:
        """Dense peak FLOP/s for math in ``dtype``; raises if the device has no such roof."""
        fig = self.peak_flops.get(dtype)
        if fig is None or fig.value <= 0:
            raise InvalidInputError(
                f"{self.name} has no {dtype} compute roof (it has: {', '.join(self.supported_dtypes)}); "
                "pick a quantization scheme whose math runs in one of those",
                "quant",
            )
        return fig.value

    @property
    def supported_dtypes(self) -> list[str]:
        return [d for d, f in self.peak_flops.items() if f.value > 0]

    def ridge(self, dtype: str) -> float:
        """Ridge point in FLOP/byte: peak / bandwidth."""
        return self.peak(dtype) / self.memory_bandwidth.value


def _catalog_files() -> dict[str, Path]:
    return {p.stem: p for p in sorted(HARDWARE_DIR.glob("*.toml"))}


def _alias_table() -> dict[str, str]:
    """Normalised alias → catalog name, read from each file's ``aliases``."""
    table: dict[str, str] = {}
    for name, path in _catalog_files().items():
        table[normalise_name(name)] = name
        with path.open("rb") as fh:
            for alias in tomllib.load(fh).get("aliases", []):
                table[normalise_name(alias)] = name
    return table


def hardware_names() -> list[str]:
    return list(_catalog_files())


# How the catalog is listed: accelerators by vendor, the vendors people deploy most first, then any other vendor
# alphabetically, then every CPU in one group whoever makes it (a CPU is picked against CPUs, not against its vendor's
# GPUs).
VENDOR_ORDER: tuple[str, ...] = ("NVIDIA", "AMD", "Google", "Intel", "Huawei")
CPU_GROUP = "CPUs"


def catalog_group(h: HardwareSpec) -> str:
    """The group a device is listed under: its vendor, or "CPUs" for any CPU."""
    return CPU_GROUP if h.kind == "cpu" else h.vendor


def grouped(devices: list[HardwareSpec]) -> list[tuple[str, list[HardwareSpec]]]:
    """``devices`` in their catalog groups, in listing order; the devices keep their order within a group."""
    groups: dict[str, list[HardwareSpec]] = {}
    for h in devices:
        groups.setdefault(catalog_group(h), []).append(h)

    def rank(group: str) -> tuple[int, str]:
        if group == CPU_GROUP:
            return (len(VENDOR_ORDER) + 1, group)
        return (VENDOR_ORDER.index(group), group) if group in VENDOR_ORDER else (len(VENDOR_ORDER), group.lower())

    return [(g, groups[g]) for g in sorted(groups, key=rank)]


# A hardware file is a couple of kilobytes; more than this is a mistake (or an attack on a server).
MAX_HARDWARE_BYTES = MAX_SPEC_BYTES


def hardware_from_text(text: str | bytes, where: str) -> HardwareSpec:
    """A device from a hardware TOML's content. Messages name ``where`` and the key at fault, never the content."""
    if len(text) > MAX_HARDWARE_BYTES:
        raise InvalidInputError(f"{where} is {len(text):,} bytes; a hardware file is at most {MAX_HARDWARE_BYTES:,}")
    try:
        raw = tomllib.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except UnicodeDecodeError:
        raise InvalidInputError(f"{where} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(f"{where} is not valid TOML ({exc.args[0] if exc.args else 'parse error'})") from None
    except RecursionError:
        raise InvalidInputError(f"{where} nests too deeply to be a hardware file") from None
    try:
        return HardwareSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise InvalidInputError(
            f"{where}: {key}: {first['msg']} (see data/hardware/h100-sxm.toml for the schema)") from None
    except RecursionError:
        raise InvalidInputError(f"{where} nests too deeply to be a hardware file") from None


def read_hardware_file(path: Path, where: str | None = None) -> HardwareSpec:
    where = where or f"hardware file {path}"
    return hardware_from_text(read_limited(path, MAX_HARDWARE_BYTES, where, "a hardware file"), where)


def _is_file(text: str) -> bool:
    return path_test(text, Path.is_file)


_CACHE: dict[str, HardwareSpec] = {}


@blames("hardware")
def load_hardware(name_or_path: str | Path | HardwareSpec) -> HardwareSpec:
    """A catalog name or alias (any case), or a path to a TOML file of the same schema."""
    if isinstance(name_or_path, HardwareSpec):
        return name_or_path
    text = str(name_or_path)
    if text.endswith(".toml") or _is_file(text):
        if not _is_file(text):
            raise InvalidInputError(f"hardware file {text} does not exist")
        return read_hardware_file(Path(text))
    if text.strip() and path_test(text, Path.exists) and normalise_name(text) not in _alias_table():
        return read_hardware_file(Path(text))  # a folder, a pipe, a device: refused as not a regular file
    return catalog_hardware(text)


@blames("hardware")
def catalog_hardware(name: str) -> HardwareSpec:
    """A catalog device by name or alias, never a file: all a server may open on a request's behalf."""
    if name in _CACHE:
        return _CACHE[name]
    aliases = _alias_table()
    key = aliases.get(normalise_name(name))
    if key is None:
        raise UnknownNameError("hardware", name, closest(name, list(aliases), aliases), "rooflm hardware list")
    spec = read_hardware_file(_catalog_files()[key], where=f"the catalog's {key}.toml")
    _CACHE[name] = spec
    return spec
