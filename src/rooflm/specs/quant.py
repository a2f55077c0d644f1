"""Quantization schemes: how weights, activations and the KV cache are stored, and which roof the math uses.

A deployment's scheme may differ per module class (``MODULES``): real checkpoints keep attention, the
router or lm_head in bf16 while their experts are fp8 or mxfp4. ``load_scheme`` resolves a name, a
checkpoint's own scheme (``native``) or a mix (``experts=w4a8,attention=fp8``) into one QuantScheme whose
``modules`` map every class to the plain scheme its GEMMs run in; its own fields are those of the scheme
on the most parameters (what the report's headline dtypes and the ridge refer to).
"""

from __future__ import annotations

import re
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rooflm.errors import InvalidInputError, UnknownNameError, arg, quoted
from rooflm.specs.dtypes import COMPUTE_DTYPES, STORAGE_BITS, bytes_per_element
from rooflm.specs.model import MODULES, CheckpointQuant, ModelSpec
from rooflm.specs.names import closest, normalise_name

SCHEMES_FILE = Path(__file__).resolve().parent.parent / "data" / "quant_schemes.toml"

# Tensors that are not GEMM inputs (residual stream, norms, attention I/O) stay in this dtype.
IO_DTYPE = "bf16"

NATIVE = "native"
# Modules no named scheme quantizes unless a mix names them: the router is a tiny h×E GEMM whose scores pick the
# experts (vLLM builds it unquantized for every MoE family), and the input embedding is a lookup, not a GEMM.
ALWAYS_BF16 = ("router", "embedding")
# The KV cache's scales are listed in the schemes file under this table (not a scheme).
_KV_TABLE = "kv_cache"
# Cached elements per KV scale when the format scales per head and the model is not known.
_DEFAULT_HEAD = 128


