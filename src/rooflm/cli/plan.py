"""`rooflm plan`: the Pareto frontier of tokens/s per GPU against per user over layouts, schemes, KV dtypes,
speculative decoding, aggregated or disaggregated serving, engine limits and loads, and the best configuration
within latency targets."""

from __future__ import annotations

from typing import Annotated, Any, cast

import numpy as np
import typer
from rich.table import Table

from rooflm import units
from rooflm.analyses.axes import parse_int_list
from rooflm.cli.options import Hardware, Json, Model, OldBudgets, lower_case, with_deployment
from rooflm.cli.output import droppable, out, print_json, progress_bar, show, user_errors, with_wide
from rooflm.cli.serving import Emit, LengthText, ms_cell, num_cell, print_launch
from rooflm.core.inputs import REALISTIC_EFFICIENCY, Deployment
from rooflm.serving import launch as engine_launch
from rooflm.serving import pareto
from rooflm.serving.plan import plan as run_plan
from rooflm.serving.plan_result import E2E_PER_USER, PlanPoint, PlanResult
from rooflm.units import mode_label

# The search's option types, shared with `rooflm plot pareto`.
Gpus = Annotated[int, typer.Option(help="GPUs to lay out: every tp × pp × dp (and ep for MoE) of this count is searched.")]
TtftSlo = Annotated[float | None, typer.Option(help="Target mean time to first token, seconds (e.g. 0.5); plan's "
                                                    "default 10 s, inf for none.")]
TpotSlo = Annotated[float | None, typer.Option(help="Target mean time per output token, seconds (e.g. 0.03).")]
IntList = Annotated[str | None, typer.Option()]
Disaggregate = Annotated[str, typer.Option(help=(
    "Disaggregated prefill/decode searched: auto (every split xP:yD of each layout's replicas, x + y = GPUs / "
    "devices per replica; past 8 replicas x or y of 1, 2, 4, …), off, or a list (1P:3D,2P:2D)."))]
KvLinkFlag = Annotated[str | None, typer.Option(help="The KV transfer's link of the disaggregated splits: inter_node "
                                                 "(default) | intra_node.", callback=lower_case)]


def _ints(text: str | None, flag: str) -> list[int] | None:
    return None if text is None else parse_int_list(text, flag, max_values=10_000)


@user_errors
@with_wide
@with_deployment(defaults={"efficiency": REALISTIC_EFFICIENCY}, exclude=("tp", "ep", "pp", "dp"))
def plan(model: Model = "llama-3.1-8b", hardware: Hardware = "h100-sxm", gpus: Gpus = 8,
         prompt_len: LengthText = "1024", gen_len: LengthText = "256",
         quant: Annotated[str | None, typer.Option("--quant", "-q", callback=lower_case, help=(
             "Schemes searched, comma-separated (default bf16,fp8,w4a16,w4a8,fp4: those the device runs)."))] = None,
         kv_dtype: Annotated[str | None, typer.Option(callback=lower_case, help="KV dtypes searched (default "
                                                                                 "bf16,fp8).")] = None,
         spec_tokens: Annotated[str, typer.Option(help="Drafted tokens per step searched: 0 = off; 0,3 searches off "
                                                       "and k = 3 (with --acceptance).")] = "0",
         max_running: Annotated[str, typer.Option(help="Requests running at once searched (vLLM max_num_seqs).")
                                ] = "32,64,128,256,512",
         max_num_batched_tokens: Annotated[str, typer.Option(
             help="Tokens per step searched: decode rows + prefill chunk (vLLM's own name).")] = "2048,8192",
         max_tokens_per_step: OldBudgets = None,
         concurrency: Annotated[str, typer.Option(help="Closed-loop users searched: 1,8,64 or 1:2048:x2.")
                                ] = "1:2048:x2",
         disaggregate: Disaggregate = "auto", kv_link: KvLinkFlag = None,
         ttft_slo: TtftSlo = None, tpot_slo: TpotSlo = None,
         seed: Annotated[int, typer.Option(help="Seed of the length draws.")] = 0,
         workers: Annotated[int | None, typer.Option(help="Processes (default: one per core when the search is "
                                                          "large).")] = None,
         rows: Annotated[int, typer.Option(min=0, help="Frontier rows printed, spread along it (0: all; --json has "
                                                       "all).")] = 20,
         verify: Annotated[int, typer.Option(help="The best configurations by the steady-state model simulated "
                                                  "request by request before one is called best (0: none).")] = 3,
         emit: Emit = None, as_json: Json = False, *, deployment: Deployment) -> None:
    """The deployments of N GPUs for a traffic: Pareto frontier of tok/s per GPU vs per user, and the best within SLOs.

    Searches layouts, schemes, KV dtypes, spec decoding, aggregated or disaggregated (xP:yD) serving, engine limits
    and loads for N GPUs under a traffic: the Pareto frontier of output tokens/s per GPU against per user, and the
    best configuration meeting --ttft-slo and --tpot-slo, each with the `rooflm serving` command that reproduces it
    (steady-state model). --emit vllm|sglang|trtllm adds the engine's launch and benchmark commands of the best
    configuration (with --json, of every frontier point too)."""
    engine = None if emit is None else engine_launch.check_engine(emit)
    with progress_bar("plan: pricing step tables", quiet=as_json) as progress:
        result = run_plan(model, hardware, gpus=gpus, prompt_len=prompt_len, gen_len=gen_len, quant=quant,
                          kv_dtype=kv_dtype, spec_tokens=_ints(spec_tokens, "spec-tokens"),
                          max_running=_ints(max_running, "max-running"),
                          max_tokens_per_step=_ints(max_tokens_per_step or max_num_batched_tokens, "max-num-batched-tokens"),
                          concurrency=_ints(concurrency, "concurrency"), disaggregate=disaggregate, kv_link=kv_link,
                          ttft_slo=ttft_slo, tpot_slo=tpot_slo, seed=seed,
                          workers=workers, verify=verify, progress=progress,
                          **cast(dict[str, Any], deployment))  # none of the searched flags
    if as_json:
        print_json(result.to_json_dict() if engine is None else _with_launch(result, engine, model, deployment))
        return
    show(plan_table(result, rows))
    _best(result)
    for note in result.notes:
        out.print(f"note: {note}", highlight=False, soft_wrap=True)
    if engine is not None and result.best is not None:
        print_launch(_launch(engine, model, result, result.best, deployment))
    elif engine is not None:
        out.print(f"note: --emit {engine}: no best configuration to launch", highlight=False, soft_wrap=True)


