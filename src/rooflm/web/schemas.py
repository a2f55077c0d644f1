"""Request bodies of the JSON API. Field names are the CLI's flags (``--prompt-len`` → ``prompt_len``).

The bodies only carry and type the inputs; every check of their meaning (a batch of 0, an unknown
model, a context past the model's limit) is the API's own, so the page, the CLI and Python callers get
the same message. Unknown fields are refused, so a misspelt flag is an error rather than a default.
"""

from __future__ import annotations

from typing import Annotated, Any

from annotated_types import Len
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model

from rooflm.core.inputs import DEPLOYMENT_FIELDS, REALISTIC_EFFICIENCY
from rooflm.errors import InvalidInputError, RooflmError
from rooflm.specs.hardware import HardwareSpec, catalog_hardware, hardware_from_text
from rooflm.specs.hf_config import catalog_model, model_from_text
from rooflm.specs.model import ModelSpec

# Bounds on what a request may carry, so that none can make the server build or echo something huge. A name is a
# catalog name or alias (the longest is 40 characters); an axis in the CLI's syntax is a short text.
Name = Annotated[str, StringConstraints(max_length=200)]
AxisText = Annotated[str, StringConstraints(max_length=1000)]
AxisList = Annotated[list[int], Len(min_length=1, max_length=10_000)]
IntList = AxisText | AxisList  # "1,2,8", "1:4096:x2" (the CLI's syntax) or a JSON list of integers
# Every point of a sweep or quant comparison is about 1.1 kB of JSON and a few hundred bytes of arrays per
# operator class: 10,000 points is an 11 MB reply. Larger sweeps are for the CLI, which streams them.
MAX_API_POINTS = 10_000


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelChoice(_Body):
    model: Name | None = Field(default=None, description="Catalog name or Hugging Face id, as --model (a path is not "
                                                         "accepted over HTTP: paste the file's content in `config`).",
                               examples=["llama-3.1-8b"])
    config: dict[str, Any] | str | None = Field(
        default=None, description="A config.json's content (an object, or its text) instead of `model`.")

    def model_arg(self) -> ModelSpec:
        """The model the API is asked about: a catalog model, or one read from the pasted config. Never a file."""
        if self.config is None:
            return catalog_model(self.model or "llama-3.1-8b")
        if self.model is not None:
            raise InvalidInputError("config: give either model or config, not both", field="config")
        name = self.config.get("_name_or_path") if isinstance(self.config, dict) else None
        name = name.rsplit("/", 1)[-1][:100] if isinstance(name, str) and name.strip("/") else "pasted-config"
        try:
            return model_from_text(self.config, name)
        except RooflmError as exc:  # the pasted text is at fault, whatever the reader blamed
            exc.field = "config"
            raise


class _Device(ModelChoice):
    hardware: Name = Field(default="h100-sxm", description="Catalog name or alias, as --hardware (a path is not "
                                                           "accepted over HTTP: paste the file in `hardware_toml`).")
    hardware_toml: Annotated[str, StringConstraints(max_length=1 << 20)] | None = Field(
        default=None, description="A hardware TOML's content (the schema of `rooflm hardware show`'s files) "
                                  "instead of `hardware`.")


def _web_type(value_type: Any) -> Any:
    """A flag's type as a body field's: a text is a bounded ``Name``."""
    if value_type is str:
        return Name
    if value_type == str | None:
        return Name | None
    return value_type


# The deployment fields, built from rooflm.core.inputs.Deployment: named as the CLI flags (kernel_overhead, not
# kernel_overhead_s), with the flags' defaults.
# pydantic types create_model's field definitions as TypeForm, which mypy does not match to fields built at run time.
_Deployment: Any = create_model(  # type: ignore[call-overload]  # Any: a model built at run time
    "_Deployment", __base__=_Device,
    **{f.cli_name: (_web_type(f.value_type), Field(default=f.default, description=f.flag.web_help or f.flag.help))
       for f in DEPLOYMENT_FIELDS if f.flag.web})


# A profile written by `rooflm fit` is ~1 kB per device (five parameters and the fit's errors): 64 kB holds dozens.
MAX_PROFILE_TOML = 1 << 16


class Options(_Deployment):
    profile_toml: Annotated[str, StringConstraints(max_length=MAX_PROFILE_TOML)] | None = Field(
        default=None, description="A profile's content (the TOML `rooflm fit` writes), as --profile: predict with its "
                                  "parameters for this device, in calibrated mode (a path is not accepted over HTTP).")

    def profile_arg(self) -> Any:
        """The profile read from the pasted TOML (None without one). Never a file: a path is just text that is not
        TOML."""
        if self.profile_toml is None:
            return None
        from rooflm.core.profiles import profile_from_text  # at first use: most requests carry no profile

        try:
            return profile_from_text(self.profile_toml, "profile_toml")
        except RooflmError as exc:  # the pasted text is at fault, whatever the reader blamed
            exc.field = "profile_toml"
            raise

    def hardware_arg(self) -> HardwareSpec:
        """The device: a catalog entry, or one read from the pasted TOML. Never a file."""
        if self.hardware_toml is None:
            return catalog_hardware(self.hardware)
        if "hardware" in self.model_fields_set:
            raise InvalidInputError("hardware_toml: give either hardware or hardware_toml, not both",
                                    field="hardware_toml")
        try:
            return hardware_from_text(self.hardware_toml, "hardware_toml")
        except RooflmError as exc:
            exc.field = "hardware_toml"
            raise

    def common(self) -> dict[str, Any]:
        """The deployment keywords every API entry point takes (``rooflm.core.inputs.Deployment``)."""
        out = {f.name: getattr(self, f.cli_name) for f in DEPLOYMENT_FIELDS if f.flag.web}
        profile = self.profile_arg()
        if profile is not None:
            # As the CLI's --profile: a field the client did not send is not given, so the profile's parameters are
            # not overridden by the page's defaults (and an efficiency "ideal" sent can be told from the default).
            out = {k: v for k, v in out.items() if body_field(k) in self.model_fields_set}
            out["profile"] = profile
        draft = out.get("draft")
        if draft is not None and draft.strip().lower() != "mtp":  # a catalog draft model, never a file
            try:
                out["draft"] = catalog_model(draft)
            except RooflmError as exc:
                exc.field = "draft"
                raise
        return out


