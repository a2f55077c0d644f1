"""Parallel layouts: how a model is split over devices, and what each device then holds.

N = tp × pp × dp devices. Attention and dense MLPs are split over ``tp`` (heads and the MLP width),
layers over ``pp`` stages, and the batch over ``dp`` replicas in whole sequences: a batch of B puts ⌈B/dp⌉ on the
busiest replica, which sets the step time (batch 1 on dp 8 is one replica running one sequence, not eight
running an eighth). Experts are either split like a dense
MLP over ``tp`` (``ep = 1``) or spread whole over ``ep = tp × dp`` devices, as vLLM and SGLang lay
out expert parallelism: then every device's MoE layer serves the tokens of all replicas.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from rooflm.errors import InvalidInputError, arg
from rooflm.specs.model import ModelSpec


class Parallelism(BaseModel):
    model_config = ConfigDict(frozen=True)

    tp: int = Field(default=1, ge=1)
    ep: int = Field(default=1, ge=1)
    pp: int = Field(default=1, ge=1)
    dp: int = Field(default=1, ge=1)
    algorithm: Literal["auto", "ring", "tree"] = "auto"  # all-reduce: auto is the engine's pick (ops.comm)

    @property
    def devices(self) -> int:
        return self.tp * self.pp * self.dp

    def replica_batch(self, batch: float | np.ndarray) -> np.ndarray:
        """Sequences on the busiest data-parallel replica: whole sequences, ⌈B / dp⌉ (it sets the step time)."""
        return np.ceil(np.asarray(batch, dtype=np.float64) / self.dp)

    def busy_replicas(self, batch: float | np.ndarray) -> np.ndarray:
        """Replicas that hold at least one sequence: min(B, dp)."""
        return np.minimum(np.asarray(batch, dtype=np.float64), self.dp)

    @property
    def stage_devices(self) -> int:
        """Devices of one pipeline stage (the EP group when EP is on)."""
        return self.tp * self.dp

    @property
    def expert_tp(self) -> int:
        """How many devices split one expert's width."""
        return 1 if self.ep > 1 else self.tp

    @property
    def label(self) -> str:
        parts = [f"{k}={v}" for k, v in (("tp", self.tp), ("ep", self.ep), ("pp", self.pp), ("dp", self.dp)) if v > 1]
        return ", ".join(parts) or "one device"

    def kv_heads_per_device(self, model: ModelSpec) -> int:
        """KV heads are split while there are enough, then replicated (TP > KV heads)."""
        return max(1, model.attention.num_kv_heads // self.tp)

    def check(self, model: ModelSpec) -> None:
        """Refuse layouts that do not divide the model, naming the fix."""
        a = model.attention
        if a.num_q_heads % self.tp:
            raise InvalidInputError(f"tp={self.tp} does not divide the {a.num_q_heads} attention heads of {model.name}; "
                                    f"use a tp that divides {a.num_q_heads}", "tp")
        kv = a.num_kv_heads
        if a.kind == "gqa" and kv % self.tp and self.tp % kv:
            raise InvalidInputError(f"tp={self.tp} neither divides nor is a multiple of the {kv} KV heads of "
                                    f"{model.name}", "tp")
        widths = [("MLP width", model.mlp.intermediate_size, self.tp)] if model.mlp else []
        if model.moe:
            widths.append(("expert width", model.moe.expert.intermediate_size, self.expert_tp))
            if model.moe.shared:
                widths.append(("shared-expert width", model.moe.shared.intermediate_size, self.tp))
        for what, size, n in widths:
            if size % n:
                raise InvalidInputError(f"tp={n} does not divide the {what} {size} of {model.name}", "tp")
        if self.ep > 1:
            if not model.moe:
                raise InvalidInputError(f"{model.name} has no experts: expert parallelism needs a MoE model (drop {arg('ep')})",
                                        "ep")
            if self.ep != self.stage_devices:
                raise InvalidInputError(f"ep={self.ep} must equal tp × dp = {self.stage_devices}: experts are spread "
                                        f"over every device of a stage (set {arg('dp')} so that tp × dp = ep)", "ep")
            if model.moe.num_experts % self.ep:
                raise InvalidInputError(f"ep={self.ep} does not divide the {model.moe.num_experts} experts of "
                                        f"{model.name}", "ep")
        if self.pp > model.num_layers:
            raise InvalidInputError(f"pp={self.pp} is more stages than the {model.num_layers} layers of {model.name}",
                                    "pp")
