"""The `rooflm` command: parse flags, call the API, print a table, JSON or CSV. No physics here."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from rooflm.analyses import documents
from rooflm.analyses.analyze import analyze as _analyze
from rooflm.analyses.axes import parse_int_list
from rooflm.analyses.critical import critical_batch as _critical_batch
from rooflm.analyses.quant_comparison import RequestView, compare_quant
from rooflm.analyses.sweep import SweepResult, count_points, sweep_chunks, write_csv, write_json
from rooflm.analyses.sweep import sweep as _sweep
from rooflm.cli import render, render_hardware
from rooflm.cli.fit import fit_command
from rooflm.cli.measure import measure, validate
from rooflm.cli.options import (
    AllTokens,
    GenLen,
    Hardware,
    Json,
    Model,
    OldSchemes,
    Phase,
    with_deployment,
)
from rooflm.cli.output import err, out, print_error, print_json, progress_bar, show, user_errors, with_wide
from rooflm.cli.plan import plan
from rooflm.cli.plot import plot, serve
from rooflm.cli.regimes import regimes
from rooflm.cli.serving import serving
from rooflm.core.inputs import REALISTIC_EFFICIENCY, Deployment
from rooflm.errors import InvalidInputError
from rooflm.explain.prose import explain as _explain
from rooflm.kinds import Progress as ProgressCallback
from rooflm.specs.hardware import hardware_names, load_hardware
from rooflm.specs.hf_config import families, load_model

try:  # typer ≥ 0.24 carries its own copy of click; earlier versions use click itself
    from typer._click.exceptions import ClickException, NoSuchOption
except ImportError:  # pragma: no cover - depends on the installed typer
    from click.exceptions import ClickException, NoSuchOption  # type: ignore[assignment]

def _usage_message(exc: ClickException) -> str:
    if isinstance(exc, NoSuchOption) and exc.possibilities:
        return f"{exc.message} (did you mean {' or '.join(sorted(exc.possibilities))}?)"
    return exc.format_message()


@contextmanager
def _one_line_usage_errors() -> Iterator[None]:
    """A bad flag, value or command: one line and click's exit status (2 for usage errors), instead of typer's box
    of usage, hint and panel. A group called without a command still shows its help (click raises that as an
    error too)."""
    try:
        yield
    except ClickException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # by name, as typer does: click < 8.2 has no such class
            raise
        print_error(_usage_message(exc))
        raise typer.Exit(exc.exit_code) from None


class OneLineErrors(TyperGroup):
    """The root command group. Every parse of the command line happens inside its make_context (its own flags)
    or its invoke (the subcommand's name and flags), so both report usage errors on one line."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        with _one_line_usage_errors():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: Any) -> Any:
        with _one_line_usage_errors():
            return super().invoke(ctx)


app = typer.Typer(help="Where LLM inference time goes: every operator on a roofline.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False, cls=OneLineErrors)
models_app = typer.Typer(help="The model catalog.", no_args_is_help=True)
hardware_app = typer.Typer(help="The hardware catalog.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(hardware_app, name="hardware")


@app.command()
@user_errors
@with_wide
@with_deployment()
def analyze(model: Model = "llama-3.1-8b", hardware: Hardware = "h100-sxm", phase: Phase = "decode",
            batch: Annotated[int, typer.Option("--batch", "-b")] = 1, prompt_len: int = 1024,
            context: Annotated[int | None, typer.Option(help="Decode: tokens in each cache (default: --prompt-len).")] = None,
            gen_len: GenLen = 256, lm_head_all_tokens: AllTokens = False, as_json: Json = False, *,
            deployment: Deployment) -> None:
    """Time, FLOPs, bytes, bound and memory of one step, operator by operator (on one device of the layout)."""
    report = _analyze(model, hardware, phase=phase, batch=batch, prompt_len=prompt_len, context=context,
                      gen_len=gen_len, lm_head_all_tokens=lm_head_all_tokens, **deployment)
    if as_json:
        print_json(report.to_json_dict())
    else:
        show(render.analysis(report))


@app.command()
@user_errors
@with_wide
@with_deployment()
def sweep(model: Model = "llama-3.1-8b", hardware: Hardware = "h100-sxm", phase: Phase = "decode",
          batch: Annotated[str, typer.Option("--batch", "-b", help="1,2,4,8 or 1:4096 or 1:4096:x2")] = "1:1024:x2",
          prompt_len: Annotated[str, typer.Option(help="List or range, like --batch.")] = "1024",
          context: Annotated[str | None, typer.Option(help="Decode contexts, like --batch.")] = None,
          gen_len: GenLen = 256, lm_head_all_tokens: AllTokens = False, as_json: Json = False,
          csv: Annotated[bool, typer.Option("--csv", help="Print CSV, one row per point.")] = False, *,
          deployment: Deployment) -> None:
    """Every combination of batch × prompt length × context, vectorised (thousands of points in milliseconds)."""
    if as_json and csv:
        raise InvalidInputError("--json and --csv both given: each prints the whole sweep, so give one", field="csv")
    request: dict[str, Any] = {
        "phase": phase, "batch": parse_int_list(batch, "batch"), "prompt_len": parse_int_list(prompt_len, "prompt-len"),
        "context": None if context is None else parse_int_list(context, "context"), "gen_len": gen_len,
        "lm_head_all_tokens": lm_head_all_tokens, **deployment}
    if as_json:
        # A chunk at a time: the memory needed does not grow with the sweep (an oversize one is refused up front).
        write_json(sweep_chunks(model, hardware, **request), sys.stdout)
    elif csv:
        chunks = sweep_chunks(model, hardware, **request)
        with progress_bar("sweep: pricing points") as progress:
            write_csv(_counted(chunks, count_points(**{k: request[k] for k in _AXES}), progress), sys.stdout)
    else:
        show(render.sweep_table(_sweep(model, hardware, **request)))


_AXES = ("phase", "batch", "prompt_len", "context")


def _counted(chunks: Iterator[SweepResult], total: int, progress: ProgressCallback | None) -> Iterator[SweepResult]:
    """The chunks, each reported to ``progress`` as it is handed on (points done, points in the sweep)."""
    done = 0
    for chunk in chunks:
        yield chunk
        done += len(chunk)
        if progress is not None:
            progress(done, total)


@app.command("critical-batch")
@user_errors
@with_wide
@with_deployment()
def critical_batch(model: Model = "llama-3.1-8b", hardware: Hardware = "h100-sxm",
                   context: Annotated[int, typer.Option(help="Tokens in each sequence's cache.")] = 1024,
                   as_json: Json = False, *, deployment: Deployment) -> None:
    """The decode batch at which the weight GEMMs (and, for MoE, the experts) cross the ridge."""
    cb = _critical_batch(model, hardware, context=context, **deployment)
    if as_json:
        print_json(cb.to_json_dict())
    else:
        show(render.critical_batch_table(cb))


@app.command()
@user_errors
@with_wide
@with_deployment(defaults={"efficiency": REALISTIC_EFFICIENCY}, exclude=("quant",))
def quant(model: Model = "llama-3.1-8b", hardware: Hardware = "h100-sxm", phase: Phase = "decode",
          quant: Annotated[str, typer.Option("--quant", "-q", help="Schemes to compare; the first is the baseline "
                                             "unless --baseline. Add a KV dtype as scheme+kv-fp8.")
                           ] = "bf16,fp8,w4a16,w4a8",
          schemes: OldSchemes = None,
          baseline: Annotated[str | None, typer.Option(help="The scheme speed-ups are relative to.")] = None,
          batch: Annotated[str, typer.Option("--batch", "-b", help="1,2,4,8 or 1:4096 or 1:4096:x2")] = "1:4096:x2",
          prompt_len: Annotated[str, typer.Option(help="List or range, like --batch.")] = "1024",
          context: Annotated[str | None, typer.Option(help="Decode contexts, like --batch.")] = None,
          gen_len: GenLen = 256,
          threshold: Annotated[float, typer.Option(help="A gain below this fraction counts as gone.")] = 0.10,
          as_json: Json = False,
          csv: Annotated[bool, typer.Option("--csv", help="Print CSV, one row per scheme and point.")] = False, *,
          deployment: Deployment) -> None:
    """What int4 / FP8 / a quantized KV cache buys at each batch and context, and why (calibrated mode by default)."""
    if as_json and csv:
        raise InvalidInputError("--json and --csv both given: each prints the whole comparison, so give one",
                                field="csv")
    listed = quant if schemes is None else schemes
    cmp = compare_quant(model, hardware, schemes=[s.strip() for s in listed.split(",") if s.strip()],
                        baseline=baseline, phase=phase, batch=parse_int_list(batch, "batch"),
                        prompt_len=parse_int_list(prompt_len, "prompt-len"),
                        context=None if context is None else parse_int_list(context, "context"), gen_len=gen_len,
                        threshold=threshold, **deployment)
    if as_json:
        cmp.write_json(sys.stdout)  # streamed: a million points never become a million dicts
    elif csv:
        for skipped in cmp.skipped:  # CSV has no place for it; the JSON lists it under "skipped"
            err.print(f"note: {skipped.scheme} skipped: {skipped.reason}", highlight=False, soft_wrap=True)
        cmp.write_csv(sys.stdout)
    else:
        show(render.quant_table(cmp))
        if cmp.request is not None and cmp.request.verdict_changes:
            out.print(_verdict_changes(cmp.request, model, hardware, deployment), highlight=False, soft_wrap=True)


def _verdict_changes(v: RequestView, model: str, hardware: str, deployment: Deployment) -> str:
    """The line that says the prefill turns the ranking round, and the serving runs that settle it under a traffic."""
    at = max(range(len(v.batch)), key=v.batch.__getitem__)
    layout = "".join(f" --{k} {deployment[k]}" for k in ("tp", "ep", "pp", "dp") if k in deployment)
    run = (f"rooflm serving --model {shlex.quote(model)} --hardware {shlex.quote(hardware)}{layout} --concurrency "
           f"{v.batch[at]} --prompt-len {v.prompt_len} --gen-len {v.gen_len} --quant")
    return (f"the prefill changes the verdict: {v.best_on_steps} is fastest on decode steps at batch {v.batch[at]:,}, "
            f"{v.best_on_request} on whole requests ({v.best_on_request} "
            f"{v.speedup[v.best_on_request][at]:.2f}×, {v.best_on_steps} {v.speedup[v.best_on_steps][at]:.2f}× over "
            f"{next(iter(v.speedup))}); compare them under a traffic: {run} {v.best_on_request}, then --quant "
            f"{v.best_on_steps}")


@app.command()
@user_errors
@with_wide
@with_deployment(defaults={"efficiency": REALISTIC_EFFICIENCY})
def explain(model: Model = "llama-3.1-8b", hardware: Hardware = "h100-sxm", phase: Phase = "decode",
            batch: Annotated[int, typer.Option("--batch", "-b")] = 1, prompt_len: int = 1024,
            context: Annotated[int | None, typer.Option(help="Decode: tokens in each cache (default: --prompt-len).")] = None,
            gen_len: GenLen = 256, as_json: Json = False, *, deployment: Deployment) -> None:
    """The step in plain words (Markdown): its regime, what binds, and the levers ranked by predicted gain."""
    e = _explain(model, hardware, phase=phase, batch=batch, prompt_len=prompt_len, context=context, gen_len=gen_len,
                 **deployment)
    if as_json:
        print_json(e.to_json_dict())
    else:
        sys.stdout.write(e.to_markdown() + "\n")


@models_app.command("list")
@user_errors
@with_wide
def models_list(as_json: Json = False) -> None:
    """Catalog models (unsupported architectures are listed with the reason), and the config.json families rooflm
    reads for any other model."""
    if as_json:
        print_json(documents.models_document())
    else:
        show(render.model_table(documents.catalog_models()))
        out.print(f"config.json families read (model_type): {', '.join(families())}", highlight=False)


@models_app.command("show")
@user_errors
@with_wide
def models_show(name: Annotated[str, typer.Argument(help="Catalog name or config.json path.")],
                as_json: Json = False) -> None:
    """Sizes, parameter counts and KV-cache bytes per token of one model."""
    m = load_model(name)
    doc = documents.model_document(m)
    if as_json:
        print_json(doc)
    else:
        show(render.model_table([(m.name, m)]))
        for group, n in m.params_by_group().items():
            out.print(f"  {group:<10} {n:>16,}")
        published = doc["published"]
        if isinstance(published, dict) and published.get("published_params"):
            out.print(f"  published: {published['published_params']:,} ({published.get('params_source', '')})")


@hardware_app.command("list")
@user_errors
@with_wide
def hardware_list(as_json: Json = False) -> None:
    """Catalog devices with their peaks, bandwidth and ridge."""
    if as_json:
        print_json(documents.hardware_list_document())
    else:
        show(render_hardware.hardware_table([load_hardware(n) for n in hardware_names()]))


@hardware_app.command("show")
@user_errors
def hardware_show(name: Annotated[str, typer.Argument(help="Catalog name/alias or a .toml file.")],
                  as_json: Json = False) -> None:
    """Every figure of one device with its source."""
    h = load_hardware(name)
    if as_json:
        print_json(documents.hardware_document(h))
    else:
        show(render_hardware.hardware_detail(h))


def main() -> None:  # pragma: no cover - console entry
    app()


# Commands kept in their own modules (they need optional extras), registered here so that the help lists them in
# this order and no command module imports this one.
app.command()(measure)
app.command()(validate)
app.command("fit")(fit_command)
app.command()(plot)
app.command()(serve)
app.command()(serving)
app.command()(plan)
app.command()(regimes)
