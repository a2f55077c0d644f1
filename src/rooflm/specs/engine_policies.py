"""The serving policy of each engine (data/engine_policies.toml): how it sizes its KV cache and its default
limits — token budget per step, running requests, the largest batch it replays as a CUDA graph.

Three memory rules (the engines' own, each sourced in the data file):

    total          KV = f × M − weights − activations              vLLM: gpu_memory_utilization, f = 0.9
    sglang         the same, f = round((M − R) / M, 3) by default    SGLang: mem_fraction_static
    after_weights  KV = f × (M − weights − activations)              TensorRT-LLM: free_gpu_memory_fraction, 0.9

M is the device's memory less the runtime's reserve. ``engine_share`` gives the share of M an engine may fill
(``f`` for the first two rules, 1 for after_weights) and ``free_share`` the share of what is left once the
weights and activations are in (1, or ``f`` for after_weights): KV = free_share × (engine_share × M − weights −
activations).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from rooflm.specs.engine_kernels import ENGINES

POLICIES_FILE = Path(__file__).resolve().parent.parent / "data" / "engine_policies.toml"
GIB = 2**30
MIB = 2**20
RULES = ("total", "sglang", "after_weights")


@dataclass(frozen=True)
class EnginePolicy:
    """One engine's serving defaults, as the data file states them."""

    engine: str
    version: str
    memory_rule: str
    memory_fraction: float
    large_memory_gib: float
    limits: dict[str, int | dict[str, int]]  # max_tokens_per_step, max_running, cuda_graph_max_batch
    scheduler: str
    sources: tuple[str, ...]
    front_end_request_s: float = 0.0  # the server's cost per request (HTTP, tokenization, first-token streaming)
    front_end_token_s: float = 0.0  # and per output token (detokenization, streaming)

    @property
    def label(self) -> str:
        return f"{self.engine} {self.version}"

    def limit(self, name: str, capacity_bytes: float, tp: int = 1) -> int:
        """A device-dependent default: the large device's figure at ``large_memory_gib`` or more."""
        v = self.limits[name]
        if isinstance(v, int):
            return v
        if capacity_bytes >= self.large_memory_gib * GIB:
            return v["large"]
        return v.get("small_tp4", v["small"]) if tp >= 4 else v["small"]

    def memory_share(self, capacity_bytes: float, chunk: int, tp: int, pp: int) -> float:
        """The default fraction the engine's memory flag holds on this device (SGLang's depends on it)."""
        if self.memory_rule != "sglang":
            return self.memory_fraction
        mib = capacity_bytes / MIB
        graphs = self.limit("cuda_graph_max_batch", capacity_bytes, tp)
        reserved = 512 + max(chunk, 2048) * 1.5 + graphs * 2 + tp * pp / 8 * 1024
        if mib > 60 * 1024:
            reserved = max(reserved, 10 * 1024)
        return round((mib - reserved) / mib, 3)


def engine_share(rule: str, fraction: float) -> float:
    """The share of the device's memory the engine may fill (weights, activations and KV cache together)."""
    return 1.0 if rule == "after_weights" else fraction


def free_share(rule: str, fraction: float) -> float:
    """The share of the memory left after the weights and activations that becomes KV cache."""
    return fraction if rule == "after_weights" else 1.0


@cache
def _table() -> dict[str, dict[str, object]]:
    with POLICIES_FILE.open("rb") as fh:
        return tomllib.load(fh)


@cache
def engine_policy(name: str) -> EnginePolicy:
    """The policy of ``name`` (one of ENGINES; a version suffix is the caller's to strip)."""
    d = _table()[name]
    rule = str(d["memory_rule"])
    if rule not in RULES:  # the data file's own check: a typo here would silently change every KV cache
        raise ValueError(f"engine_policies.toml [{name}]: memory_rule {rule!r} is not one of {RULES}")
    limits = {k: d[k] for k in ("max_tokens_per_step", "max_running", "cuda_graph_max_batch")}
    return EnginePolicy(name, str(d["version_checked"]), rule, float(d["memory_fraction"]),  # type: ignore[arg-type]
                        float(d["large_memory_gib"]), limits, str(d["scheduler"]),  # type: ignore[arg-type]
                        tuple(d["sources"]), float(d["front_end_request_s"]),  # type: ignore[arg-type]
                        float(d["front_end_token_s"]))  # type: ignore[arg-type]


def all_policies() -> list[EnginePolicy]:
    return [engine_policy(e) for e in ENGINES]
