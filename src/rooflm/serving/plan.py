"""`rooflm plan`: the Pareto frontier of output tokens/s per GPU against tokens/s per user over layouts, schemes, KV
dtypes, speculative decoding, aggregated or disaggregated serving, engine limits and loads, and the best
configuration within latency targets.

Each step table (a layout, scheme, KV dtype and drafted-token count: plan_space.Table) is priced once by
rooflm.serving.steps.build at the largest engine limits searched, and every engine limit and load is read off it
at once by the steady-state model (steady.closed_loop, one array of points): the KV capacity of each token budget
is rooflm.analyze's, as serve_traffic sizes it. A `rooflm serving --method steady` run of a configuration prices
its own grids, whose points differ from the shared table's only at its own limits: the two agree within 0.02% in
the cases measured (tests/serving/test_plan.py allows 0.5%). Step tables run on a process pool when there are
enough of them.

Disaggregated serving (rooflm.serving.disagg): R replicas of gpus / R devices split xP:yD (plan_space.splits_of).
The replica's step model is the aggregated layout's of dp = R (a step table is per replica: the same figures as a
dp = 1 layout's, while the experts are not spread over the replicas, ep = 1; a replica with ep = tp has its own
table), and every split × engine limit × load is read off it in one call of the two-queue steady model
(disagg_steady.steady_points, a split per point); prefill and decode replicas have the same engine limits, as
`rooflm serving --disaggregate` gives them.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast

import numpy as np
from typing_extensions import Unpack

from rooflm.core.inputs import Deployment, check_engine, deployment_mode, policy_of, realistic
from rooflm.errors import InvalidInputError, arg
from rooflm.kinds import Progress
from rooflm.serving import pareto, steady
from rooflm.serving import plan_space as space
from rooflm.serving.api import serve_traffic
from rooflm.serving.disagg import DEFAULT_LINK, KvLink, Pools, Split, pick_link
from rooflm.serving.disagg_steady import steady_points
from rooflm.serving.plan_result import (
    E2E_PER_USER,
    METRICS,
    SIMULATED,
    PlanPoint,
    PlanResult,
    Traffic,
    command_line,
    e2e_per_user,
)
from rooflm.serving.steps import Engine, build, kv_room, policy_label, resolve_model
from rooflm.serving.traffic import Lengths, Moments, check_against_model, moments, parse_lengths
from rooflm.specs.hardware import HardwareSpec, load_hardware
from rooflm.specs.model import ModelSpec
from rooflm.specs.parallel import Parallelism

# Step tables per worker before a process pool pays for its start (~0.1 s per worker, forked).
TABLES_PER_WORKER = 4
# The best configurations (by the steady-state model) simulated request by request before one is called best; each
# simulation is ~0.2–2 s (2,000 requests, or 4 × its users), so a plan pays a few seconds for it at most.
VERIFY = 3
MAX_VERIFY = 20


@dataclass(frozen=True)
class Search:
    """What every step table's evaluation shares (sent once to each worker)."""

    model: ModelSpec
    hardware: HardwareSpec
    build_args: dict[str, object]  # steps.build's traffic keywords, at the largest engine limits searched
    moments: Moments
    running: np.ndarray  # per engine limit
    budget: np.ndarray
    loads: np.ndarray
    need_tokens: int  # the KV cache must hold the longest request
    link: KvLink | None = None  # the KV transfer's, when disaggregated serving is searched


