"""`rooflm regimes`: the seed's regime table for a model × device × scheme, with what int4 weights buy per row."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from rooflm import units
from rooflm.analyses.regimes import DECODE_CONTEXT, INT4_SCHEME, MOE_DECODE_BATCH, SMALL_PREFILL_TOKENS, Regimes, intensity_text
from rooflm.analyses.regimes import regimes as _regimes
from rooflm.analyses.report import mode_name
from rooflm.cli.options import Hardware, Json, Model, with_deployment
from rooflm.cli.output import print_json, show, user_errors
from rooflm.core.inputs import Deployment


def _speedup(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}×"


def regimes_table(r: Regimes) -> Group:
    mode = mode_name(r.efficiency, r.engine_kernels)
    head = Text(f"{r.model} on {r.hardware} · {r.quant} · {mode} mode · the seed's regimes, computed")
    table = Table(header_style="bold")
    for col in ("regime", "workload", "FLOP/B", "bound", "level", "step time", "vs bf16",
                f"{INT4_SCHEME} vs bf16", "seed says", "agrees"):
        table.add_column(col, justify="left" if col in ("regime", "workload", "bound", "level", "seed says")
                         else "right")
    for g in r.regimes:
        agrees = {True: Text("yes", style="green"), False: Text("no", style="bold red"), None: Text("—")}
        table.add_row(g.name, g.workload, intensity_text(g.arithmetic_intensity), g.bound, g.level or "—",
                      units.seconds(g.time_s), _speedup(g.scheme_speedup), _speedup(g.quant_speedup), g.seed_claim,
                      agrees[g.agrees_with_seed])
    notes = [Text(f"{g.name}: {g.note}") for g in r.regimes]
    return Group(head, table, *notes)


@user_errors
@with_deployment()
def regimes(model: Model = "llama-3.1-8b", hardware: Hardware = "h100-sxm",
            context: Annotated[int, typer.Option(help="Decode rows: tokens in each cache.")] = DECODE_CONTEXT,
            small_prefill: Annotated[int, typer.Option(help="Small-batch prefill: tokens of its one prompt.")]
            = SMALL_PREFILL_TOKENS,
            moe_batch: Annotated[int, typer.Option(help="MoE row: the decode batch.")] = MOE_DECODE_BATCH,
            as_json: Json = False, *, deployment: Deployment) -> None:
    """The regime table: what binds batch-1 decode, small and large prefill and MoE decode, and what int4 buys.

    Batch-1 decode, small and large prefill, MoE with few tokens per expert: intensity, bound, binding level,
    time and the int4 speed-up per regime, and where the seed's table is contradicted."""
    result = _regimes(model, hardware, context=context, small_prefill=small_prefill, moe_batch=moe_batch,
                      **deployment)
    if as_json:
        print_json(result.to_json_dict())
    else:
        show(regimes_table(result))
