"""`rooflm regimes`: the usual rule of thumb's regime table for a model × device × scheme, with what int4 buys per row."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from rooflm import units
from rooflm.analyses.regimes import DECODE_CONTEXT, INT4_SCHEME, MOE_DECODE_BATCH, SMALL_PREFILL_TOKENS, Regimes, intensity_text
from rooflm.analyses.regimes import regimes as _regimes
from rooflm.cli.options import Hardware, Json, Model, with_deployment
from rooflm.cli.output import droppable, print_json, show, user_errors, with_wide
from rooflm.core.inputs import Deployment
from rooflm.units import mode_label


def _speedup(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}×"


def regimes_table(r: Regimes) -> Group:
    mode = mode_label(r.efficiency, r.engine_kernels)
    head = Text(f"{r.model} on {r.hardware} · {r.quant} · {mode} · the rule of thumb's regimes, computed")
    table = Table(header_style="bold")
    for col in ("regime", "workload", "FLOP/B", "bound", "level", "step time", "vs bf16",
                f"{INT4_SCHEME} vs bf16", "rule of thumb", "agrees"):
        table.add_column(col, justify="left" if col in ("regime", "workload", "bound", "level", "rule of thumb")
                         else "right")
    for g in r.regimes:
        agrees = {True: Text("yes", style="green"), False: Text("no", style="bold red"), None: Text("—")}
        table.add_row(g.name, g.workload, intensity_text(g.arithmetic_intensity), g.bound, g.level or "—",
                      units.seconds(g.time_s), _speedup(g.scheme_speedup), _speedup(g.quant_speedup),
                      g.rule_of_thumb, agrees[g.agrees_with_rule_of_thumb])
    notes = [Text(f"{g.name}: {g.note}") for g in r.regimes]
    # On a narrow terminal the regime, its bound and what int4 buys stay; the scheme's own ratio goes first.
    return Group(head, droppable(table, "vs bf16", "level", "FLOP/B", "step time", "workload"), *notes)


@user_errors
@with_wide
@with_deployment()
def regimes(model: Model = "llama-3.1-8b", hardware: Hardware = "h100-sxm",
            context: Annotated[int, typer.Option(help="Decode rows: tokens in each cache.")] = DECODE_CONTEXT,
            small_prefill: Annotated[int, typer.Option(help="Small-batch prefill: tokens of its one prompt.")]
            = SMALL_PREFILL_TOKENS,
            moe_batch: Annotated[int, typer.Option(help="MoE row: the decode batch.")] = MOE_DECODE_BATCH,
            as_json: Json = False, *, deployment: Deployment) -> None:
    """The regime table: what binds batch-1 decode, small and large prefill and MoE decode, and what int4 buys.

    Batch-1 decode, small and large prefill, MoE with few tokens per expert: intensity, bound, binding level,
    time and the int4 speed-up per regime, and where the rule of thumb is contradicted."""
    result = _regimes(model, hardware, context=context, small_prefill=small_prefill, moe_batch=moe_batch,
                      **deployment)
    if as_json:
        print_json(result.to_json_dict())
    else:
        show(regimes_table(result))