# Ignored below (misc): the searched lists quant, kv_dtype and spec_tokens stand in for the deployment keywords of those
# names (which check_not_searched refuses in **deployment); PEP 692 forbids the overlap, and Python allows it.
def plan(model: str | Path | ModelSpec = "llama-3.1-8b", hardware: str | Path | HardwareSpec = "h100-sxm", *,  # type: ignore[misc]
         gpus: int = 8, prompt_len: str | int | Lengths = 1024, gen_len: str | int | Lengths = 256,
         quant: str | Sequence[str] | None = None, kv_dtype: str | Sequence[str] | None = None,
         spec_tokens: int | Sequence[int] | None = None, max_running: int | Sequence[int] | None = None,
         max_tokens_per_step: int | Sequence[int] | None = None, concurrency: int | Sequence[int] | None = None,
         disaggregate: str | Sequence[str | Split] | None = "auto", kv_link: str | None = None,
         ttft_slo: float | None = None, tpot_slo: float | None = None, seed: int = 0, workers: int | None = None,
         verify: int = VERIFY, progress: Progress | None = None, **deployment: Unpack[Deployment]) -> PlanResult:
    """Search the deployments of ``gpus`` devices for a traffic (closed loops of ``concurrency`` users, prompt and
    output lengths as serve_traffic takes them) and return the Pareto frontier (tokens/s per GPU against per user)
    and the best configuration whose mean TTFT and TPOT meet ``ttft_slo`` / ``tpot_slo`` (seconds).

    Searched: every tp × pp × dp = gpus the model divides into (and ep = tp × dp for MoE models); ``quant`` (default
    bf16, fp8, w4a16, w4a8, fp4: those the device runs), ``kv_dtype`` (bf16, fp8), ``spec_tokens`` (drafted tokens
    per step; 0 = off, e.g. [0, 3] with ``acceptance=``), ``max_running`` (32 … 512), ``max_tokens_per_step`` (2048,
    8192; not below max_running) and ``concurrency`` (1 … 2048 users). ``disaggregate``: "auto" (default; also
    None) searches, for each layout of gpus / R devices with R ≥ 2 replicas, disaggregated serving on every split
    xP:yD with x + y = R (past 8 replicas: x and y of 1, 2, 4, …), "off" none, or a list of splits ("1P:3D,2P:2D");
    ``kv_link`` the KV transfer's link (serve_traffic's). Other deployment keywords (efficiency, acceptance, draft,
    profile, …; calibrated mode unless asked) apply to every configuration. ``workers``: processes (default: by the work);
    ``progress(done, total)`` is called as the step tables of the search are priced.

    ``verify``: the steady-state model prices every configuration; the ``verify`` best that meet the targets by it
    (most tokens/s per GPU first) are then simulated request by request (serve_traffic's simulation, its steady view),
    each point carrying its simulated figures, and "best" is the first whose simulated means meet the targets too
    (the model's TTFT runs short under load; a best that only the model says meets a target is no plan). 0: none."""
    keywords = realistic(cast(Deployment, deployment))  # calibrated unless asked: what an engine reaches
    if isinstance(verify, bool) or not isinstance(verify, int) or not 0 <= verify <= MAX_VERIFY:
        raise InvalidInputError(f"{arg('verify')} must be an integer between 0 and {MAX_VERIFY}, got {verify!r}",
                                field="verify")
    gpus = space.check_gpus(gpus)
    ttft_default = ttft_slo is None
    ttft_slo, tpot_slo = space.check_slo(ttft_slo, "ttft_slo"), space.check_slo(tpot_slo, "tpot_slo")
    if ttft_default:
        ttft_slo = space.DEFAULT_TTFT_SLO_S
    space.check_not_searched(keywords)
    ks = space.integers(spec_tokens, space.DEFAULT_SPEC_TOKENS, "spec_tokens", 0, 64)
    if max(ks) == 0 and ("acceptance" in keywords or "draft" in keywords):
        raise InvalidInputError(f"acceptance and draft need speculative decoding: add {arg('spec_tokens')} values ≥ 1 (e.g. "
                                "0,3 searches it off and on)", field="spec_tokens")
    running = space.integers(max_running, space.DEFAULT_MAX_RUNNING, "max_running", 1, 10**6)
    budgets = space.integers(max_tokens_per_step, space.DEFAULT_MAX_TOKENS, "max_num_batched_tokens", 1, 10**6)
    loads = space.integers(concurrency, space.DEFAULT_CONCURRENCY, "concurrency", 1, 10**6)
    limits = [(r, t) for r in running for t in budgets if t >= r]  # serving refuses a budget below max_running
    if not limits:
        raise InvalidInputError(f"every {arg('max_num_batched_tokens')} ({', '.join(map(str, budgets))}) is below every "
                                f"{arg('max_running')} ({', '.join(map(str, running))}): each running request needs a row",
                                field="max_num_batched_tokens")
    spec, hw = resolve_model(model), load_hardware(hardware)
    traffic = _traffic(spec, prompt_len, gen_len, seed)
    quants = space.names(quant, space.DEFAULT_QUANTS, "quant")
    kvs = space.names(kv_dtype, space.DEFAULT_KV_DTYPES, "kv_dtype")
    link, split_layouts, notes = _disaggregated(spec, hw, gpus, disaggregate, kv_link)
    found, left_out = space.tables(spec, hw, gpus, quants, kvs, ks, keywords, split_layouts)
    notes += left_out
    searched = space.check_size(found, len(limits), len(loads))
    r_arr = np.array([r for r, _ in limits], dtype=np.float64)
    t_arr = np.array([t for _, t in limits], dtype=np.float64)
    search = Search(spec, hw, traffic.build_args | {"max_running": max(running), "max_tokens_per_step": max(budgets)},
                    traffic.moments, r_arr, t_arr, np.array(loads, dtype=np.float64), traffic.need_tokens, link)
    columns = _run(search, [(t.deployment(keywords) if t.aggregated else t.replica(keywords), t.splits,
                             t.aggregated) for t in found], workers, progress)
    if ttft_default:
        notes.append(f"no --ttft-slo given: the best meets the default TTFT target of {space.DEFAULT_TTFT_SLO_S:g} s "
                     "(a first token later than that is a queue, not a service); --ttft-slo sets another, inf none")
    return _result(spec, hw, model, hardware, gpus, traffic, found, limits, loads, columns, searched,
                   (ttft_slo, tpot_slo), notes, keywords, link, ttft_default, verify)


