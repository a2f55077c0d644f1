"""`rooflm serving`: one deployment under a traffic (continuous batching), by simulation or the steady-state model."""

from __future__ import annotations

import shlex
from typing import Annotated

import typer
from rich.table import Table

from rooflm.analyses.axes import parse_int_list
from rooflm.cli.options import Hardware, Json, Model, OldBudget, lower_case, with_deployment
from rooflm.cli.output import droppable, out, print_json, progress_bar, show, user_errors, with_wide
from rooflm.core.inputs import REALISTIC_EFFICIENCY, Deployment
from rooflm.serving import ServingResult, serve_traffic
from rooflm.serving import launch as engine_launch
from rooflm.serving.traffic import parse_rates
from rooflm.units import mode_label

LengthText = Annotated[str, typer.Option(help="Tokens: N, uniform:LO:HI, normal:MEAN:STD or lognormal:MEAN:STD.")]
# The load and method options, shared with `rooflm plot serving`.
Concurrency = Annotated[str | None, typer.Option(help="Closed-loop users: 1,8,64 or 1:256:x2.")]
RequestRate = Annotated[str | None, typer.Option(help="Poisson arrivals, requests/s: 1,2.5,10.")]
Method = Annotated[str, typer.Option(help="simulate (requests one by one: means and percentiles) | steady (the "
                                          "steady-state model: means)", callback=lower_case)]
View = Annotated[str, typer.Option(help="steady (the steady window's means: warm-up and drain left out) | benchmark "
                                        "(every request of a run started as vllm bench serve starts one: all users at "
                                        "once).", callback=lower_case)]
Requests = Annotated[int | None, typer.Option(help="Requests simulated per point (default: 2,000 or 4 × the largest "
                                                   "concurrency).")]
DisaggregateSplit = Annotated[str | None, typer.Option(
    "--disaggregate", help="xP:yD: x prefill and y decode replicas of the layout, the KV cache sent between them "
                           "(compare with --dp x+y on the same GPUs).")]
Emit = Annotated[str | None, typer.Option(help=(
    "Print the serving engine's launch command for this configuration and the benchmark command that measures it "
    "(its result file is what `rooflm fit` reads): vllm | sglang | trtllm."))]
KvLinkFlag = Annotated[str | None, typer.Option(
    "--kv-link", help="The KV transfer's link: inter_node (default: RDMA between nodes) | intra_node.",
    callback=lower_case)]


def loads(concurrency: str | None, request_rate: str | None) -> tuple[list[int] | None, list[float] | None]:
    """The parsed --concurrency and --request-rate lists (None where not given)."""
    return (None if concurrency is None else parse_int_list(concurrency, "concurrency", max_values=1000),
            None if request_rate is None else parse_rates(request_rate))


@user_errors
@with_wide
@with_deployment(defaults={"efficiency": REALISTIC_EFFICIENCY})
def serving(model: Model = "llama-3.1-8b", hardware: Hardware = "h100-sxm", prompt_len: LengthText = "1024",
            gen_len: LengthText = "256",
            concurrency: Concurrency = None, request_rate: RequestRate = None, method: Method = "simulate",
            view: View = "steady", requests: Requests = None,
            seed: Annotated[int, typer.Option(help="Seed of the lengths and arrivals drawn.")] = 0,
            max_running: Annotated[int | None, typer.Option(help="Requests running at once per replica "
                                                                 "(vLLM max_num_seqs; default 256).")] = None,
            max_num_batched_tokens: Annotated[int | None, typer.Option(
                help="Tokens per step: decode rows + prefill chunk (vLLM's own name; default 8192).")] = None,
            max_tokens_per_step: OldBudget = None,
            kv_blocks: Annotated[int | None, typer.Option(help="KV-cache blocks of 16 tokens per replica (default: "
                                                               "the memory left after weights and activations).")] = None,
            disaggregate: DisaggregateSplit = None, kv_link: KvLinkFlag = None, emit: Emit = None,
            front_end_s: Annotated[float | None, typer.Option(
                help="The server's cost per request in seconds (HTTP, tokenization, scheduling, first-token "
                     "streaming), added to TTFT; default the engine policy's, 0 (none measured publicly).")] = None,
            front_end_token_s: Annotated[float | None, typer.Option(
                help="The server's cost per output token in seconds (detokenization, streaming), added to TPOT; "
                     "default 0.")] = None,
            as_json: Json = False, *, deployment: Deployment) -> None:
    """TTFT, TPOT, end-to-end latency and output tokens/s (total, per GPU, per user) under a traffic, per load."""
    engine = None if emit is None else engine_launch.check_engine(emit)
    max_num_batched_tokens = max_num_batched_tokens if max_tokens_per_step is None else max_tokens_per_step
    users, rates = loads(concurrency, request_rate)
    with progress_bar("serving: simulating loads", quiet=as_json) as progress:
        result = serve_traffic(
            model, hardware, prompt_len=prompt_len, gen_len=gen_len, concurrency=users, request_rate=rates,
            method=method, requests=requests, view=view, seed=seed, max_running=max_running,
            max_tokens_per_step=max_num_batched_tokens, kv_blocks=kv_blocks, disaggregate=disaggregate,
            kv_link=kv_link, front_end_s=front_end_s, front_end_token_s=front_end_token_s,
            progress=progress, **deployment)
    launch = None if engine is None else engine_launch.launch(engine, engine_launch.config(
        model, prompt_len=prompt_len, gen_len=gen_len, concurrency=users, request_rate=rates,
        max_running=max_running, max_tokens_per_step=max_num_batched_tokens, disaggregate=disaggregate,
        deployment=deployment))
    if as_json:
        print_json({**result.to_json_dict(), **({} if launch is None else {"launch": launch.to_json_dict()})})
        return
    show(serving_table(result))
    for note in result.notes:
        out.print(f"note: {note}", highlight=False, soft_wrap=True)
    if launch is not None:
        print_launch(launch)


