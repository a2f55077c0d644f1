"""Rich tables of the hardware catalog (`rooflm hardware list / show`). Presentation only: every figure comes from a
hardware file or data/kernels.toml, each shown with its source."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from rooflm import units
from rooflm.specs.figures import GemmCurve
from rooflm.specs.hardware import HardwareSpec, grouped
from rooflm.specs.kernels import curves_for

_NAME: dict[str, Any] = {"overflow": "fold", "min_width": 8}


def hardware_table(devices: list[HardwareSpec]) -> Table:
    """The catalog in its groups (accelerators by vendor, then CPUs): a title row per group, a section between groups."""
    table = Table(header_style="bold")
    for col in ("hardware", "kind", "bf16 peak", "best low-precision peak", "memory BW", "memory", "bf16 ridge"):
        table.add_column(col, justify="left" if col in ("hardware", "kind") else "right",
                         **_NAME if col == "hardware" else {})
    for i, (group, members) in enumerate(grouped(devices)):
        if i:
            table.add_section()
        table.add_row(Text(group, style="bold"))
        for h in members:
            _device_row(table, h)
    return table


def _device_row(table: Table, h: HardwareSpec) -> None:
    bf16 = h.peak_flops.get("bf16")
    low = max(((d, f.value) for d, f in h.peak_flops.items() if d in ("fp8", "int8", "fp4", "int4")),
              key=lambda x: x[1], default=None)
    table.add_row(h.name, h.kind, units.rate(bf16.value, "FLOP/s") if bf16 else "–",
                  f"{units.rate(low[1], 'FLOP/s')} ({low[0]})" if low else "–",
                  units.rate(h.memory_bandwidth.value, "B/s"), units.nbytes(h.memory_capacity.value),
                  f"{h.ridge('bf16'):.4g}" if bf16 else "–")


def _figure_table(title: str) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for col in ("figure", "value", "source"):
        table.add_column(col, overflow="fold")
    return table


def _datasheet(h: HardwareSpec) -> Table:
    table = _figure_table(f"{h.display_name} ({h.name})")
    for dtype, fig in h.peak_flops.items():
        table.add_row(f"peak {dtype}", units.rate(fig.value, "FLOP/s"), fig.source)
    table.add_row("memory bandwidth", units.rate(h.memory_bandwidth.value, "B/s"), h.memory_bandwidth.source)
    table.add_row("memory capacity", units.nbytes(h.memory_capacity.value), h.memory_capacity.source)
    for cache, fig in h.caches.items():
        table.add_row(f"cache {cache}", units.binary_bytes(fig.value), fig.source)
    for level in h.levels:  # the memory levels inside DRAM (rooflm.core.levels), innermost first
        table.add_row(f"level {level.name} bandwidth", units.rate(level.bandwidth.value, "B/s"), level.bandwidth.source)
    for label, link in (("intra-node", h.interconnect.intra_node), ("inter-node", h.interconnect.inter_node)):
        if link:
            table.add_row(f"{label} link ({link.name})", units.rate(link.bandwidth.value, "B/s") + " per direction",
                          link.bandwidth.source)
            table.add_row(f"{label} latency", units.seconds(link.latency.value), link.latency.source)
    table.add_row("kernel launch overhead", units.seconds(h.kernel_launch_overhead.value),
                  h.kernel_launch_overhead.source)
    for dtype in h.supported_dtypes:
        table.add_row(f"ridge {dtype}", f"{h.ridge(dtype):.4g} FLOP/B", "peak / bandwidth")
    return table


def curve_text(curve: GemmCurve) -> str:
    """'0.368 at M = 1024 … 0.692 at M = 8192' (a one-point curve: its value at every M)."""
    points = [f"{v:.3g} at M = {m:,.0f}" for m, v in zip(curve.rows, curve.value, strict=True)]
    return points[0] if len(points) == 1 else f"{points[0]} … {points[-1]} ({len(points)} points)"


def _calibrated(h: HardwareSpec) -> Table:
    """The fractions and engine costs `--efficiency calibrated` uses beside the kernel families."""
    e, table = h.efficiency, _figure_table("calibrated mode: flat fractions and engine costs")
    table.add_row("memory (flat)", f"{e.memory.value:.3g} of the bandwidth", e.memory.source)
    for dtype, fig in e.compute.items():
        table.add_row(f"compute {dtype} (flat)", f"{fig.value:.3g} of the peak", fig.source)
    for dtype, curve in e.compute_curve.items():
        table.add_row(f"GEMM compute {dtype} vs M", curve_text(curve), curve.source)
    for kind, fig in e.memory_by_kind.items():
        table.add_row(f"memory ({kind})", f"{fig.value:.3g} of the bandwidth", fig.source)
    for kind, fig in e.kernel_overhead_by_kind.items():
        table.add_row(f"kernel overhead ({kind})", units.seconds(fig.value), fig.source)
    table.add_row("kernel launch (eager)", units.seconds(e.kernel_overhead.value), e.kernel_overhead.source)
    if h.runtime is not None:
        r = h.runtime
        table.add_row("kernel launch (CUDA graph)", units.seconds(r.graph_kernel_overhead.value),
                      r.graph_kernel_overhead.source)
        table.add_row("per-step CPU cost", units.seconds(r.step_overhead.value), r.step_overhead.source)
        table.add_row("runtime memory reserve", units.nbytes(r.memory_reserve.value), r.memory_reserve.source)
    return table


def _kernel_families(h: HardwareSpec) -> Table | None:
    """The measured kernel families of the device (its own, then its class's): what times its GEMMs and attention in
    calibrated mode."""
    cls = h.efficiency.kernel_class
    curves = curves_for(cls, h.efficiency.kernel_families)
    if not curves:
        return None
    title = (f"the {cls} class (data/kernels.toml)" if cls else "this device") + \
        (", measured on this device where the file has them" if cls and h.efficiency.kernel_families else "")
    table = _figure_table(f"calibrated mode: kernel families of {title}")
    for family, c in curves.items():
        table.add_row(f"{family}: memory", f"{c.memory.value:.3g} of the bandwidth", c.memory.source)
        table.add_row(f"{family}: fill", f"{units.seconds(c.fill.value)} per kernel", c.fill.source)
        if c.compute is not None:
            table.add_row(f"{family}: compute vs M", curve_text(c.compute), c.compute.source)
    return table


def hardware_detail(h: HardwareSpec) -> Group:
    """Every figure of one device with its source: the datasheet, then what calibrated mode takes from measurements."""
    tables = [_datasheet(h), _calibrated(h), _kernel_families(h)]
    return Group(*(t for t in tables if t is not None))
