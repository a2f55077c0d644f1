"""Quantization schemes: how weights, activations and the KV cache are stored, and which roof the math uses."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rooflm.errors import InvalidInputError, UnknownNameError
from rooflm.specs.dtypes import COMPUTE_DTYPES, STORAGE_BITS, bytes_per_element
from rooflm.specs.names import closest, normalise_name

SCHEMES_FILE = Path(__file__).resolve().parent.parent / "data" / "quant_schemes.toml"

# Tensors that are not GEMM inputs (residual stream, norms, attention I/O) stay in this dtype.
IO_DTYPE = "bf16"


class QuantScheme(BaseModel):
    """Storage and compute dtypes of one deployment. Weight bytes include the scales."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    weight: str
    activation: str
    compute: str
    kv: str = "bf16"
    scale_group: int | Literal["channel"] = 0
    scale_bits: int = Field(default=0, ge=0)
    k_block: int = Field(default=0, ge=0)  # partial sums rescaled every k_block of K (block-scaled formats)
    source: str = ""

    @model_validator(mode="after")
    def _known(self) -> QuantScheme:
        for field in ("weight", "activation", "kv"):
            if getattr(self, field) not in STORAGE_BITS:
                raise InvalidInputError(
                    f"unknown {field} dtype {getattr(self, field)!r}; known: {', '.join(STORAGE_BITS)}"
                )
        if self.compute not in COMPUTE_DTYPES:
            raise InvalidInputError(f"unknown compute dtype {self.compute!r}; known: {', '.join(COMPUTE_DTYPES)}")
        if self.scale_group == 0 and self.scale_bits:
            raise InvalidInputError("scale_bits is set but scale_group is 0")
        return self

    def weight_bytes_per_element(self, k: int) -> float:
        """Bytes per weight, scales included; ``k`` is the GEMM's reduction size (for per-channel scales)."""
        base = bytes_per_element(self.weight)
        if not self.scale_group:
            return base
        group = k if self.scale_group == "channel" else self.scale_group
        return base + self.scale_bits / 8 / group

    @property
    def act_bytes(self) -> float:
        return bytes_per_element(self.activation)

    @property
    def kv_bytes(self) -> float:
        return bytes_per_element(self.kv)

    def with_kv(self, kv_dtype: str | None) -> QuantScheme:
        if kv_dtype is None or kv_dtype == self.kv:
            return self
        if kv_dtype not in STORAGE_BITS:
            raise InvalidInputError(f"unknown KV-cache dtype {kv_dtype!r}; known: {', '.join(STORAGE_BITS)}", "kv_dtype")
        return self.model_copy(update={"kv": kv_dtype})

    @property
    def label(self) -> str:
        return self.name if self.kv == "bf16" else f"{self.name}+kv-{self.kv}"


@lru_cache(maxsize=1)
def _scheme_table() -> dict[str, dict[str, object]]:
    with SCHEMES_FILE.open("rb") as fh:
        return tomllib.load(fh)


def scheme_names() -> list[str]:
    return list(_scheme_table())


_ALIASES = {"w8a8": "int8", "w8a8-int8": "int8", "w8a8-fp8": "fp8", "nvfp4": "fp4", "w4a16-int4": "w4a16"}


def load_scheme(name: str | QuantScheme, kv_dtype: str | None = None) -> QuantScheme:
    if isinstance(name, QuantScheme):
        return name.with_kv(kv_dtype)
    key = normalise_name(name)
    key = _ALIASES.get(key, key)
    table = _scheme_table()
    if key not in table:
        raise UnknownNameError("quantization scheme", name, closest(key, list(table)), "rooflm analyze --help")
    return QuantScheme(name=key, **table[key]).with_kv(kv_dtype)  # type: ignore[arg-type]