def _launch(engine: str, model: str, r: PlanResult, p: PlanPoint, deployment: Deployment) -> engine_launch.Launch:
    return engine_launch.launch(engine, engine_launch.plan_config(model, r.traffic, p, deployment))


def _with_launch(r: PlanResult, engine: str, model: str, deployment: Deployment) -> dict[str, object]:
    """plan --json with "launch" beside the best point (top level) and in every frontier point."""
    doc = r.to_json_dict()
    doc["launch"] = None if r.best is None else _launch(engine, model, r, r.best, deployment).to_json_dict()
    for point, row in zip(r.pareto, doc["pareto"], strict=True):  # type: ignore[call-overload]
        row["launch"] = _launch(engine, model, r, point, deployment).to_json_dict()
    return doc


def _layout(p: PlanPoint) -> str:
    """tp2 dp4, or a disaggregated split of tp2 replicas: tp2 1P:3D."""
    c = p.config
    keys = ("tp", "ep", "pp", "dp") if c.get("disaggregate") is None else ("tp", "ep", "pp")
    shown = " ".join(f"{k}{c[k]}" for k in keys if k in ("tp", "dp") or int(c[k] or 1) > 1)
    return shown if c.get("disaggregate") is None else f"{shown} {c['disaggregate']}"


def _row(p: PlanPoint) -> list[str]:
    c, m = p.config, p.metrics
    return [num_cell(m["output_tokens_per_s_per_user"], 1), num_cell(m[E2E_PER_USER], 1),
            num_cell(m["output_tokens_per_s_per_gpu"]), ms_cell(m["ttft_s"]),
            ms_cell(m["tpot_s"]), _layout(p), str(c["quant"]), str(c["kv_dtype"]), str(c["spec_tokens"]),
            str(c["max_running"]), str(c["max_num_batched_tokens"]), str(c["concurrency"]), p.bound]


def targets_cell(p: PlanPoint, slo: tuple[float | None, float | None]) -> str:
    """Whether the point meets the latency targets: "met", or the ones it misses ("TTFT", "TPOT", "TTFT, TPOT").
    The frontier weighs throughput against per-user speed only, so it holds points with long queues before the
    first token; this says which of them a deployment with targets could pick."""
    ttft, tpot = (np.array([np.nan if p.metrics[k] is None else p.metrics[k]]) for k in ("ttft_s", "tpot_s"))
    ok = {"TTFT": bool(pareto.meets(ttft, tpot, slo[0], None)[0]), "TPOT": bool(pareto.meets(ttft, tpot, None, slo[1])[0])}
    missed = [name for name, target in (("TTFT", slo[0]), ("TPOT", slo[1])) if target is not None and not ok[name]]
    return "met" if not missed else "misses " + ", ".join(missed)