class QuantScheme(BaseModel):
    """Storage and compute dtypes of one deployment. Weight bytes include the scales and zero points."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    weight: str
    activation: str
    compute: str
    kv: str = "bf16"
    scale_group: int | Literal["channel"] = 0
    scale_bits: int = Field(default=0, ge=0)
    zero_bits: int = Field(default=0, ge=0)  # a zero point per scale group (asymmetric formats: AWQ, GPTQ sym=false)
    k_block: int = Field(default=0, ge=0)  # partial sums rescaled every k_block of K (block-scaled formats)
    keep: tuple[str, ...] = ()  # module classes this scheme leaves in bf16 when named alone (see MODULES)
    source: str = ""
    # Bytes of KV-cache scale per cached element (set with the KV dtype, from the schemes file's kv_cache table).
    kv_scale_bytes: float = Field(default=0.0, ge=0)
    kv_head_width: int = Field(default=_DEFAULT_HEAD, gt=0)  # cached elements per token per head (scale groups)
    modules: dict[str, QuantScheme] = {}  # module class → the plain scheme its GEMMs run in (resolved deployments)

    @model_validator(mode="after")
    def _known(self) -> QuantScheme:
        for field in ("weight", "activation", "kv"):
            if getattr(self, field) not in STORAGE_BITS:
                raise InvalidInputError(
                    f"unknown {field} dtype {getattr(self, field)!r}; known: {', '.join(STORAGE_BITS)}"
                )
        if self.compute not in COMPUTE_DTYPES:
            raise InvalidInputError(f"unknown compute dtype {self.compute!r}; known: {', '.join(COMPUTE_DTYPES)}")
        if self.scale_group == 0 and (self.scale_bits or self.zero_bits):
            raise InvalidInputError("scale_bits or zero_bits is set but scale_group is 0")
        unknown = [m for m in (*self.keep, *self.modules) if m not in MODULES]
        if unknown:
            raise InvalidInputError(f"unknown module class {unknown[0]!r}; known: {', '.join(MODULES)}", "quant")
        return self

    def weight_bytes_per_element(self, k: int) -> float:
        """Bytes per weight, scales and zero points included; ``k`` is the GEMM's reduction size (per-channel
        scales)."""
        base = bytes_per_element(self.weight)
        if not self.scale_group:
            return base
        group = k if self.scale_group == "channel" else self.scale_group
        return base + (self.scale_bits + self.zero_bits) / 8 / group

    @property
    def act_bytes(self) -> float:
        return bytes_per_element(self.activation)

    @property
    def kv_bytes(self) -> float:
        """Bytes per cached element, its share of the cache's scales included."""
        return bytes_per_element(self.kv) + self.kv_scale_bytes

    @property
    def weight_only(self) -> bool:
        """Narrow weights, activations left in 16 bits (GPTQ/AWQ-style W4A16, W8A16, MXFP4 with bf16 inputs)."""
        return bytes_per_element(self.activation) >= 2 > bytes_per_element(self.weight)

    @property
    def plain(self) -> bool:
        """Unquantized: 16-bit weights and activations without scales (nothing to convert in the kernel)."""
        return self.weight == self.activation == self.compute and bytes_per_element(self.weight) >= 2 \
            and not self.scale_group

    def with_kv(self, kv_dtype: str | None) -> QuantScheme:
        if kv_dtype is None or kv_dtype == self.kv:
            return self
        if kv_dtype not in STORAGE_BITS:
            raise InvalidInputError(f"unknown KV-cache dtype {kv_dtype!r}; known: {', '.join(STORAGE_BITS)}", "kv_dtype")
        update: dict[str, Any] = {"kv": kv_dtype, "kv_scale_bytes": kv_scale_bytes(kv_dtype, self.kv_head_width)}
        if self.modules:
            update["modules"] = {m: s.model_copy(update=update) for m, s in self.modules.items()}
        return self.model_copy(update=update)

    def for_module(self, module: str) -> QuantScheme:
        """The plain scheme the GEMMs of a module class run in."""
        if module in self.modules:
            return self.modules[module]
        if module in ALWAYS_BF16 or module in self.keep:
            return _bf16(self)
        return self

    @property
    def label(self) -> str:
        return self.name if self.kv == "bf16" else f"{self.name}+kv-{self.kv}"

    def module_labels(self) -> dict[str, str]:
        """Module class → scheme name, for every class (the report's per-module summary)."""
        return {m: self.for_module(m).name for m in MODULES}


def kv_scale_bytes(kv_dtype: str, head_width: int = _DEFAULT_HEAD) -> float:
    """Scale (and zero-point) bytes per cached element of a KV cache stored in ``kv_dtype``."""
    entry = _kv_table().get(kv_dtype)
    if not entry or not entry.get("scale_group"):
        return 0.0
    group = head_width if entry["scale_group"] == "head" else int(entry["scale_group"])
    return int(entry["scale_bits"]) / 8 / group


def _bf16(like: QuantScheme) -> QuantScheme:
    return _named("bf16").model_copy(update={"kv": like.kv, "kv_scale_bytes": like.kv_scale_bytes,
                                             "kv_head_width": like.kv_head_width})


@lru_cache(maxsize=1)
def _file() -> dict[str, dict[str, Any]]:
    with SCHEMES_FILE.open("rb") as fh:
        return tomllib.load(fh)


def _scheme_table() -> dict[str, dict[str, Any]]:
    return {k: v for k, v in _file().items() if k != _KV_TABLE}


def _kv_table() -> dict[str, dict[str, Any]]:
    return _file().get(_KV_TABLE, {})


def scheme_names() -> list[str]:
    return list(_scheme_table())


_ALIASES = {"w8a8": "int8", "w8a8-int8": "int8", "w8a8-fp8": "fp8", "nvfp4": "fp4", "w4a16-int4": "w4a16"}
# Short names a mix may use for a module class.
_MODULE_ALIASES = {"attn": "attention", "dense": "mlp", "moe": "experts", "expert": "experts",
                   "shared": "shared_experts", "shared_expert": "shared_experts", "head": "lm_head",
                   "embed": "embedding", "embeddings": "embedding", "gate": "router"}


