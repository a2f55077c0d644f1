"""The data of the Pareto figure (`rooflm plot pareto`): every configuration ``rooflm.plan`` searched, its frontier
and its best point within the latency targets, unchanged (nothing is recomputed here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rooflm.errors import InvalidInputError, arg
from rooflm.plot.data import Query
from rooflm.serving.plan_result import PlanPoint, PlanResult
from rooflm.serving.plan_space import SEARCHED
from rooflm.units import mode_label


@dataclass(frozen=True)
class ParetoData:
    title: str
    per_user: list[float]  # every configuration that fits: output tokens/s per user
    per_gpu: list[float]  # … and per GPU
    meets: list[bool]  # … whether it meets the targets
    frontier_per_user: list[float]  # the frontier, by increasing tokens/s per user
    frontier_per_gpu: list[float]
    frontier_labels: list[str]  # its configurations, short
    best: tuple[float, float, str] | None  # (per user, per GPU, label) of the best within the targets
    ttft_slo_s: float | None
    tpot_slo_s: float | None
    searched: int
    fits: int


def label(p: PlanPoint) -> str:
    """A configuration in a few words: layout (and split), scheme, KV dtype, drafting, limits and users."""
    c = p.config
    split = c.get("disaggregate")  # a disaggregated point: the split of replicas of tp × pp devices
    keys = ("tp", "ep", "pp", "dp") if split is None else ("tp", "ep", "pp")
    layout = " ".join(f"{k}{c[k]}" for k in keys if k in ("tp", "dp") or int(c[k] or 1) > 1)
    layout += "" if split is None else f" {split}"
    spec = f" k{c['spec_tokens']}" if c["spec_tokens"] else ""
    return (f"{layout} {c['quant']}/kv {c['kv_dtype']}{spec}, ≤{c['max_running']} run, {c['max_num_batched_tokens']} tok/step, "
            f"{c['concurrency']} users")


def from_result(r: PlanResult) -> ParetoData:
    """A plan's result as the figure draws it: the lists are the result's fields, in its order."""
    f = r.fitting
    ttft, tpot = r.slo
    meets = np.ones(len(f.get("ttft_s", [])), dtype=bool)
    for values, slo in ((f.get("ttft_s"), ttft), (f.get("tpot_s"), tpot)):
        if slo is not None and values is not None:
            meets &= np.nan_to_num(values, nan=np.inf) <= slo
    front = [(p.metrics["output_tokens_per_s_per_user"], p.metrics["output_tokens_per_s_per_gpu"]) for p in r.pareto]
    best = None if r.best is None else (float(r.best.metrics["output_tokens_per_s_per_user"] or 0),
                                         float(r.best.metrics["output_tokens_per_s_per_gpu"] or 0), label(r.best))
    title = (f"{r.model} on {r.gpus} × {r.hardware} · {mode_label(r.efficiency)} · prompt {r.traffic.prompt.label()}, output "
             f"{r.traffic.gen.label()} tokens · Pareto frontier of {r.searched:,} configurations ({r.fits:,} fit)")
    return ParetoData(title, [float(v) for v in f.get("output_tokens_per_s_per_user", [])],
                      [float(v) for v in f.get("output_tokens_per_s_per_gpu", [])], [bool(v) for v in meets],
                      [float(x or 0) for x, _ in front], [float(y or 0) for _, y in front],
                      [label(p) for p in r.pareto], best, ttft, tpot, r.searched, r.fits)


def pareto_data(query: Query, *, quants: Sequence[str] | None = None, **search: Any) -> ParetoData:
    """``rooflm.plan`` for the query's model, device, prompt and output lengths and deployment keywords; the
    query's KV dtype (one or "bf16,fp8"), drafted tokens and token budget become the values searched, and a fixed
    layout is refused (the plan searches them for ``gpus``). ``search``: plan's other keywords (gpus, ttft_slo,
    tpot_slo, concurrency, max_running, workers, …)."""
    from rooflm.serving.plan import plan

    d = dict(query.deployment)
    for name in ("tp", "ep", "pp", "dp"):
        if name in d:
            raise InvalidInputError(f"{arg(name)}: `plot pareto` searches every layout of {arg('gpus')} devices; drop "
                                    f"{arg(name)}",
                                    field=name)
    kv = d.pop("kv_dtype", None)
    k = d.pop("spec_tokens", None)
    budget = d.pop("max_num_batched_tokens", None)
    d = {n: v for n, v in d.items() if n not in SEARCHED}
    result = plan(query.model, query.hardware, prompt_len=query.prompt_len, gen_len=query.gen_len, quant=quants,
                  kv_dtype=kv, spec_tokens=None if k is None else [k], max_tokens_per_step=budget, **search, **d)
    return from_result(result)