def _disaggregated(spec: ModelSpec, hw: HardwareSpec, gpus: int,
                   disaggregate: str | Sequence[str | Split] | None,
                   kv_link: str | None) -> tuple[KvLink | None, list[tuple[Parallelism, tuple[Split, ...]]], list[str]]:
    """The KV link and the replica layouts with their splits. Left to "auto", a device without the link (or a
    count of GPUs of one replica only) searches aggregated serving alone, with a note where a link is missing."""
    choice = space.parse_disaggregate(disaggregate)
    if choice == "off":
        if kv_link is not None:
            raise InvalidInputError(f"{arg('kv_link')} is the link of disaggregated serving's KV transfer; "
                                    f"{arg('disaggregate')} off "
                                    "searches none", field="kv_link")
        return None, [], []
    found = space.disaggregated_layouts(spec, gpus, choice)
    try:
        link = pick_link(hw, kv_link or DEFAULT_LINK, gpus)
    except InvalidInputError as e:
        if choice != "auto" or kv_link is not None or not found:
            raise
        return None, [], [f"disaggregated serving not searched: {e}"]
    return link, found, []


def _traffic(spec: ModelSpec, prompt_len: str | int | Lengths, gen_len: str | int | Lengths, seed: int) -> Traffic:
    """The lengths checked as serve_traffic checks them, their moments and the grids' extent."""
    prompt = prompt_len if isinstance(prompt_len, Lengths) else parse_lengths(prompt_len, "prompt_len")
    gen = gen_len if isinstance(gen_len, Lengths) else parse_lengths(gen_len, "gen_len")
    limit = spec.max_position_embeddings
    check_against_model(prompt, gen, limit, seed)
    if gen.upper < 2:
        raise InvalidInputError(f"{arg('gen_len')} must allow 2 or more output tokens: tokens/s per user is 1 / TPOT, the "
                                "time between output tokens", field="gen_len")
    m = moments(prompt, gen, seed, cap=limit - 1)
    args: dict[str, object] = {
        "max_prompt": min(prompt.upper, limit - 1), "max_context": min(prompt.upper + gen.upper, limit),
        "exact_prompts": tuple(v for v in (prompt.fixed,) if v is not None), "kv_blocks": 1,
        "mean_context": m.mean_prompt + m.mean_gen}
    return Traffic(prompt, gen, seed, m, args, min(prompt.upper + gen.upper, limit))


def kv_tokens(search: Search, deployment: Deployment, budget: int) -> int:
    """The KV cache of one replica at a token budget, as steps.build sizes it (0 when nothing is left)."""
    d: Deployment = {**deployment, "max_num_batched_tokens": budget}
    return kv_room(search.model, search.hardware, d, int(deployment.get("dp", 1)),
                   float(search.build_args["mean_context"])).tokens  # type: ignore[arg-type]