def _named(name: str) -> QuantScheme:
    key = normalise_name(name)
    key = _ALIASES.get(key, key)
    table = _scheme_table()
    if key not in table:
        raise UnknownNameError("quantization scheme", name, closest(key, [*table, NATIVE]), "rooflm analyze --help")
    return QuantScheme(name=key, **table[key])


def native_scheme(model: ModelSpec) -> QuantScheme:
    """The checkpoint's own scheme: its quantization_config, or bf16 for a model without one."""
    cq = model.quantization
    if cq is None:
        return _named("bf16")
    if cq.weight is None:
        raise InvalidInputError(f"{model.name}'s quantization_config (quant_method {cq.method!r}) is not modelled; "
                                f"give a scheme with {arg('quant')} (e.g. w4a16, fp8)", "quant")
    quantized = _checkpoint_scheme(cq)
    keep = set(cq.bf16_modules)
    modules = {m: _bf16(quantized) if m in keep else quantized for m in MODULES}
    return quantized.model_copy(update={"name": NATIVE, "modules": modules, "keep": tuple(sorted(keep))})


def _checkpoint_scheme(cq: CheckpointQuant) -> QuantScheme:
    """The plain scheme of a checkpoint's quantized GEMMs, named after the scheme it matches (if any)."""
    weight = cq.weight or "bf16"
    compute = cq.activation if cq.activation in ("fp8", "int8", "fp4") else IO_DTYPE
    fields: dict[str, Any] = {"weight": weight, "activation": cq.activation, "compute": compute,
                              "scale_group": cq.scale_group, "scale_bits": cq.scale_bits, "zero_bits": cq.zero_bits,
                              "k_block": cq.k_block}
    for name, entry in _scheme_table().items():
        known = QuantScheme(name=name, **entry)
        if all(getattr(known, k) == v for k, v in fields.items()):
            return known.model_copy(update={"keep": ()})
    desc = f"{cq.method} checkpoint: {weight} weights, {cq.activation} activations"
    return QuantScheme(name=f"{cq.method}-{weight}", description=desc, source="the model's quantization_config",
                       **fields)


def _module(name: str) -> str:
    key = name.strip().lower().replace("-", "_")
    key = _MODULE_ALIASES.get(key, key)
    if key not in MODULES:
        raise InvalidInputError(f"{arg('quant')} names an unknown module class {quoted(name)}; known: "
                                f"{', '.join(MODULES)}", "quant")
    return key


def parse_mix(text: str) -> tuple[str | None, dict[str, str], str | None]:
    """``fp8,experts=w4a8,lm_head=bf16,kv=fp8`` → (base, {module: scheme}, kv dtype). Entries are separated by
    commas or '+' (so that ``scheme+kv-fp8`` reads as before); at most one entry is a plain scheme name."""
    base: str | None = None
    per: dict[str, str] = {}
    kv: str | None = None
    for raw in re.split(r"[,+]", text):
        entry = raw.strip()
        if not entry:
            raise InvalidInputError(f"{arg('quant')} {quoted(text)} has an empty entry", "quant")
        key, eq, value = entry.partition("=")
        if not eq and normalise_name(entry).startswith("kv-"):
            key, eq, value = "kv", "=", entry[3:]
        if not eq:
            if base is not None:
                raise InvalidInputError(f"{arg('quant')} {quoted(text)} names two base schemes ({quoted(base)} and "
                                        f"{quoted(entry)}); give the others as class=scheme", "quant")
            base = entry
        elif key.strip().lower() == "kv":
            kv = value.strip().lower()
        else:
            module = _module(key)
            if module in per:
                raise InvalidInputError(f"{arg('quant')} {quoted(text)} sets {module} twice", "quant")
            per[module] = value.strip()
    return base, per, kv


