"""Rich tables for the CLI. Presentation only: every number comes from a report."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from rooflm import units
from rooflm.analyses.critical import CriticalBatch
from rooflm.analyses.quant_comparison import QuantComparison, RequestView
from rooflm.analyses.report import Expectation, Report
from rooflm.analyses.sweep import SweepResult
from rooflm.cli.options import flag
from rooflm.cli.output import droppable
from rooflm.core.memory import overflow_text, parts_text
from rooflm.specs.model import ModelSpec
from rooflm.units import mode_label

BOUND_STYLE = {"compute": "bold green", "memory": "bold yellow", "communication": "bold magenta",
               "overhead": "bold red"}


# A column of names: too narrow, a name is folded onto the next line, never cut short with "…".
_NAME: dict[str, Any] = {"overflow": "fold", "min_width": 8}


def _bound(b: str) -> Text:
    return Text(b, style=BOUND_STYLE.get(b, ""))


def _workload_line(r: Report) -> str:
    if r.phase == "prefill":
        what = f"prefill of {r.batch} × {r.prompt_len} tokens"
    elif r.phase == "decode":
        what = f"one decode step, batch {r.batch}, context {r.context}"
    else:
        what = f"{r.batch} requests: {r.prompt_len}-token prompts, {r.gen_len} output tokens each"
    where = r.hardware if r.layout.devices == 1 else f"{r.layout.devices}× {r.hardware} ({r.layout.label}; per device)"
    return (f"{r.model} on {where} · {what} · {r.quant} (weights {r.weight_dtype}, activations "
            f"{r.activation_dtype}, KV {r.kv_dtype}, math on the {r.compute_dtype} roof) · "
            f"{mode_label(r.efficiency, r.engine_kernels)}")


def _expected(e: Expectation) -> Text:
    latency = "" if e.ttft_s is None else (f" (TTFT {units.seconds(e.ttft_s)}, TPOT "
                                           f"{units.seconds(e.tpot_s) if e.tpot_s is not None else '–'})")
    return Text.assemble(f"{units.seconds(e.time_s)}{latency}, ", _bound(e.bound), "-bound, ",
                         units.rate(e.tokens_per_s, "tok/s"))


def analysis(r: Report) -> Group:
    t = r.totals
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("time", units.seconds(t.time_s))
    if t.ttft_s is not None:
        summary.add_row("time to first token", units.seconds(t.ttft_s))
    if t.tpot_s is not None:
        summary.add_row("time per output token", units.seconds(t.tpot_s))
    summary.add_row("bound", _bound(t.bound))
    if t.calibrated is not None:  # the roofline's companion: what an engine is expected to take
        summary.add_row(f"expected ({t.calibrated.efficiency})", _expected(t.calibrated))
    summary.add_row("tokens/s", units.rate(t.tokens_per_s, "tok/s"))
    if t.output_tokens_per_s is not None:
        summary.add_row("output tokens/s", units.rate(t.output_tokens_per_s, "tok/s"))
    summary.add_row("FLOPs", units.flops(t.flops))
    summary.add_row("bytes", f"{units.nbytes(t.bytes)} (weights {units.nbytes(t.weight_bytes)}, activations "
                    f"{units.nbytes(t.activation_bytes)}, KV {units.nbytes(t.kv_bytes)})")
    summary.add_row("arithmetic intensity", f"{t.arithmetic_intensity:.3g} FLOP/B (ridge {t.ridge_intensity:.4g})")
    summary.add_row("time if only math", units.seconds(t.compute_time_s))
    summary.add_row("time if only bytes", units.seconds(t.memory_time_s))
    if t.comm_time_s:
        summary.add_row("time if only links", units.seconds(t.comm_time_s))
    if t.overhead_time_s:
        summary.add_row("launch overhead", units.seconds(t.overhead_time_s))

    # A mix (a checkpoint's native scheme, or --quant experts=...,attention=...) runs operators in different schemes:
    # only then does the table say which one each operator ran in.
    mixed = len(set(r.quant_modules.values())) > 1
    ops = Table(title="operators (all layers together)", title_justify="left", header_style="bold")
    for col in ("operator", *(("scheme",) if mixed else ()), "×", "FLOPs", "bytes", "AI", "time", "share", "bound"):
        ops.add_column(col, justify="left" if col in ("operator", "scheme", "bound") else "right",
                       **_NAME if col == "operator" else {})
    for o in r.operators:
        share = o.time_s / t.time_s if t.time_s else 0.0
        ops.add_row(o.name, *((_scheme_cell(o.scheme, o.weight_dtype),) if mixed else ()), str(o.count),
                    units.flops(o.flops), units.nbytes(o.bytes), f"{o.arithmetic_intensity:.3g}",
                    units.seconds(o.time_s), f"{share:.1%}", _bound(o.bound))

    m = r.memory
    sizes = (m.weights_bytes, m.kv_cache_bytes, m.activation_bytes, m.capacity_bytes)
    short = overflow_text(*sizes, state=m.state_bytes)
    fits = Text("fits", style="green") if m.fits else Text(
        f"does not fit: {units.nbytes(m.shortfall_bytes)} short; {short}", style="bold red")
    mem = Text.assemble(f"{parts_text(*sizes, state=m.state_bytes)}: ", fits,
                        f" · largest batch at this context: {m.max_batch}")
    if suggestions := m.suggestion_lines(flag):
        mem.append("\nwould fit with: " + "; ".join(suggestions))
    # On a narrow terminal each operator's time, share and bound stay; its count and intensity go first.
    droppable(ops, "×", "AI", "FLOPs", "scheme", "bytes")
    parts: list[RenderableType] = [Text(_workload_line(r), style="bold"), Panel(summary, title="step", title_align="left"), ops]
    if r.moe:
        parts.append(Panel(_moe_text(r), title="experts (one MoE layer)", title_align="left"))
    parts.append(Panel(mem, title="memory per device", title_align="left"))
    return Group(*parts)


def _scheme_cell(scheme: str | None, weight_dtype: str | None) -> str:
    """An operator's scheme, with its weight dtype when the name does not say it (mxfp4 stores fp4); blank for no weights."""
    if scheme is None:
        return ""
    return scheme if weight_dtype in (None, scheme) else f"{scheme} ({weight_dtype})"