_ENGINE_NAMES = {"vllm": "vLLM", "sglang": "SGLang", "trtllm": "TensorRT-LLM"}


def launch_lines(launch: engine_launch.Launch) -> list[str]:
    """The launch as shell lines: comments, any file the server reads (as a here-document), the serve command(s),
    one benchmark command per load, the notes as comments."""
    lines = [f"# {_ENGINE_NAMES[launch.engine]} {launch.version_checked} (flags as documented at "
             f"{launch.sources[0]})"]
    for name, text in launch.files.items():
        lines += [f"cat > {shlex.quote(name)} <<'EOF'", *text.rstrip("\n").split("\n"), "EOF"]
    lines += [shlex.join(argv) for argv in launch.serve]
    if launch.benchmark:
        lines.append("# benchmark (its result file is what `rooflm fit` reads):")
        lines += [shlex.join(argv) for argv in launch.benchmark]
    return lines + [f"# note: {note}" for note in launch.notes]


def print_launch(launch: engine_launch.Launch) -> None:
    out.print("", highlight=False)
    for line in launch_lines(launch):
        out.print(line, highlight=False, soft_wrap=True, markup=False)


def ms_cell(v: float | None) -> str:
    return "—" if v is None else f"{v * 1e3:,.1f}"


def num_cell(v: float | None, digits: int = 0) -> str:
    return "—" if v is None else f"{v:,.{digits}f}"


def serving_table(r: ServingResult) -> Table:
    split = f"{r.disaggregate['split']} of " if r.disaggregate else ""
    t = Table(title=f"{r.model} on {split}{r.layout} × {r.hardware}, {r.quant}, "
                    f"{mode_label(r.efficiency, r.engine_kernels)}: prompt {r.prompt_len}, output {r.gen_len} tokens "
                    f"({r.method}{', ' + r.view + ' view' if r.method == 'simulate' else ''}; engine policy {r.engine_policy})")
    load = r.points[0].load if r.points else "concurrency"
    pct = r.method == "simulate"
    columns = [load.replace("_", " "), "TTFT ms", *(["TTFT p99"] if pct else []), "TPOT ms",
               *(["TPOT p99"] if pct else []), "e2e s", *(["e2e p99"] if pct else []), "tok/s", "tok/s/GPU",
               "tok/s/user", "batch", "KV use", *(["KV xfer ms", "P busy"] if r.disaggregate else []), "bound"]
    for c in columns:
        t.add_column(c, justify="left" if c in ("bound",) else "right")
    for p in r.points:
        e2e, e2e99 = p.e2e_latency_s, p.percentiles.get("e2e_latency_p99_s")
        row = [f"{p.value:g}", ms_cell(p.ttft_s), *([ms_cell(p.percentiles.get("ttft_p99_s"))] if pct else []),
               ms_cell(p.tpot_s), *([ms_cell(p.percentiles.get("tpot_p99_s"))] if pct else []), num_cell(e2e, 2),
               *([num_cell(e2e99, 2)] if pct else []), num_cell(p.output_tokens_per_s), num_cell(p.output_tokens_per_s_per_gpu),
               num_cell(p.output_tokens_per_s_per_user, 1), num_cell(p.batch, 1),
               "—" if p.kv_use is None else f"{p.kv_use:.0%}",
               *([ms_cell(p.kv_transfer_s), "—" if p.prefill_busy is None else f"{p.prefill_busy:.0%}"] if r.disaggregate
                 else []), p.bound]
        t.add_row(*row)
    # On a narrow terminal the means, the throughput per GPU and per user and the bound stay; these go first.
    return droppable(t, "KV use", "batch", "e2e p99", "TPOT p99", "P busy", "TTFT p99", "e2e s", "KV xfer ms", "tok/s")
