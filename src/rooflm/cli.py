"""The `rooflm` command: parse flags, call the API, print a table, JSON or CSV. No physics here."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from rooflm import render
from rooflm.analysis import analyze as _analyze
from rooflm.critical import critical_batch as _critical_batch
from rooflm.economics import compare_quant
from rooflm.errors import InvalidInputError, RooflmError, UnsupportedModelError
from rooflm.explain import explain as _explain
from rooflm.specs.hardware import hardware_names, load_hardware
from rooflm.specs.hf_config import catalog, load_model, model_names
from rooflm.sweep import sweep as _sweep

app = typer.Typer(help="Where LLM inference time goes: every operator on a roofline.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
models_app = typer.Typer(help="The model catalog.", no_args_is_help=True)
hardware_app = typer.Typer(help="The hardware catalog.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(hardware_app, name="hardware")

out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Turn a user mistake into one line on stderr and exit status 2, never a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RooflmError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _json(doc: object) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, allow_nan=False) + "\n")


def parse_int_list(text: str, flag: str) -> list[int]:
    """'1,2,8' → [1, 2, 8]; '1:4096' → 1…4096; '1:4096:8' → every 8th; '1:4096:x2' → 1, 2, 4, …"""
    values: list[int] = []
    try:
        for part in (p.strip() for p in text.split(",")):
            if ":" not in part:
                values.append(int(part))
                continue
            pieces = part.split(":")
            if len(pieces) not in (2, 3):
                raise ValueError
            lo, hi = int(pieces[0]), int(pieces[1])
            step = pieces[2] if len(pieces) == 3 else "1"
            if step.startswith("x"):
                factor = float(step[1:])
                if factor <= 1 or lo <= 0:
                    raise ValueError
                v = float(lo)
                while v <= hi:
                    values.append(round(v))
                    v *= factor
            elif int(step) > 0:
                values.extend(range(lo, hi + 1, int(step)))
            else:
                raise ValueError
    except ValueError:
        raise InvalidInputError(f"--{flag} {text!r} is not a list of integers: use e.g. 1,2,8 or 1:4096 or 1:4096:x2"
                                ) from None
    if not values:
        raise InvalidInputError(f"--{flag} {text!r} selects nothing")
    return sorted(dict.fromkeys(values))


Model = Annotated[str, typer.Option("--model", "-m", help="Catalog name or path to a config.json (or its folder).")]
Hardware = Annotated[str, typer.Option("--hardware", "-H", help="Catalog name/alias or a hardware .toml file.")]
Phase = Annotated[str, typer.Option(help="prefill | decode | e2e")]
Quant = Annotated[str, typer.Option("--quant", "-q",
                                    help="bf16, fp16, fp8, int8 (W8A8), w8a16, w4a16, w4a8, fp4, mxfp4")]
KvDtype = Annotated[str | None, typer.Option(help="KV-cache dtype: bf16, fp16, fp8, int8, int4")]
Efficiency = Annotated[str, typer.Option(help="ideal (datasheet roofs, no overhead) | calibrated (measured fractions)")]
EtaMem = Annotated[float | None, typer.Option(help="Override the achievable fraction of memory bandwidth.")]
EtaCompute = Annotated[float | None, typer.Option(help="Override the achievable fraction of peak FLOP/s.")]
Overhead = Annotated[float | None, typer.Option("--kernel-overhead", help="Override the per-kernel overhead (s).")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
GenLen = Annotated[int, typer.Option(help="Output tokens per request (e2e).")]
AllTokens = Annotated[bool, typer.Option("--lm-head-all-tokens", help="Prefill computes logits for every token.")]
Tp = Annotated[int, typer.Option("--tp", help="Tensor-parallel devices (heads and MLP width split).")]
Ep = Annotated[int, typer.Option("--ep", help="Expert-parallel devices (= tp × dp, or 1).")]
Pp = Annotated[int, typer.Option("--pp", help="Pipeline stages (layers split).")]
Dp = Annotated[int, typer.Option("--dp", help="Data-parallel replicas (the batch is split).")]
CommAlgo = Annotated[str, typer.Option("--comm-algorithm", help="All-reduce algorithm: ring | tree")]
HotFactor = Annotated[float, typer.Option(help="MoE routing skew: hot experts are chosen this many times as often.")]
HotFraction = Annotated[float, typer.Option(help="MoE routing skew: the fraction of experts that are hot.")]
MlaDecodeOpt = Annotated[str, typer.Option("--mla-decode", help="MLA decode form: absorbed | naive")]
DequantOps = Annotated[float | None, typer.Option(help="Override: vector instructions per weight to dequantize.")]
KvDequantOps = Annotated[float | None, typer.Option(help="Override: vector instructions per cached KV element.")]
ActQuant = Annotated[bool | None, typer.Option("--act-quant/--no-act-quant",
                                               help="Override: count the per-token activation quantization pass.")]

DEPLOYMENT_KEYS = ("quant", "kv_dtype", "efficiency", "eta_memory", "eta_compute", "tp", "ep", "pp", "dp",
                   "comm_algorithm", "hot_expert_factor", "hot_expert_fraction", "mla_decode", "dequant_ops",
                   "kv_dequant_ops", "act_quant")


def deployment(args: dict[str, Any]) -> dict[str, Any]:
    """The deployment keywords of the API, from a command's arguments (named like the flags)."""
    d = {k: args[k] for k in DEPLOYMENT_KEYS if k in args}
    d["kernel_overhead_s"] = args.get("kernel_overhead")
    return d


