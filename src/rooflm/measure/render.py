"""Tables for `rooflm measure` and `rooflm validate` (presentation only: every number comes computed)."""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from rooflm.measure.calibrate import Calibration
from rooflm.measure.results import Measurements
from rooflm.measure.validate import CaseResult, ErrorStats, GemmResult, Summary, TableValidation
from rooflm.units import rate, seconds


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:+.0%}" if x < 0 else f"+{x:.0%}"


def _abs_pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


def measurement(m: Measurements, cal: Calibration) -> Group:
    mc = m.machine
    head = Text(f"{mc.device_name} · {mc.describe()}", style="bold")
    roofs = Table(title="roofline (fastest runs) and overheads", title_justify="left")
    for col in ("figure", "value", "how"):
        roofs.add_column(col)
    roofs.add_row("memory bandwidth", rate(cal.memory_bandwidth, "B/s"), cal.bandwidth_note)
    for dtype, peak in cal.peak_flops.items():
        ridge = peak / cal.memory_bandwidth
        roofs.add_row(f"peak {dtype}", rate(peak, "FLOP/s"), f"ridge {ridge:.1f} FLOP/B · {cal.peak_notes[dtype]}")
    roofs.add_row("kernel dispatch", seconds(cal.dispatch_overhead_s), "one-element add")
    roofs.add_row("overhead per operator", seconds(cal.op_overhead_s), cal.overhead_note)
    roofs.add_row("overhead per forward", seconds(cal.step_overhead_s), "charged to the embedding")
    roofs.add_row("η memory", f"{cal.memory_efficiency:.2f}", cal.memory_efficiency_note)
    curve = Table(title="GEMM curve: one decoder layer's GEMMs, weights cold (the empirical roofline)",
                  title_justify="left")
    for col in ("dtype", "M", "intensity FLOP/B", "achieved", "bandwidth", "η compute (fitted)", "spread"):
        curve.add_column(col, justify="right")
    for p in m.curve:
        fitted = cal.compute_curve.get(p.dtype)
        eta = fitted[1][fitted[0].index(p.m)] if fitted and p.m in fitted[0] else None
        curve.add_row(p.dtype, str(p.m), f"{p.arithmetic_intensity:.1f}", rate(p.median_flops_per_s, "FLOP/s"),
                      rate(p.median_bytes_per_s, "B/s"), "—" if eta is None else f"{eta:.2f}", f"{p.run.spread:.0%}")
    parts: list[Table | Text] = [head, roofs, curve]
    if m.skipped:
        parts.append(Text("not measured: " + "; ".join(f"{k} ({v})" for k, v in m.skipped.items()), style="dim"))
    return Group(*parts)


SHORT_BOUND = {"compute": "comp", "memory": "mem", "overhead": "ovh", "communication": "comm"}


def _t(x: float) -> str:
    """Seconds in 3 significant digits without a space (288µs, 16.4ms, 1.27s): the tables must fit 80 columns."""
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if x >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x / 1e-9:.3g}ns"


def _table(title: str) -> Table:
    return Table(title=title, title_justify="left", caption_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                 padding=(0, 2, 0, 0))


def _size(c: CaseResult) -> str:
    """Decode: C = tokens in each cache; prefill: L = tokens per prompt (the phase is read from the letter)."""
    return f"C={c.context}" if c.phase == "decode" else f"L={c.prompt_len}"


def cases_table(cases: list[CaseResult]) -> Table:
    t = _table("steps: measured vs predicted (ideal = a lower bound; calibrated = with the measured factors)")
    for col in ("model", "B", "size", "measured", "ideal", "calib.", "error", "bound p/m"):
        t.add_column(col, justify="left" if col in ("model", "bound p/m") else "right", no_wrap=True)
    for c in cases:
        match = {True: "✓", False: "✗", None: ""}[c.bound_match]
        bounds = f"{SHORT_BOUND.get(c.predicted_bound, c.predicted_bound)}/{SHORT_BOUND.get(c.measured_bound or '', '—')}"
        t.add_row(c.model, str(c.batch), _size(c), _t(c.measured_s), _t(c.ideal_s), _t(c.predicted_s),
                  _pct(c.error), f"{bounds} {match}")
    t.caption = ("B = batch; C = cached tokens (a decode step), L = prompt tokens (a prefill); bound p/m = "
                 "predicted/measured (comp = compute, "
                 "mem = memory, ovh = overhead), the measured one read from how the time grows along the sweep")
    return t


def classes_table(cases: list[CaseResult]) -> Table | None:
    """Per operator class: measured from the profiler's aten events (framework Python lands in "other")."""
    rows = [c for c in cases if c.measured_by_class]
    if not rows:
        return None
    t = _table("per operator class")
    t.caption = "measured (profiler: GEMMs = aten::linear, attention = SDPA + cache write, other = the rest)/calibrated"
    for col in ("model", "B", "size", "GEMMs", "attention", "other"):
        t.add_column(col, justify="left" if col == "model" else "right", no_wrap=True)
    for c in rows:
        cells = [f"{_t(c.measured_by_class[k])}/{_t(c.predicted_by_class.get(k, 0.0))}"
                 for k in ("gemm", "attention", "other")]
        t.add_row(c.model, str(c.batch), _size(c), *cells)
    return t


def gemm_table(gemms: list[GemmResult]) -> Table:
    t = _table("single GEMMs, weights cold: measured vs rooflm's GEMM operator")
    for col in ("M", "K", "N", "measured", "ideal", "calibrated", "error", "bound"):
        t.add_column(col, justify="right", no_wrap=True)
    for g in gemms:
        t.add_row(str(g.m), str(g.k), str(g.n), _t(g.measured_s), _t(g.ideal_s), _t(g.predicted_s), _pct(g.error),
                  g.predicted_bound)
    return t


def summary_table(s: Summary) -> Table:
    t = _table("absolute errors |predicted − measured| / measured")
    for col in ("cases", "n", "median calibrated", "worst calibrated", "median ideal", "ideal > measured"):
        t.add_column(col, justify="right" if col != "cases" else "left")
    rows: list[tuple[str, ErrorStats]] = [("decode", s.decode), ("prefill", s.prefill), ("all steps", s.all),
                                          ("single GEMMs", s.gemm)]
    for label, st in (row for row in rows if row[1].n):
        t.add_row(label, str(st.n), _abs_pct(st.median_abs_error), _abs_pct(st.worst_abs_error),
                  _abs_pct(st.ideal_median_abs_error), str(st.ideal_violations))
    return t


def table_points(v: TableValidation) -> Table:
    """`rooflm validate --table`: each row's measured vs predicted seconds, then median and worst |error|."""
    name = "the catalog's calibrated mode" if v.profile is None else f"profile {v.profile['name']}"
    t = _table(f"measurement table vs rooflm ({name})")
    for col in ("line", "model", "hardware", "phase", "B", "size", "measured", "predicted", "error"):
        t.add_column(col, justify="left" if col in ("model", "hardware", "phase") else "right", no_wrap=True)
    for p in v.points:
        size = f"C {p.context}" if p.phase == "decode" else f"L {p.prompt_len}"
        t.add_row(str(p.line), p.model, p.hardware, p.phase, str(p.batch), size, _t(p.measured_s), _t(p.predicted_s),
                  _pct(p.error))
    t.caption = (f"|error| median {_abs_pct(v.median_abs)}, worst {_abs_pct(v.max_abs)} over {len(v.points)} rows; "
                 "measured = the row's step (or request) in seconds (tokens_per_s turned into seconds)")
    return t