def spread(per_user: list[float], rows: int) -> list[int]:
    """Indices of at most ``rows`` frontier points (``per_user``: their tok/s per user, ascending) evenly spaced in
    log(tok/s per user), the two ends always; all when ``rows`` is 0 or not fewer than the points. A long frontier
    holds runs of neighbours a fraction of a percent apart; a table of them hides its shape."""
    n = len(per_user)
    if rows <= 0 or n <= rows:
        return list(range(n))
    x = np.log(np.asarray(per_user, dtype=np.float64))
    targets = np.linspace(x[0], x[-1], rows)
    return sorted({int(np.abs(x - t).argmin()) for t in targets})


def plan_table(r: PlanResult, rows: int = 0) -> Table:
    shown = spread([p.metrics["output_tokens_per_s_per_user"] or 0.0 for p in r.pareto], rows)
    part = f"{len(shown)} of its {len(r.pareto)} points, " if len(shown) < len(r.pareto) else ""
    frontier = f"Pareto frontier ({part}--json for all)" if part else "Pareto frontier"
    t = Table(title=f"{r.model} on {r.gpus} × {r.hardware}, {mode_label(r.efficiency, r.engine_kernels)}: prompt "
                    f"{r.traffic.prompt.label()}, output {r.traffic.gen.label()} tokens — {frontier} of "
                    f"{r.searched:,} configurations ({r.fits:,} fit) · engine policy {r.engine_policy}",
              caption="tok/s/user: 1 / TPOT (interactivity); e2e: output tokens / (TTFT + output tokens × TPOT)",
              caption_justify="left")
    with_targets = any(v is not None for v in r.slo)
    for c in ("tok/s/user", "e2e tok/s/user", "tok/s/GPU", "TTFT ms", "TPOT ms", "layout", "quant", "KV", "spec", "max run",
              "tok/step", "users", "bound", *(("targets",) if with_targets else ())):
        t.add_column(c, justify="left" if c in ("layout", "quant", "KV", "bound", "targets") else "right")
    for i in shown:
        t.add_row(*_row(r.pareto[i]), *((targets_cell(r.pareto[i], r.slo),) if with_targets else ()))
    # On a narrow terminal the throughputs, latencies, layout, scheme and targets stay; the engine limits go first.
    return droppable(t, "e2e tok/s/user", "spec", "tok/step", "max run", "bound", "KV", "users")


def _best(r: PlanResult) -> None:
    targets = [f"{name} ≤ {units.seconds(v)}" for name, v in (("TTFT", r.slo[0]), ("TPOT", r.slo[1])) if v is not None]
    if r.ttft_slo_default and targets:
        targets[0] += " (default)"
    within = " and ".join(targets) if targets else "no latency target"
    if r.best is None:
        out.print(f"best ({within}): none of the {r.fits:,} fitting configurations meets it", highlight=False,
                  soft_wrap=True)
        return
    m = r.best.metrics
    out.print(f"best ({within}): {num_cell(m['output_tokens_per_s_per_gpu'])} tok/s/GPU at "
              f"{num_cell(m['output_tokens_per_s_per_user'], 1)} tok/s/user, {num_cell(m[E2E_PER_USER], 1)} end to end "
              f"(TTFT {ms_cell(m['ttft_s'])} ms, TPOT "
              f"{ms_cell(m['tpot_s'])} ms): {_layout(r.best)}, {r.best.config['quant']}, KV {r.best.config['kv_dtype']}, "
              f"{r.best.config['concurrency']} users", highlight=False, soft_wrap=True)
    sim = r.best.simulated
    if sim is not None:
        verdict = ("" if r.slo == (None, None) else
                   ": meets the targets" if sim["meets_targets"] else ": misses the targets")
        out.print(f"  simulated ({sim['requests']:,} requests): TTFT {ms_cell(sim['ttft_s'])} ms, TPOT "  # type: ignore[arg-type]
                  f"{ms_cell(sim['tpot_s'])} ms, {num_cell(sim['output_tokens_per_s_per_gpu'])} tok/s/GPU"  # type: ignore[arg-type]
                  f"{verdict}", highlight=False, soft_wrap=True)
    out.print(f"  {r.best.command}", highlight=False, soft_wrap=True)