_BODY_NAME = {f.name: f.cli_name for f in DEPLOYMENT_FIELDS}


def body_field(keyword: str) -> str:
    """An API keyword as a request body names it (``kernel_overhead`` for ``kernel_overhead_s``; most are the same)."""
    return _BODY_NAME.get(keyword, keyword)


class AnalyzeBody(Options):
    """``rooflm analyze``."""

    phase: Name = "decode"
    batch: int = 1
    prompt_len: int = 1024
    context: int | None = None
    gen_len: int = 256
    lm_head_all_tokens: bool = False

    def api_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``rooflm.analyze`` (and of a figure's Query)."""
        return {"model": self.model_arg(), "hardware": self.hardware_arg(), "phase": self.phase, "batch": self.batch,
                "prompt_len": self.prompt_len, "context": self.context, "gen_len": self.gen_len,
                "lm_head_all_tokens": self.lm_head_all_tokens, **self.common()}


class SweepBody(Options):
    """``rooflm sweep``: list-valued axes, in the CLI's syntax or as JSON lists."""

    phase: Name = "decode"
    batch: IntList = "1:1024:x2"
    prompt_len: IntList = "1024"
    context: IntList | None = None
    gen_len: int = 256
    lm_head_all_tokens: bool = False


class CriticalBatchBody(Options):
    """``rooflm critical-batch``."""

    context: int = 1024


class QuantBody(Options):
    """``rooflm quant`` (calibrated mode by default, as there)."""

    schemes: AxisText | Annotated[list[Name], Len(min_length=1, max_length=20)] = "bf16,fp8,w4a16,w4a8"
    baseline: Name | None = None
    phase: Name = "decode"
    batch: IntList = "1:4096:x2"
    prompt_len: IntList = "1024"
    context: IntList | None = None
    gen_len: int = 256
    threshold: float = 0.10
    efficiency: Name = REALISTIC_EFFICIENCY


class ExplainBody(Options):
    """``rooflm explain``: the inputs of analyze (calibrated mode by default, as there)."""

    phase: Name = "decode"
    batch: int = 1
    prompt_len: int = 1024
    context: int | None = None
    gen_len: int = 256
    efficiency: Name = REALISTIC_EFFICIENCY


class RegimesBody(Options):
    """``rooflm regimes``: the regime table's workload sizes, bounded as the CLI's."""

    context: int = 1024
    small_prefill: int = 128
    moe_batch: int = 64


# A simulation's scheduler loop costs ~100–175 µs an iteration on the loaded 2-core machine (a request takes two to
# three, a long prompt one more per chunk) and each output token ~0.15 µs of a decode run's arrays: 5,000 requests,
# 20,000 iterations or 10^7 output tokens per API request is at most ~3 s of a worker (web/serving_limits.py).
MAX_API_SIMULATED_REQUESTS = 5_000
MAX_API_SIMULATED_STEPS = 20_000
MAX_API_SIMULATED_TOKENS = 10_000_000
MAX_API_LOADS = 64


class ServingBody(Options):
    """``rooflm serving``: a traffic's lengths (a number or the CLI's distribution text) and one load list
    (calibrated mode by default, as there)."""

    prompt_len: int | Name = 1024
    gen_len: int | Name = 256
    concurrency: IntList | None = None
    request_rate: AxisText | Annotated[list[float], Len(min_length=1, max_length=MAX_API_LOADS)] | None = None
    method: Name = "simulate"
    view: Name = Field("steady", description="steady (the steady window's means) | benchmark (every request of a run "
                       "started as a benchmark client starts one: all users at once)")
    requests: int | None = None
    seed: int = 0
    max_running: int | None = None
    max_tokens_per_step: int | None = Field(None, description="former name of max_num_batched_tokens, still read")
    kv_blocks: int | None = None
    disaggregate: Name | None = Field(None, description="xP:yD: x prefill and y decode replicas of the layout, the "
                                      "KV cache sent between them (rooflm serving --disaggregate)")
    kv_link: Name | None = Field(None, description="the KV transfer's link: inter_node (default) | intra_node")
    efficiency: Name = REALISTIC_EFFICIENCY
    emit: Name | None = Field(None, description="vllm | sglang | trtllm: add the engine's launch and benchmark "
                              "commands of this configuration under \"launch\" (rooflm serving --emit)")