def _moe_text(r: Report) -> Text:
    e = r.moe
    assert e is not None
    crossover = (f"routed-expert GEMMs turn compute-bound at a global batch of {e.expert_critical_batch}"
                 if e.expert_critical_batch else "routed-expert GEMMs never turn compute-bound")
    return Text(
        f"{e.tokens_per_step:.4g} tokens routed (top-{e.top_k} of {e.num_experts}) hit {e.distinct_experts:.4g} distinct "
        f"experts, {e.experts_read_per_device:.4g} read per device; each sees {e.tokens_per_expert:.4g} tokens "
        f"(the M of its GEMMs). {crossover}. Assumed: {e.routing}."
    )


def shown_rows(n: int, limit: int) -> list[int]:
    """The rows a table of ``n`` shows: all of them, or the first and last ``limit // 2`` (a "…" row between)."""
    return list(range(n)) if n <= limit else [*range(limit // 2), *range(n - limit // 2, n)]


def sweep_table(s: SweepResult, limit: int = 40) -> Table:
    table = Table(title=f"{s.model} on {s.hardware} ({s.layout}) · {s.phase} · {s.quant} · "
                        f"{mode_label(s.efficiency, s.engine_kernels)} · "
                        f"{len(s)} points",
                  title_justify="left", header_style="bold")
    axes = list(s.axes)
    for a in axes:
        table.add_column(a, justify="right")
    experts = "tokens_per_expert" in s.columns
    expected = "calibrated_time_s" in s.columns  # an ideal sweep: the calibrated expectation beside each point
    for col in ("time", "tokens/s", "AI", "bound", *(("calibrated", "cal. bound") if expected else ()),
                *(("tokens/expert", "experts") if experts else ()), "fits"):
        table.add_column(col, justify="right")
    n = len(s)
    for i, row in enumerate(shown_rows(n, limit)):
        if n > limit and i == limit // 2:
            table.add_row(*(["…"] * len(table.columns)))
        c = s.columns
        expert_cells = (f"{c['tokens_per_expert'][row]:.3g}", _bound(str(c["expert_bound"][row]))) if experts else ()
        expected_cells = (units.seconds(float(c["calibrated_time_s"][row])),
                          _bound(str(c["calibrated_bound"][row]))) if expected else ()
        table.add_row(*(str(s.axes[a][row]) for a in axes), units.seconds(float(c["time_s"][row])),
                      units.rate(float(c["tokens_per_s"][row]), "tok/s"), f"{c['arithmetic_intensity'][row]:.3g}",
                      _bound(str(c["bound"][row])), *expected_cells, *expert_cells, "yes" if c["fits"][row] else "no")
    return table


def critical_batch_table(cb: CriticalBatch) -> Group:
    out_of_reach = cb.critical_batch is None and cb.critical_batch_unconstrained is not None
    head = Text.assemble(
        f"{cb.model} on {cb.hardware} ({cb.layout}) · {cb.quant} · decode at context {cb.context} · "
        f"{mode_label(cb.efficiency)}\n",
        "weight GEMMs turn compute-bound at batch ",
        Text(str(cb.critical_batch_unconstrained or "never"), style="bold"),
        f" (ridge {cb.ridge_intensity:.4g} FLOP/B)",
        Text(" — beyond what fits in memory" if out_of_reach else "", style="bold red"),
        "" if cb.expert_critical_batch is None else "\nrouted experts turn compute-bound at batch ",
        Text("" if cb.expert_critical_batch is None else str(cb.expert_critical_batch), style="bold"),
        Text(" — beyond what fits in memory" if (cb.expert_critical_batch or 0) > cb.max_batch else "",
             style="bold red"),
        f"\nmemory allows batch ≤ {cb.max_batch}",
    )
    table = Table(header_style="bold")
    for col in ("GEMM", "K × N", "critical batch"):
        table.add_column(col, justify="left" if col == "GEMM" else "right", **_NAME if col == "GEMM" else {})
    for g in cb.per_gemm:
        table.add_row(g.name, f"{g.weight_shape[0]} × {g.weight_shape[1]}", str(g.critical_batch or "never"))
    return Group(head, table)


def model_table(models: list[tuple[str, ModelSpec | str]]) -> Table:
    table = Table(header_style="bold")
    for col in ("model", "type", "params", "layers", "hidden", "heads q/kv × dim", "KV/token (bf16)"):
        table.add_column(col, justify="left" if col in ("model", "type") else "right", **_NAME if col == "model" else {})
    for name, m in models:
        if isinstance(m, str):
            table.add_row(name, Text(m, style="dim"), *([""] * 5))
            continue
        table.add_row(name, m.model_type, f"{m.total_params / 1e9:.3f} B", str(m.num_layers), str(m.hidden_size),
                      f"{m.num_q_heads}/{m.num_kv_heads} × {m.head_dim}", units.kib(m.kv_bytes_per_token()))
    return table


NO_FIT = " ✗"  # marks a point whose workload does not fit in device memory


def _kv_dtype(label: str) -> str:
    """The KV-cache dtype in a scheme's label (QuantScheme.label adds "+kv-<dtype>" unless it is bf16)."""
    return label.partition("+kv-")[2] or "bf16"


def _quant_title(cmp: QuantComparison) -> Text:
    base = cmp.results[cmp.baseline]
    kv = {s: _kv_dtype(r.quant) for s, r in cmp.results.items()}
    others = [f"{s}: {k}" for s, k in kv.items() if k != kv[cmp.baseline]]
    cache = f"KV cache {kv[cmp.baseline]}" + (f" ({', '.join(others)})" if others else "")
    given = "".join(f" · {k}={v}" for k, v in cmp.overrides.items())
    return Text(f"{cmp.model} on {cmp.hardware} ({base.layout}) · {cmp.compares} · speed-up over {cmp.baseline} · {cache} · "
                f"{mode_label(cmp.efficiency, cmp.engine_kernels)}{given}", style="bold")


def _fit_mark(text: str, fits: bool, style: str = "") -> Text:
    cell = Text(text, style=style)
    if not fits:
        cell.append(NO_FIT, style="bold red")
    return cell


def request_line(v: RequestView) -> str:
    """Each scheme's speed-up on a whole request at the largest batch: the decode table weighs steps only."""
    at = max(range(len(v.batch)), key=v.batch.__getitem__)
    gains = ", ".join(f"{s} {sp[at]:.2f}×" for s, sp in v.speedup.items())
    return (f"whole request (prefill of {v.prompt_len:,} tokens + {v.gen_len:,} decode steps, analyze --phase e2e) "
            f"at batch {v.batch[at]:,}: {gains}")


def quant_table(cmp: QuantComparison, limit: int = 60) -> Group:
    """Speed-up of each scheme over the baseline, per context and batch (✗ where the workload does not fit in
    memory), then where the gains fade and why. Past ``limit`` points the table shows the first and last rows
    (`--csv` or `--json` give them all): a 262,144-point table is for no one to read."""
    base = cmp.results[cmp.baseline]
    schemes = [s for s in cmp.results if s != cmp.baseline]
    table = Table(header_style="bold")
    axes = [a for a in base.axes if a != "gen_len"]
    for a in axes:
        table.add_column(a, justify="right")
    table.add_column(f"{cmp.baseline} time", justify="right")
    for s in schemes:
        table.add_column(s, justify="right")
    table.add_column("still memory-bound", justify="left", **_NAME)
    last = schemes[-1] if schemes else cmp.baseline
    n = len(base)
    rows = shown_rows(n, limit)
    classes = dict(zip(rows, cmp.memory_bound_classes(last, rows=np.asarray(rows, dtype=np.int64)), strict=True))
    fits = {s: cmp.fits[s].tolist() for s in cmp.results}
    for shown, i in enumerate(rows):
        if n > limit and shown == limit // 2:
            table.add_row(*(["…"] * len(table.columns)))
        cells: list[str | Text] = [str(base.axes[a][i]) for a in axes]
        cells.append(_fit_mark(units.seconds(float(base.columns["time_s"][i])), fits[cmp.baseline][i]))
        for s in schemes:
            sp = float(cmp.speedup[s][i])
            style = "green" if sp >= 1 + cmp.threshold else "red" if sp < 1 else ""
            cells.append(_fit_mark(f"{sp:.2f}×", fits[s][i], style))
        cells.append(", ".join(classes[i]) or "–")
        table.add_row(*cells)
    legend = Text()
    for skipped in cmp.skipped:
        legend.append(f"{skipped.scheme} not compared: {skipped.reason}\n", style="yellow")
    if not all(all(f) for f in fits.values()):
        legend.append(f"{NO_FIT.strip()} does not fit in device memory at this point (weights + KV cache + activations "
                      "exceed the capacity per device): its time is what it would take, not what this layout can run.\n",
                      style="bold red")
    lines = Text()
    for summary in cmp.summaries:
        where = f" at context {summary.context}" if len(cmp.summaries) > len(schemes) else ""
        fade = (f"gain below {cmp.threshold:.0%} from batch {summary.batch_gain_below_threshold}"
                if summary.batch_gain_below_threshold else f"gain stays above {cmp.threshold:.0%}")
        loss = (f"; slower than {cmp.baseline} from batch {summary.batch_slower_than_baseline}"
                if summary.batch_slower_than_baseline else "")
        lines.append(f"{summary.scheme}{where}: {summary.speedup_at_smallest_batch:.2f}× at the smallest batch, "
                     f"{summary.speedup_at_largest_batch:.2f}× at the largest; {fade}{loss}\n")
    if cmp.request is not None:
        lines.append(request_line(cmp.request) + "\n")
    droppable(table, "still memory-bound", "context")  # the speed-ups stay; the why, then a fixed axis, go first
    # The header is a line of its own: as the table's title it would wrap at the table's width.
    return Group(_quant_title(cmp), table, legend, lines,
                 Text(f'"still memory-bound" lists the operator classes of {last} that spend most '
                      "of their time on bytes: only there can saved bytes buy time.", style="dim"))
