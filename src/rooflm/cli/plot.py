"""`rooflm plot` and `rooflm serve`, registered on the main app by cli.py.

Kept apart from cli.py because both need optional packages (matplotlib/plotly, FastAPI/uvicorn), which
are imported only when these commands run.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Annotated

import typer

from rooflm.analyses.axes import parse_int_list
from rooflm.cli.options import AllTokens, GenLen, Json, Model, Phase, lower_case, with_deployment
from rooflm.cli.output import err, user_errors
from rooflm.cli.plan import TpotSlo, TtftSlo
from rooflm.cli.serving import Concurrency, DisaggregateSplit, KvLinkFlag, Method, RequestRate, Requests, loads
from rooflm.core.inputs import Deployment
from rooflm.errors import InvalidInputError


def _single(values: list[str], flag: str, kind: str) -> str:
    if len(values) > 1:
        raise InvalidInputError(f"--{flag}: only `rooflm plot batch` draws several ({', '.join(values)}); "
                                f"`{kind}` takes one")
    return values[0]


def _check_pareto_flags(kind: str, gpus: int | None, ttft_slo: float | None, tpot_slo: float | None,
                        request_rate: str | None, requests: int | None) -> None:
    """--gpus and the targets belong to `pareto` (whose --concurrency lists the users searched), the simulation's
    flags to `serving`."""
    given: object  # each flag's value, text or a number
    if kind == "pareto":
        for flag, given in (("request-rate", request_rate), ("requests", requests)):
            if given is not None:
                raise InvalidInputError(f"--{flag}: `plot pareto` searches closed loops of --concurrency users with "
                                        "the steady-state model", field=flag.replace("-", "_"))
        return
    for flag, given in (("gpus", gpus), ("ttft-slo", ttft_slo), ("tpot-slo", tpot_slo)):
        if given is not None:
            raise InvalidInputError(f"--{flag}: only `rooflm plot pareto` searches GPUs and targets; `{kind}` does "
                                    "not", field=flag.replace("-", "_"))


def _check_serving_flags(kind: str, batch: str | None, context: str | None, concurrency: str | None,
                         request_rate: str | None, requests: int | None) -> None:
    """The load flags belong to `serving` (and `pareto`), the batch and context to the other figures: refuse a mix."""
    if kind in ("serving", "pareto"):
        for flag, value in (("batch", batch), ("context", context)):
            if value is not None:
                raise InvalidInputError(f"--{flag}: `plot {kind}` sets the load with --concurrency"
                                        f"{' or --request-rate' if kind == 'serving' else ''} (the engine's batch and "
                                        "contexts follow from it)", field=flag)
        return
    for flag, given in (("concurrency", concurrency), ("request-rate", request_rate), ("requests", requests)):
        if given is not None:
            raise InvalidInputError(f"--{flag}: only `rooflm plot serving` takes a load; `{kind}` does not",
                                    field=flag.replace("-", "_"))


@user_errors
@with_deployment(defaults={"efficiency": None})  # by kind: ideal for a step's figures, calibrated for serving
def plot(kind: Annotated[str, typer.Argument(help="roofline | batch | breakdown | memory | serving | pareto | levels",
                                             callback=lower_case)],
         output: Annotated[Path, typer.Option("--output", "-o", help="File to write: .png, .svg, .pdf or .html "
                                              "(interactive, works offline).")],
         model: Model = "llama-3.1-8b",
         hardware: Annotated[str, typer.Option("--hardware", "-H", help="Catalog name/alias or a .toml file; "
                                               "`batch` takes several, comma-separated.")] = "h100-sxm",
         phase: Phase = "decode",
         batch: Annotated[str | None, typer.Option(
             "--batch", "-b", help="roofline: the step's batch (default 1); batch, breakdown, memory: the batches "
                                   "drawn (1,2,8 or 1:4096:x2).")] = None,
         prompt_len: int = 1024,
         context: Annotated[str | None, typer.Option(
             help="Decode: tokens in each cache (default: the prompt length); `breakdown --over context`: the "
                  "contexts drawn.")] = None,
         gen_len: GenLen = 256,
         quant: Annotated[str | None, typer.Option("--quant", "-q", callback=lower_case, help=(
             "Scheme (default bf16); `batch` takes several, comma-separated (bf16,fp8,w4a16,w4a8); `pareto`: those "
             "searched (default: the plan's)."))] = None,
         lm_head_all_tokens: AllTokens = False,
         over: Annotated[str, typer.Option(help="breakdown: against batch or context.", callback=lower_case)
                         ] = "batch",
         trajectory: Annotated[str, typer.Option(help="roofline: the batches of the trajectory (empty: none).")
                               ] = "1:4096:x2",
         concurrency: Concurrency = None, request_rate: RequestRate = None, method: Method = "simulate",
         requests: Requests = None, disaggregate: DisaggregateSplit = None, kv_link: KvLinkFlag = None,
         gpus: Annotated[int | None, typer.Option(help="pareto: GPUs laid out, every layout searched (default 8).")
                         ] = None,
         ttft_slo: TtftSlo = None, tpot_slo: TpotSlo = None,
         all_levels: Annotated[bool, typer.Option(
             "--all-levels", help="levels: each operator at every memory level too (hollow where it does not bind).")
                               ] = False,
         as_json: Json = False, *, deployment: Deployment) -> None:
    """Draw a figure: roofline, batch, breakdown, memory, serving, pareto or levels (PNG, SVG, PDF or HTML).

    The roofline with the batch trajectory, time and tokens/s vs batch, the time breakdown,
    memory use, serving's latency–throughput curve (`rooflm serving`: --concurrency or --request-rate, a point
    per load, default 1:512:x2 users), or the Pareto frontier of `rooflm plan` (--gpus, --ttft-slo, --tpot-slo;
    --quant and --kv-dtype lists), or the hierarchical roofline of one step (`levels`: a bandwidth slope per memory
    level, each operator at the level that binds it; --all-levels). The file's suffix picks the format."""
    from rooflm.plot import KINDS, data_list, render
    from rooflm.plot.data import Query

    if kind not in KINDS:
        raise InvalidInputError(f"unknown figure kind {kind!r}; kinds: {', '.join(KINDS)}")
    if over not in ("batch", "context"):
        raise InvalidInputError(f"--over must be batch or context, got {over!r}")
    quants, hardwares = data_list(quant or "bf16"), data_list(hardware)
    _check_serving_flags(kind, batch, context, concurrency, request_rate, requests)
    for flag, given in (("disaggregate", disaggregate), ("kv-link", kv_link)):
        if given is not None and kind != "serving":  # the serving figure's deployment; pareto searches splits itself
            raise InvalidInputError(f"--{flag}: only `rooflm plot serving` serves a split; `{kind}` does not",
                                    field=flag.replace("-", "_"))
    _check_pareto_flags(kind, gpus, ttft_slo, tpot_slo, request_rate, requests)
    if all_levels and kind != "levels":
        raise InvalidInputError(f"--all-levels: only `rooflm plot levels` draws memory levels; `{kind}` does not",
                                field="all_levels")
    if kind not in ("batch", "pareto"):
        _single(quants, "quant", kind)
        _single(hardwares, "hardware", kind)
    batches = parse_int_list(batch, "batch") if batch is not None else None
    contexts = parse_int_list(context, "context") if context is not None else None
    over_context = kind == "breakdown" and over == "context"
    one_step = kind in ("roofline", "levels")  # the figures of a single step, at one batch
    if batches and len(batches) > 1 and (one_step or over_context):
        hint = " (the trajectory is --trajectory)" if kind == "roofline" else ""
        raise InvalidInputError(f"--batch: `{kind}` draws one step; give one batch{hint}" if one_step
                                else "--batch: with --over context give one batch", field="batch")
    if contexts and len(contexts) > 1 and not over_context:
        raise InvalidInputError("--context: give one context (a list is for `breakdown --over context`)")
    query = Query.of(model=model, hardware=hardwares[0], phase=phase,
                     batch=batches[0] if batches and (one_step or over_context) else 1,
                     prompt_len=prompt_len, context=contexts[0] if contexts and not over_context else None,
                     gen_len=gen_len, lm_head_all_tokens=lm_head_all_tokens,
                     **(deployment | {"quant": quants[0]}))
    by_kind: dict[str, dict[str, object]] = {
        "roofline": {"trajectory": parse_int_list(trajectory, "trajectory") if trajectory.strip() else None},
        "batch": {"batches": batches, "quants": quants, "hardwares": hardwares},
        "breakdown": {"over": over, "values": contexts if over_context else batches},
        "memory": {"batches": batches},
        "serving": dict(zip(("concurrency", "request_rate"), loads(concurrency, request_rate), strict=True))
        | {"method": method, "requests": requests, "disaggregate": disaggregate, "kv_link": kv_link},
        "pareto": {"quants": None if quant is None else quants, "gpus": 8 if gpus is None else gpus,
                   "ttft_slo": ttft_slo, "tpot_slo": tpot_slo, "concurrency": loads(concurrency, None)[0]},
        "levels": {"all_levels": all_levels},
    }
    path = render(kind, output, query, **by_kind[kind])
    if as_json:
        sys.stdout.write(json.dumps({"kind": kind, "output": str(path), "format": path.suffix.lstrip(".")}) + "\n")
    else:
        err.print(f"wrote {path} ({kind})", highlight=False)


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def served_hosts(host: str, allowed: list[str]) -> frozenset[str]:
    """The Host names the server answers: loopback, the address it listens on when that is a name or a specific
    address (not 0.0.0.0 / ::, which any name may reach), and what the operator allows."""
    from rooflm.web.guards import LOOPBACK_HOSTS, host_name

    names = set(LOOPBACK_HOSTS) | {host_name(a) if a != "*" else "*" for a in allowed}
    if host not in ("0.0.0.0", "::", ""):
        names.add(host.strip("[]").lower())
    return frozenset(names)


@user_errors
def serve(host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")
                          ] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
          allow_host: Annotated[list[str] | None, typer.Option(
              "--allow-host", help="Also answer requests naming this Host (repeatable; '*' answers any, which lets "
                                   "any web page you visit reach the server by DNS rebinding).")] = None) -> None:
    """Start the local web page and its JSON API (needs the `web` extra)."""
    try:
        from rooflm.web import create_app
        from rooflm.web.server import run
    except ImportError as exc:
        raise InvalidInputError(f"`rooflm serve` needs {exc.name}: pip install 'rooflm[web]'") from None
    if not 0 < port < 65536:
        raise InvalidInputError(f"--port must be between 1 and 65535, got {port}", field="port")
    if not _port_free(host, port):
        raise InvalidInputError(f"cannot listen on {host}:{port} (in use, or not an address of this machine); "
                                "pick another with --port or --host", field="host")
    shown = f"[{host}]" if ":" in host else host
    hosts = served_hosts(host, allow_host or [])
    err.print(f"rooflm page at http://{shown}:{port}/ (API docs at /docs; Ctrl-C stops it); answering Host "
              f"{', '.join(sorted(hosts))}", highlight=False, markup=False)
    run(create_app(allowed_hosts=hosts), host, port)
