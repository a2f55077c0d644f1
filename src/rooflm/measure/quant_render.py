"""The tables `rooflm validate --quant` prints: times per scheme and batch, measured vs predicted speed-ups."""

from __future__ import annotations

import statistics

from rich.table import Table

from rooflm import units
from rooflm.measure.quant import KERNELS, SINGLE_GEMM, QuantSample, Speedup

CASES = {"gemm": f"one {SINGLE_GEMM} GEMM", "decode": "a decode step's layer GEMMs"}


def quant_table(samples: list[QuantSample], gains: list[Speedup], case: str) -> Table:
    schemes = list(dict.fromkeys(s.scheme for s in samples))
    table = Table(title=f"{CASES[case]}: measured (median) · speed-up over bf16 measured / predicted (calibrated, "
                        "ideal)", header_style="bold")
    table.add_column("batch", justify="right")
    for scheme in schemes:
        table.add_column(f"{scheme} ({KERNELS[scheme]})", justify="right")
    by = {(s.scheme, s.batch): s for s in samples if s.case == case}
    gain = {(g.scheme, g.batch): g for g in gains if g.case == case}
    for batch in sorted({s.batch for s in samples if s.case == case}):
        cells = []
        for scheme in schemes:
            s, g = by.get((scheme, batch)), gain.get((scheme, batch))
            text = "" if s is None else units.seconds(s.measured_s)
            if g is not None:
                text += f" · {g.measured:.2f}× / {g.predicted:.2f}×, {g.ideal:.2f}×"
            cells.append(text)
        table.add_row(str(batch), *cells)
    return table


def error_line(gains: list[Speedup]) -> str:
    """Median and worst |predicted / measured − 1| of the speed-ups, per scheme."""
    parts = []
    for scheme in dict.fromkeys(g.scheme for g in gains):
        errors = [abs(g.error) for g in gains if g.scheme == scheme]
        parts.append(f"{scheme}: median {statistics.median(errors):.0%}, worst {max(errors):.0%} ({len(errors)} points)")
    return "speed-up error |predicted / measured − 1|: " + "; ".join(parts)