@app.command()
@user_errors
def analyze(model: Model = "llama-3.1-8b", hardware: Hardware = "h100-sxm", phase: Phase = "decode",
            batch: Annotated[int, typer.Option("--batch", "-b")] = 1, prompt_len: int = 1024,
            context: Annotated[int | None, typer.Option(help="Decode: tokens in each cache [prompt-len]")] = None,
            gen_len: GenLen = 256, quant: Quant = "bf16", kv_dtype: KvDtype = None, efficiency: Efficiency = "ideal",
            eta_memory: EtaMem = None, eta_compute: EtaCompute = None, kernel_overhead: Overhead = None,
            tp: Tp = 1, ep: Ep = 1, pp: Pp = 1, dp: Dp = 1, comm_algorithm: CommAlgo = "ring",
            hot_expert_factor: HotFactor = 1.0, hot_expert_fraction: HotFraction = 0.1,
            mla_decode: MlaDecodeOpt = "absorbed", dequant_ops: DequantOps = None,
          kv_dequant_ops: KvDequantOps = None, act_quant: ActQuant = None,
            lm_head_all_tokens: AllTokens = False, as_json: Json = False) -> None:
    """Time, FLOPs, bytes, bound and memory of one step, operator by operator (on one device of the layout)."""
    report = _analyze(model, hardware, phase=phase, batch=batch, prompt_len=prompt_len, context=context,
                      gen_len=gen_len, lm_head_all_tokens=lm_head_all_tokens, **deployment(locals()))
    if as_json:
        _json(report.to_json_dict())
    else:
        out.print(render.analysis(report))


@app.command()
@user_errors
def sweep(model: Model = "llama-3.1-8b", hardware: Hardware = "h100-sxm", phase: Phase = "decode",
          batch: Annotated[str, typer.Option("--batch", "-b", help="1,2,4,8 or 1:4096 or 1:4096:x2")] = "1:1024:x2",
          prompt_len: Annotated[str, typer.Option(help="List or range, like --batch.")] = "1024",
          context: Annotated[str | None, typer.Option(help="Decode contexts, like --batch.")] = None,
          gen_len: GenLen = 256, quant: Quant = "bf16", kv_dtype: KvDtype = None, efficiency: Efficiency = "ideal",
          eta_memory: EtaMem = None, eta_compute: EtaCompute = None, kernel_overhead: Overhead = None,
          tp: Tp = 1, ep: Ep = 1, pp: Pp = 1, dp: Dp = 1, comm_algorithm: CommAlgo = "ring",
          hot_expert_factor: HotFactor = 1.0, hot_expert_fraction: HotFraction = 0.1,
          mla_decode: MlaDecodeOpt = "absorbed", dequant_ops: DequantOps = None,
          kv_dequant_ops: KvDequantOps = None, act_quant: ActQuant = None,
          lm_head_all_tokens: AllTokens = False, as_json: Json = False,
          csv: Annotated[bool, typer.Option("--csv", help="Print CSV, one row per point.")] = False) -> None:
    """Every combination of batch × prompt length × context, vectorised (thousands of points in milliseconds)."""
    result = _sweep(model, hardware, phase=phase, batch=parse_int_list(batch, "batch"),
                    prompt_len=parse_int_list(prompt_len, "prompt-len"),
                    context=None if context is None else parse_int_list(context, "context"), gen_len=gen_len,
                    lm_head_all_tokens=lm_head_all_tokens, **deployment(locals()))
    if as_json:
        _json(result.to_json_dict())
    elif csv:
        sys.stdout.write(result.to_csv())
    else:
        out.print(render.sweep_table(result))


