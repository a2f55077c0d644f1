"""Hardware description: peaks, memory, caches, links and efficiency factors.

Every figure in a catalog file carries its source: a figure is written either as a plain
number (allowed in a user's own file, reported as "user-supplied") or as an inline table
``{ value = ..., source = "...", note = "..." }``. All values are SI: FLOP/s, bytes/s,
bytes, seconds. See ``data/hardware/h100-sxm.toml`` for a complete example.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rooflm.errors import InvalidInputError, UnknownNameError, blames
from rooflm.ops.cost import OpKind
from rooflm.specs.dtypes import COMPUTE_DTYPES
from rooflm.specs.names import closest, normalise_name

HARDWARE_DIR = Path(__file__).resolve().parent.parent / "data" / "hardware"
OP_KINDS: tuple[str, ...] = get_args(OpKind)


class Figure(BaseModel):
    """One number with the place it comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float = Field(ge=0)
    source: str = "user-supplied"
    note: str = ""

    @model_validator(mode="before")
    @classmethod
    def _from_plain_number(cls, data: object) -> object:
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return {"value": float(data)}
        return data


class Link(BaseModel):
    """A device-to-device link; ``bandwidth`` is per device, per direction."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    bandwidth: Figure
    latency: Figure
    devices_per_domain: int = Field(default=1, ge=1)


class Interconnect(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    intra_node: Link | None = None
    inter_node: Link | None = None


class GemmCurve(BaseModel):
    """Achievable fraction of a dtype's peak for a GEMM with ``rows`` input rows (M), at measured M values;
    interpolated in log M between them and held flat beyond the ends."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rows: list[float]
    value: list[float]
    source: str = "user-supplied"
    note: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> GemmCurve:
        if not self.rows or len(self.rows) != len(self.value):
            raise ValueError("rows and value need the same, non-zero length")
        if self.rows[0] < 1 or any(b <= a for a, b in zip(self.rows, self.rows[1:], strict=False)):
            raise ValueError("rows must be ≥ 1 and strictly increasing")
        if any(not 0 < v <= 1 for v in self.value):
            raise ValueError("each value must be in (0, 1]")
        return self


class Efficiency(BaseModel):
    """Achievable fractions of the datasheet roofs, used by the ``calibrated`` mode. ``compute_curve`` (per dtype,
    vs GEMM rows), ``kernel_overhead_by_kind`` and ``memory_by_kind`` (per operator kind) are optional refinements
    from measurements."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    memory: Figure
    compute: dict[str, Figure]
    kernel_overhead: Figure
    compute_curve: dict[str, GemmCurve] = {}
    kernel_overhead_by_kind: dict[str, Figure] = {}
    memory_by_kind: dict[str, Figure] = {}

    @field_validator("compute_curve")
    @classmethod
    def _curve_dtypes(cls, v: dict[str, GemmCurve]) -> dict[str, GemmCurve]:
        _check_dtypes(v)  # type: ignore[arg-type]
        return v

    @field_validator("kernel_overhead_by_kind", "memory_by_kind")
    @classmethod
    def _known_kinds(cls, v: dict[str, Figure]) -> dict[str, Figure]:
        unknown = sorted(set(v) - set(OP_KINDS))
        if unknown:
            raise ValueError(f"unknown operator kind(s) {unknown}; known: {list(OP_KINDS)}")
        return v

    @field_validator("memory_by_kind")
    @classmethod
    def _fractions(cls, v: dict[str, Figure]) -> dict[str, Figure]:
        if any(not 0 < f.value <= 1 for f in v.values()):
            raise ValueError("each memory fraction must be in (0, 1]")
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


def _check_dtypes(table: dict[str, Figure]) -> None:
    unknown = sorted(set(table) - set(COMPUTE_DTYPES) - {"default"})
    if unknown:
        raise ValueError(f"unknown dtype(s) {unknown}; known: {sorted(COMPUTE_DTYPES)}")


class HardwareSpec(BaseModel):
    """One device (one GPU, one TPU chip, one CPU socket)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    display_name: str
    vendor: str
    kind: Literal["gpu", "tpu", "cpu"]
    aliases: list[str] = []
    peak_flops: dict[str, Figure]
    memory_bandwidth: Figure
    memory_capacity: Figure
    caches: dict[str, Figure] = {}
    interconnect: Interconnect = Interconnect()
    kernel_launch_overhead: Figure
    efficiency: Efficiency

    @field_validator("peak_flops")
    @classmethod
    def _peaks_known(cls, v: dict[str, Figure]) -> dict[str, Figure]:
        _check_dtypes(v)
        if not v:
            raise ValueError("peak_flops needs at least one dtype")
        return v

    @field_validator("memory_bandwidth", "memory_capacity")
    @classmethod
    def _positive(cls, v: Figure) -> Figure:
        if v.value <= 0:
            raise ValueError("must be positive")
        return v

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


def read_hardware_file(path: Path) -> HardwareSpec:
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(f"hardware file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read hardware file {path}: {exc.strerror}") from None
    try:
        return HardwareSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInputError(
            f"hardware file {path}: {where}: {first['msg']} (see data/hardware/h100-sxm.toml for the schema)"
        ) from None


_CACHE: dict[str, HardwareSpec] = {}


@blames("hardware")
def load_hardware(name_or_path: str | Path | HardwareSpec) -> HardwareSpec:
    """A catalog name or alias (any case), or a path to a TOML file of the same schema."""
    if isinstance(name_or_path, HardwareSpec):
        return name_or_path
    text = str(name_or_path)
    path = Path(text)
    if text.endswith(".toml") or path.is_file():
        if not path.is_file():
            raise InvalidInputError(f"hardware file {path} does not exist")
        return read_hardware_file(path)
    if text in _CACHE:
        return _CACHE[text]
    aliases = _alias_table()
    name = aliases.get(normalise_name(text))
    if name is None:
        hint = closest(text, list(aliases), aliases)
        raise UnknownNameError("hardware", text, hint, "rooflm hardware list")
    spec = read_hardware_file(_catalog_files()[name])
    _CACHE[text] = spec
    return spec