def check_quant(text: str) -> None:
    """Refuse a malformed --quant or an unknown scheme name in it, without the model (``native`` needs one)."""
    base, per, kv = parse_mix(text)
    for name in (base, *per.values()):
        if name is not None and normalise_name(name) != NATIVE:
            _named(name)
    if kv is not None and kv not in STORAGE_BITS:
        raise InvalidInputError(f"unknown KV-cache dtype {quoted(kv)}; known: {', '.join(STORAGE_BITS)}", "kv_dtype")


def _main_module(modules: dict[str, QuantScheme], model: ModelSpec | None) -> str:
    """The GEMM class with the most parameters (without a model: experts, then the dense MLP, then attention)."""
    if model is None:
        return "experts" if "experts" in modules else "mlp"
    groups = model.params_by_group()
    gemm_classes = ("experts", "mlp", "attention", "shared_experts", "lm_head")
    return max(gemm_classes, key=lambda m: groups.get(m, 0))


def _plain(name: str, model: ModelSpec | None) -> QuantScheme:
    if normalise_name(name) == NATIVE:
        if model is None:
            raise InvalidInputError("the 'native' scheme is the model's own: give a model to resolve it", "quant")
        return native_scheme(model)
    return _named(name)


def load_scheme(name: str | QuantScheme, kv_dtype: str | None = None, model: ModelSpec | None = None) -> QuantScheme:
    """A scheme by name (``w4a16``), the model's own (``native``), or a mix (``fp8,experts=w4a8``); ``model``
    resolves ``native`` and picks the headline scheme of a mix. A mix without a base scheme starts from native."""
    if isinstance(name, QuantScheme):
        scheme = name
    else:
        if not isinstance(name, str) or not name.strip():
            raise InvalidInputError(f"quant must be a scheme name, got {quoted(name)}", "quant")
        base, per, kv_mix = parse_mix(name)
        scheme = _plain(base, model) if not per and base is not None else _mix(base or NATIVE, per, model)
        kv_dtype = kv_dtype or kv_mix
    if model is not None:
        scheme = _for_model(scheme, model)
    return scheme.with_kv(kv_dtype)


def _for_model(scheme: QuantScheme, model: ModelSpec) -> QuantScheme:
    """Every module class resolved, and KV-cache scales sized by the model's heads (and its checkpoint's KV dtype,
    when the scheme is native)."""
    a = model.attention
    head = a.cache_width if a.kind == "mla" else a.head_dim
    update: dict[str, Any] = {"kv_head_width": head}
    if not scheme.modules:
        update["modules"] = {m: scheme.for_module(m) for m in MODULES}
    resolved = scheme.model_copy(update=update)
    kv = resolved.kv
    if scheme.name == NATIVE and model.quantization and model.quantization.kv and kv == "bf16":
        kv = model.quantization.kv
    # Rebuild the scales for this head width (with_kv is a no-op for the same dtype).
    return resolved.model_copy(update={"kv": "bf16", "kv_scale_bytes": 0.0}).with_kv(kv) if kv != "bf16" else resolved


def _mix(base: str, per: dict[str, str], model: ModelSpec | None) -> QuantScheme:
    start = _plain(base, model)
    modules = {m: start.for_module(m) for m in MODULES}
    for module, scheme_name in per.items():
        modules[module] = _plain(scheme_name, model).for_module(module) if normalise_name(scheme_name) == NATIVE \
            else _named(scheme_name)
    main = modules[_main_module(modules, model)]
    parts = [start.name] + [f"{m}={modules[m].name}" for m in MODULES if m in per]
    return main.model_copy(update={"name": "+".join(parts), "modules": modules, "keep": (),
                                   "description": f"per module: {', '.join(f'{m} {s.name}' for m, s in modules.items())}"})
