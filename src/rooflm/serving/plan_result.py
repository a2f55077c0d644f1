"""`rooflm plan`'s result: the frontier's points and the best one, each with its configuration and the
`rooflm serving` command line that reproduces it; the JSON document (docs/DESIGN.md, ``plan --json``)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rooflm.core.inputs import DEPLOYMENT_FIELDS, REALISTIC_EFFICIENCY, Deployment
from rooflm.serving.disagg import DEFAULT_LINK, KvLink, Split
from rooflm.serving.traffic import Lengths, Moments

# The serving figures each searched configuration gets (rooflm.serving.ServingPoint's fields, steady-state means).
METRICS: tuple[str, ...] = ("ttft_s", "tpot_s", "e2e_latency_s", "output_tokens_per_s", "output_tokens_per_s_per_gpu",
                            "output_tokens_per_s_per_user", "batch", "decode_batch", "kv_use", "requests_per_s")
# What a user feels end to end: output tokens over the whole wait, first token included (beside interactivity,
# output_tokens_per_s_per_user = 1 / TPOT, which leaves the wait for the first token out).
E2E_PER_USER = "e2e_output_tokens_per_s_per_user"
# The figures a point checked by simulation carries (rooflm.serving.ServingPoint's, simulated means), beside
# "meets_targets".
SIMULATED: tuple[str, ...] = ("ttft_s", "tpot_s", "e2e_latency_s", "output_tokens_per_s_per_gpu",
                              "output_tokens_per_s_per_user", "requests")
# Written by the command line itself (searched, or the traffic's), not from the deployment keywords.
_OWN_FLAGS = ("tp", "ep", "pp", "dp", "quant", "kv_dtype", "spec_tokens", "max_num_batched_tokens")


def e2e_per_user(gen_len: float, ttft_s: np.ndarray, tpot_s: np.ndarray) -> np.ndarray:
    """End-to-end output tokens/s one user sees: gen_len / (TTFT + gen_len × TPOT), ``gen_len`` the mean output
    length (NaN where a figure is)."""
    return gen_len / (ttft_s + gen_len * tpot_s)


@dataclass(frozen=True)
class Traffic:
    prompt: Lengths
    gen: Lengths
    seed: int
    moments: Moments
    build_args: dict[str, object]  # steps.build's traffic keywords
    need_tokens: int  # the longest request: a KV cache that cannot hold it does not fit


@dataclass(frozen=True)
class PlanPoint:
    config: dict[str, int | str | None]  # tp, ep, pp, dp, quant, kv_dtype, spec_tokens, disaggregate (None:
    # aggregated, or the split "xP:yD" of replicas of tp × pp devices, dp 1), max_running, max_num_batched_tokens,
    # concurrency
    metrics: dict[str, float | None]  # METRICS and E2E_PER_USER
    bound: str
    kv_capacity_tokens: int  # per replica (per decode replica when disaggregated)
    command: str
    # The best few by the steady-state model are simulated: SIMULATED's figures and "meets_targets"; None otherwise.
    simulated: dict[str, object] | None = None

    def to_json_dict(self) -> dict[str, object]:
        return {"config": dict(self.config), **self.metrics, "bound": self.bound,
                "kv_capacity_tokens": self.kv_capacity_tokens, "command": self.command,
                "simulated": None if self.simulated is None else dict(self.simulated)}


@dataclass(frozen=True)
class PlanResult:
    model: str
    hardware: str
    gpus: int
    traffic: Traffic
    slo: tuple[float | None, float | None]  # mean TTFT, mean TPOT targets (s)
    searched: int
    fits: int  # configurations whose KV cache holds the longest request
    pareto: list[PlanPoint]  # by increasing tokens/s per user
    best: PlanPoint | None
    notes: list[str] = field(default_factory=list)
    engine_kernels: str | None = None  # the engine's part of the mode's name (rooflm.core.inputs.engine_label)
    # Every configuration that fits, METRICS name → values (for figures and checks; not in the JSON document).
    fitting: dict[str, np.ndarray] = field(default_factory=dict)
    efficiency: str = "calibrated"  # the mode every configuration was priced in
    ttft_slo_default: bool = False  # slo[0] is the default TTFT target (none was given)
    engine_policy: str = ""  # the engine's serving policy every configuration used ("vllm 0.11.2", or the generic one)

    def to_json_dict(self) -> dict[str, object]:
        return {"model": self.model, "hardware": self.hardware, "efficiency": self.efficiency,
                "engine_kernels": self.engine_kernels, "engine_policy": self.engine_policy, "gpus": self.gpus,
                "prompt_len": self.traffic.prompt.label(), "gen_len": self.traffic.gen.label(),
                "ttft_slo_s": self.slo[0], "ttft_slo_default": self.ttft_slo_default, "tpot_slo_s": self.slo[1],
                "searched": self.searched, "fits": self.fits,
                "pareto": [p.to_json_dict() for p in self.pareto],
                "best": None if self.best is None else self.best.to_json_dict(), "notes": list(self.notes)}


def _name(x: object) -> str:
    """What a command line names a model, device, draft or profile by: the text given, a path, or a loaded spec's
    name (a loaded spec outside the catalog must be named by its file instead)."""
    if isinstance(x, (str, Path)):
        return str(x)
    path = getattr(x, "path", None)
    return str(path) if path is not None else str(getattr(x, "name", x))


def _value(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(_value(i) for i in v)
    return repr(v) if isinstance(v, float) else _name(v)


def deployment_flags(d: Deployment) -> list[str]:
    """The CLI flags of deployment keywords (those the plan does not write itself), as `rooflm serving` reads them."""
    out: list[str] = []
    for f in DEPLOYMENT_FIELDS:
        v = d.get(f.name)
        if f.name in _OWN_FLAGS or v is None or (f.name == "efficiency" and v == REALISTIC_EFFICIENCY):
            continue  # serving's own default mode is not spelled out
        pair = next((s for s in f.flag.decls if "/" in s), None)
        if pair is not None:  # --x/--no-x
            out.append(pair.split("/")[0 if v else 1])
        else:
            out += [f"--{f.cli_name.replace('_', '-')}", _value(v)]
    return out


def command_line(model: object, hardware: object, traffic: Traffic, d: Deployment, max_running: int,
                 max_tokens_per_step: int, concurrency: int, split: Split | None = None,
                 link: KvLink | None = None) -> str:
    """The `rooflm serving` run of one configuration (steady-state model: the figures the plan searched); a
    disaggregated one names its split, and its link unless it is the default."""
    parts = ["rooflm", "serving", "--model", _name(model), "--hardware", _name(hardware),
             "--prompt-len", traffic.prompt.label(), "--gen-len", traffic.gen.label(),
             "--concurrency", str(concurrency), "--method", "steady"]
    if traffic.seed:
        parts += ["--seed", str(traffic.seed)]
    for name in ("tp", "ep", "pp", "dp"):
        if int(d.get(name, 1)) > 1:  # type: ignore[call-overload]
            parts += [f"--{name}", str(d.get(name))]
    parts += ["--quant", str(d.get("quant")), "--kv-dtype", str(d.get("kv_dtype"))]
    if d.get("spec_tokens"):
        parts += ["--spec-tokens", str(d.get("spec_tokens"))]
    if split is not None:
        parts += ["--disaggregate", split.label]
        if link is not None and link.kind != DEFAULT_LINK:
            parts += ["--kv-link", link.kind]
    parts += ["--max-running", str(max_running), "--max-num-batched-tokens", str(max_tokens_per_step),
              *deployment_flags(d)]
    return shlex.join(parts)