@app.command("critical-batch")
@user_errors
def critical_batch(model: Model = "llama-3.1-8b", hardware: Hardware = "h100-sxm",
                   context: Annotated[int, typer.Option(help="Tokens in each sequence's cache.")] = 1024,
                   quant: Quant = "bf16", kv_dtype: KvDtype = None, efficiency: Efficiency = "ideal",
                   eta_memory: EtaMem = None, eta_compute: EtaCompute = None, kernel_overhead: Overhead = None,
                   tp: Tp = 1, ep: Ep = 1, pp: Pp = 1, dp: Dp = 1, comm_algorithm: CommAlgo = "ring",
                   hot_expert_factor: HotFactor = 1.0, hot_expert_fraction: HotFraction = 0.1,
                   mla_decode: MlaDecodeOpt = "absorbed", dequant_ops: DequantOps = None,
          kv_dequant_ops: KvDequantOps = None, act_quant: ActQuant = None,
                   as_json: Json = False) -> None:
    """The decode batch at which the weight GEMMs (and, for MoE, the experts) cross the ridge."""
    cb = _critical_batch(model, hardware, context=context, **deployment(locals()))
    if as_json:
        _json(cb.to_json_dict())
    else:
        out.print(render.critical_batch_table(cb))


@app.command()
@user_errors
def quant(model: Model = "llama-3.1-8b", hardware: Hardware = "h100-sxm", phase: Phase = "decode",
          schemes: Annotated[str, typer.Option(help="Schemes to compare; the first is the baseline unless --baseline. "
                                               "Add a KV dtype as scheme+kv-fp8.")] = "bf16,fp8,w4a16,w4a8",
          baseline: Annotated[str | None, typer.Option(help="The scheme speed-ups are relative to.")] = None,
          batch: Annotated[str, typer.Option("--batch", "-b", help="1,2,4,8 or 1:4096 or 1:4096:x2")] = "1:4096:x2",
          prompt_len: Annotated[str, typer.Option(help="List or range, like --batch.")] = "1024",
          context: Annotated[str | None, typer.Option(help="Decode contexts, like --batch.")] = None,
          gen_len: GenLen = 256,
          threshold: Annotated[float, typer.Option(help="A gain below this fraction counts as gone.")] = 0.10,
          kv_dtype: KvDtype = None, efficiency: Efficiency = "calibrated", eta_memory: EtaMem = None,
          eta_compute: EtaCompute = None, kernel_overhead: Overhead = None, tp: Tp = 1, ep: Ep = 1, pp: Pp = 1,
          dp: Dp = 1, comm_algorithm: CommAlgo = "ring", hot_expert_factor: HotFactor = 1.0,
          hot_expert_fraction: HotFraction = 0.1, mla_decode: MlaDecodeOpt = "absorbed",
          dequant_ops: DequantOps = None, kv_dequant_ops: KvDequantOps = None, act_quant: ActQuant = None,
          as_json: Json = False,
          csv: Annotated[bool, typer.Option("--csv", help="Print CSV, one row per scheme and point.")] = False) -> None:
    """What int4 / FP8 / a quantized KV cache buys at each batch and context, and why (calibrated mode by default)."""
    cmp = compare_quant(model, hardware, schemes=[s.strip() for s in schemes.split(",") if s.strip()],
                        baseline=baseline, phase=phase, batch=parse_int_list(batch, "batch"),
                        prompt_len=parse_int_list(prompt_len, "prompt-len"),
                        context=None if context is None else parse_int_list(context, "context"), gen_len=gen_len,
                        threshold=threshold, **deployment(locals()))
    if as_json:
        _json(cmp.to_json_dict())
    elif csv:
        sys.stdout.write(cmp.to_csv())
    else:
        out.print(render.quant_table(cmp))