def evaluate(search: Search, deployment: Deployment, splits: tuple[Split, ...] = (),
             aggregated: bool = True) -> dict[str, np.ndarray]:
    """Every engine limit × load of one step table: aggregated serving (unless ``aggregated`` is False), then each
    of ``splits`` of its dp replicas: METRICS columns of shape (blocks, limits, loads), NaN (bound "") where the KV
    cache cannot hold the longest request."""
    kv = {int(t): kv_tokens(search, deployment, int(t)) for t in np.unique(search.budget)}
    kv_arr = np.array([kv[int(t)] for t in search.budget], dtype=np.float64)
    fits = kv_arr >= search.need_tokens
    blocks, n = int(aggregated) + len(splits), len(search.loads)
    shape = (blocks, len(search.running), n)
    out = {name: np.full(shape, np.nan) for name in METRICS}
    out["bound"] = np.full(shape, "", dtype=object)
    out["kv_capacity_tokens"] = np.broadcast_to(kv_arr[None, :, None], shape).copy()
    if not fits.any():
        return out  # the step table is not priced: nothing fits
    steps = build(search.model, search.hardware, **search.build_args, **deployment)  # type: ignore[arg-type]
    k = int(fits.sum())
    points = []
    if aggregated:
        engine = Engine(*(np.repeat(v[fits], n) for v in (search.running, search.budget, kv_arr)))  # type: ignore[arg-type]
        points += steady.closed_loop(replace(steps, engine=engine), search.moments, np.tile(search.loads, k))
    if splits:
        assert search.link is not None
        engine = Engine(*(np.tile(np.repeat(v[fits], n), len(splits))  # type: ignore[arg-type]
                          for v in (search.running, search.budget, kv_arr)))
        replica = replace(steps, engine=engine, dp=1, devices=steps.devices // steps.dp)
        points += steady_points(Pools(replica, splits[0], search.link), search.moments, "concurrency",
                                np.tile(search.loads, k * len(splits)), [s for s in splits for _ in range(k * n)])
    rows = np.flatnonzero(fits)
    for idx, p in enumerate(points):
        b, rest = divmod(idx, k * n)
        i, j = rows[rest // n], rest % n
        for name in METRICS:
            v = getattr(p, name)
            out[name][b, i, j] = np.nan if v is None else v
        out["bound"][b, i, j] = p.bound
    return out


def _workers(workers: int | None, jobs: int) -> int:
    if workers is not None:
        if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 256:
            raise InvalidInputError(f"workers must be an integer between 1 and 256, got {workers!r}", field="workers")
        return min(workers, jobs)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, jobs // TABLES_PER_WORKER))


_SHARED: list[Search] = []  # a worker's search, set once by _start


def _start(search: Search) -> None:
    _SHARED[:] = [search]


def _evaluate_shared(table: tuple[Deployment, tuple[Split, ...], bool]) -> dict[str, np.ndarray]:
    return evaluate(_SHARED[0], *table)


def _run(search: Search, tables: list[tuple[Deployment, tuple[Split, ...], bool]],
         workers: int | None, progress: Progress | None = None) -> list[dict[str, np.ndarray]]:
    n = _workers(workers, len(tables))
    report = progress or (lambda done, total: None)
    out: list[dict[str, np.ndarray]] = []
    report(0, len(tables))
    if n <= 1:
        for t in tables:
            out.append(evaluate(search, *t))
            report(len(out), len(tables))
        return out
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context(method), initializer=_start,
                             initargs=(search,)) as pool:
        for columns in pool.map(_evaluate_shared, tables, chunksize=max(1, len(tables) // (4 * n))):
            out.append(columns)  # in order: the callback runs here, in the caller's process
            report(len(out), len(tables))
    return out


def _result(spec: ModelSpec, hw: HardwareSpec, model: object, hardware: object, gpus: int, traffic: Traffic,
            found: list[space.Table], limits: list[tuple[int, int]], loads: list[int],
            columns: list[dict[str, np.ndarray]], searched: int, slo: tuple[float | None, float | None],
            notes: list[str], extra: Deployment, link: KvLink | None, ttft_default: bool = False,
            verify: int = 0) -> PlanResult:
    flat = {name: np.concatenate([c[name].ravel() for c in columns]) for name in columns[0]}
    flat[E2E_PER_USER] = e2e_per_user(traffic.moments.mean_gen, flat["ttft_s"], flat["tpot_s"])
    x, y = flat["output_tokens_per_s_per_user"], flat["output_tokens_per_s_per_gpu"]
    fits = np.isfinite(flat["output_tokens_per_s"])
    front = pareto.frontier(x, y)
    allowed = pareto.meets(flat["ttft_s"], flat["tpot_s"], *slo)
    top = pareto.best(x, y, allowed)
    per_block = len(limits) * len(loads)
    blocks = [(t, split) for t in found for split in t.blocks]

    def configuration(i: int) -> tuple[dict[str, int | str | None], Deployment, Split | None]:
        (t, split), rest = blocks[i // per_block], i % per_block
        (r, b), users = limits[rest // len(loads)], loads[rest % len(loads)]
        d = t.deployment(extra) if split is None else t.replica(extra)
        config: dict[str, int | str | None] = {"tp": t.tp, "ep": t.ep, "pp": t.pp, "dp": d["dp"], "quant": t.quant,
                  "kv_dtype": t.kv_dtype, "spec_tokens": t.spec_tokens, "disaggregate": None if split is None else split.label,
                  "max_running": r, "max_num_batched_tokens": b, "concurrency": users}
        return config, d, split

    def point(i: int, simulated: dict[str, object] | None = None) -> PlanPoint:
        config, d, split = configuration(i)
        metrics = {name: (None if not np.isfinite(flat[name][i]) else float(flat[name][i]))
                   for name in (*METRICS, E2E_PER_USER)}
        return PlanPoint(config, metrics, str(flat["bound"][i]), int(flat["kv_capacity_tokens"][i]),
                         command_line(model, hardware, traffic, d, int(config["max_running"]),  # type: ignore[arg-type]
                                      int(config["max_num_batched_tokens"]), int(config["concurrency"]),  # type: ignore[arg-type]
                                      split, link), simulated)

    def simulate(i: int) -> dict[str, object]:
        config, d, split = configuration(i)
        run = serve_traffic(spec, hw, prompt_len=traffic.prompt, gen_len=traffic.gen,
                            concurrency=[int(config["concurrency"])],  # type: ignore[arg-type]
                            method="simulate", seed=traffic.seed, max_running=int(config["max_running"]),  # type: ignore[arg-type]
                            max_tokens_per_step=int(config["max_num_batched_tokens"]),  # type: ignore[arg-type]
                            disaggregate=split, kv_link=None if split is None or link is None else link.kind,
                            **d).points[0]
        figures: dict[str, object] = {name: getattr(run, name) for name in SIMULATED}
        figures["meets_targets"] = bool(pareto.meets(np.array([np.nan if run.ttft_s is None else run.ttft_s]),
                                                     np.array([np.nan if run.tpot_s is None else run.tpot_s]),
                                                     *slo)[0])
        return figures

    checked: dict[int, dict[str, object]] = {}
    if top is not None and verify > 0:
        order = pareto.ranked(x, y, allowed)[:verify]
        checked = {i: simulate(i) for i in order}
        passing = [i for i in order if checked[i]["meets_targets"]]
        if passing:
            if passing[0] != top:
                notes.append(f"the steady-state model's best misses the targets when simulated; best is the next of "
                             f"the {len(order)} simulated that meets them")
            top = passing[0]
        else:
            notes.append(f"none of the {len(order)} best by the steady-state model meets the targets when simulated "
                         "(its TTFT runs short under load); best is the model's, with its simulated figures")

    if not fits.any():
        notes.append(f"no configuration fits: the KV cache left after the weights holds no {traffic.need_tokens:,}-"
                     "token request at any layout and scheme; use more --gpus or smaller --quant")
    elif top is None:
        notes.append("no searched configuration meets the targets (" + _targets(*slo) + "); best is null")
    efficiency, engine_kernels = deployment_mode(hw, extra)
    return PlanResult(model=spec.name, hardware=hw.name, gpus=gpus, traffic=traffic, slo=slo, searched=searched,
                      efficiency=efficiency, engine_kernels=engine_kernels,
                      fits=int(fits.sum()), pareto=[point(int(i), checked.get(int(i))) for i in front],
                      best=None if top is None else point(top, checked.get(top)), notes=notes,
                      fitting={name: flat[name][fits] for name in (*METRICS, E2E_PER_USER)},
                      ttft_slo_default=ttft_default,
                      engine_policy=policy_label(policy_of(check_engine(extra.get("engine"), extra))))


def _targets(ttft: float | None, tpot: float | None) -> str:
    parts = [f"{name} ≤ {v * 1e3:g} ms" for name, v in (("TTFT", ttft), ("TPOT", tpot)) if v is not None]
    return " and ".join(parts) or "none"
