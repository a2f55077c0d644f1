"""Request bodies of the JSON API. Field names are the CLI's flags (``--prompt-len`` → ``prompt_len``).

The bodies only carry and type the inputs; every check of their meaning (a batch of 0, an unknown
model, a context past the model's limit) is the API's own, so the page, the CLI and Python callers get
the same message. Unknown fields are refused, so a misspelt flag is an error rather than a default.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rooflm.errors import InvalidInputError
from rooflm.specs.hf_config import from_hf_config
from rooflm.specs.model import ModelSpec

IntList = str | list[int]  # "1,2,8", "1:4096:x2" (the CLI's syntax) or a JSON list of integers


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelChoice(_Body):
    model: str | None = Field(default=None, description="Catalog name or Hugging Face id, as --model.",
                              examples=["llama-3.1-8b"])
    config: dict[str, Any] | str | None = Field(
        default=None, description="A config.json's content (an object, or its text) instead of `model`.")

    def model_arg(self) -> str | ModelSpec:
        """The model the API is asked about: a catalog name, or a spec read from the pasted config."""
        if self.config is None:
            return self.model or "llama-3.1-8b"
        if self.model is not None:
            raise InvalidInputError("config: give either model or config, not both")
        cfg = self.config
        if isinstance(cfg, str):
            try:
                cfg = json.loads(cfg)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"config is not valid JSON: {exc}") from None
        if not isinstance(cfg, dict):
            raise InvalidInputError("config must be a JSON object (the content of a config.json)")
        name = str(cfg.get("_name_or_path") or "pasted-config")
        return from_hf_config(cfg, Path(name).name or "pasted-config", "config")


class Options(ModelChoice):
    hardware: str = Field(default="h100-sxm", description="Catalog name or alias, as --hardware.")
    quant: str = Field(default="bf16", description="Quantization scheme, as --quant.")
    kv_dtype: str | None = None
    efficiency: str = "ideal"
    eta_memory: float | None = None
    eta_compute: float | None = None
    kernel_overhead: float | None = Field(default=None, description="Seconds per kernel, as --kernel-overhead.")
    tp: int = 1
    ep: int = 1
    pp: int = 1
    dp: int = 1
    comm_algorithm: str = "ring"
    hot_expert_factor: float = 1.0
    hot_expert_fraction: float = 0.1
    mla_decode: str = "absorbed"
    dequant_ops: float | None = None
    kv_dequant_ops: float | None = None
    act_quant: bool | None = None

    def common(self) -> dict[str, Any]:
        """The deployment keywords every API entry point takes (``rooflm.deploy.Deployment``)."""
        return {"quant": self.quant, "kv_dtype": self.kv_dtype, "efficiency": self.efficiency,
                "eta_memory": self.eta_memory, "eta_compute": self.eta_compute,
                "kernel_overhead_s": self.kernel_overhead, "tp": self.tp, "ep": self.ep, "pp": self.pp, "dp": self.dp,
                "comm_algorithm": self.comm_algorithm, "hot_expert_factor": self.hot_expert_factor,
                "hot_expert_fraction": self.hot_expert_fraction, "mla_decode": self.mla_decode,
                "dequant_ops": self.dequant_ops, "kv_dequant_ops": self.kv_dequant_ops, "act_quant": self.act_quant}


class AnalyzeBody(Options):
    """``rooflm analyze``."""

    phase: str = "decode"
    batch: int = 1
    prompt_len: int = 1024
    context: int | None = None
    gen_len: int = 256
    lm_head_all_tokens: bool = False

    def api_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``rooflm.analyze`` (and of a figure's Query)."""
        return {"model": self.model_arg(), "hardware": self.hardware, "phase": self.phase, "batch": self.batch,
                "prompt_len": self.prompt_len, "context": self.context, "gen_len": self.gen_len,
                "lm_head_all_tokens": self.lm_head_all_tokens, **self.common()}


class SweepBody(Options):
    """``rooflm sweep``: list-valued axes, in the CLI's syntax or as JSON lists."""

    phase: str = "decode"
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

    schemes: str | list[str] = "bf16,fp8,w4a16,w4a8"
    baseline: str | None = None
    phase: str = "decode"
    batch: IntList = "1:4096:x2"
    prompt_len: IntList = "1024"
    context: IntList | None = None
    gen_len: int = 256
    threshold: float = 0.10
    efficiency: str = "calibrated"


class ExplainBody(Options):
    """``rooflm explain``: the inputs of analyze."""

    phase: str = "decode"
    batch: int = 1
    prompt_len: int = 1024
    context: int | None = None
    gen_len: int = 256