@app.command()
@user_errors
def explain(model: Model = "llama-3.1-8b", hardware: Hardware = "h100-sxm", phase: Phase = "decode",
            batch: Annotated[int, typer.Option("--batch", "-b")] = 1, prompt_len: int = 1024,
            context: Annotated[int | None, typer.Option(help="Decode: tokens in each cache [prompt-len]")] = None,
            gen_len: GenLen = 256, quant: Quant = "bf16", kv_dtype: KvDtype = None, efficiency: Efficiency = "ideal",
            eta_memory: EtaMem = None, eta_compute: EtaCompute = None, kernel_overhead: Overhead = None,
            tp: Tp = 1, ep: Ep = 1, pp: Pp = 1, dp: Dp = 1, comm_algorithm: CommAlgo = "ring",
            hot_expert_factor: HotFactor = 1.0, hot_expert_fraction: HotFraction = 0.1,
            mla_decode: MlaDecodeOpt = "absorbed", dequant_ops: DequantOps = None,
            kv_dequant_ops: KvDequantOps = None, act_quant: ActQuant = None, as_json: Json = False) -> None:
    """The step in plain words (Markdown): its regime, what binds, and the levers ranked by predicted gain."""
    e = _explain(model, hardware, phase=phase, batch=batch, prompt_len=prompt_len, context=context, gen_len=gen_len,
                 **deployment(locals()))
    if as_json:
        _json(e.to_json_dict())
    else:
        sys.stdout.write(e.to_markdown() + "\n")


@models_app.command("list")
@user_errors
def models_list(as_json: Json = False) -> None:
    """Catalog models (unsupported architectures are listed with the reason)."""
    rows: list[tuple[str, Any]] = []
    for name in model_names():
        try:
            rows.append((name, load_model(name)))
        except UnsupportedModelError:
            rows.append((name, f"{catalog()[name].get('architecture', 'unsupported')} (not supported yet)"))
    if as_json:
        _json({"models": [{"name": n, "supported": not isinstance(m, str),
                           **({"total_params": m.total_params} if not isinstance(m, str) else {})} for n, m in rows]})
    else:
        out.print(render.model_table(rows))


@models_app.command("show")
@user_errors
def models_show(name: Annotated[str, typer.Argument(help="Catalog name or config.json path.")],
                as_json: Json = False) -> None:
    """Sizes, parameter counts and KV-cache bytes per token of one model."""
    m = load_model(name)
    doc = {**m.model_dump(), "total_params": m.total_params, "active_params": m.active_params,
           "active_params_without_embedding": m.active_params_without_embedding,
           "non_embedding_params": m.non_embedding_params, "params_by_group": m.params_by_group(),
           "kv_bytes_per_token": m.kv_bytes_per_token(2.0), "published": catalog().get(m.name, {})}
    if as_json:
        _json(doc)
    else:
        out.print(render.model_table([(m.name, m)]))
        for group, n in m.params_by_group().items():
            out.print(f"  {group:<10} {n:>16,}")
        published = doc["published"]
        if isinstance(published, dict) and published.get("published_params"):
            out.print(f"  published: {published['published_params']:,} ({published.get('params_source', '')})")


@hardware_app.command("list")
@user_errors
def hardware_list(as_json: Json = False) -> None:
    """Catalog devices with their peaks, bandwidth and ridge."""
    devices = [load_hardware(n) for n in hardware_names()]
    if as_json:
        _json({"hardware": [_hardware_doc(h) for h in devices]})
    else:
        out.print(render.hardware_table(devices))


def _hardware_doc(h: Any) -> dict[str, Any]:
    return {**h.model_dump(), "peak_flops": {d: f.value for d, f in h.peak_flops.items()},
            "peak_flops_sources": {d: f.source for d, f in h.peak_flops.items()},
            "memory_bandwidth": h.memory_bandwidth.value, "memory_capacity": h.memory_capacity.value,
            "ridge": {d: h.ridge(d) for d in h.supported_dtypes}}


@hardware_app.command("show")
@user_errors
def hardware_show(name: Annotated[str, typer.Argument(help="Catalog name/alias or a .toml file.")],
                  as_json: Json = False) -> None:
    """Every figure of one device with its source."""
    h = load_hardware(name)
    if as_json:
        _json(_hardware_doc(h))
    else:
        out.print(render.hardware_detail(h))


def main() -> None:  # pragma: no cover - console entry
    app()


from rooflm import cli_measure as _cli_measure  # noqa: E402,F401  (registers `measure` and `validate`)
from rooflm import cli_plot  # noqa: E402,F401  (registers `plot` and `serve`)
