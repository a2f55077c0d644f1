"""The serving figure (PNG, SVG, PDF): the latency–throughput curve of one deployment as its load grows.

Left, each load's point at (output tokens/s per user, output tokens/s per GPU): the trade between interactivity
and throughput, labelled with its concurrency (or request rate), its marker the bound. Right, TTFT and TPOT
against the load (means; p99 dashed when simulated).
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from rooflm.plot import style
from rooflm.plot.mpl_base import FS, WHITE_BOX, log_axis, new_figure, wrap_title
from rooflm.plot.serving_data import ServingData

LOAD_WORDS: dict[str, str] = {"concurrency": "concurrency (users)", "request_rate": "request rate (requests/s)"}
LOAD_SHORT: dict[str, str] = {"concurrency": "", "request_rate": "/s"}


def _drawn(xs: Sequence[float | None], ys: Sequence[float | None]) -> list[int]:
    """Indices of the points with both coordinates (an overloaded point may have no TPOT, so no per-user rate)."""
    return [i for i, (x, y) in enumerate(zip(xs, ys, strict=True)) if x is not None and y is not None and x > 0 < y]


def serving(d: ServingData) -> Figure:
    fig, (ax_c, ax_l) = new_figure(2)
    title, lines = wrap_title(d.title)
    extra = 0.04 * (lines - 1)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.84 - extra, bottom=0.12, wspace=0.28)
    fig.suptitle(title, fontsize=FS + 1, x=0.08, ha="left")
    colour = style.SERIES_COLOURS[0]
    # Left: the curve, one point per load.
    idx = _drawn(d.tokens_per_s_per_user, d.tokens_per_s_per_gpu)
    xs = [float(d.tokens_per_s_per_user[i] or 0) for i in idx]
    ys = [float(d.tokens_per_s_per_gpu[i] or 0) for i in idx]
    ax_c.plot(xs, ys, "-", color=colour, linewidth=2.2, zorder=2)
    for i, x, y in zip(idx, xs, ys, strict=True):
        ax_c.plot([x], [y], style.SERVING_BOUND_MARKERS.get(d.bound[i], ("o", ""))[0], markersize=9, color=colour,
                  zorder=3)
        ax_c.annotate(f"{d.loads[i]:g}{LOAD_SHORT[d.load]}", (x, y), xytext=(6, 6), textcoords="offset points",
                      fontsize=FS - 3, bbox=WHITE_BOX, zorder=4)
    if xs:
        log_axis(ax_c, "x", fine=True)
        log_axis(ax_c, "y", fine=True)
    ax_c.set_xlabel("output tokens/s per user (interactivity)", fontsize=FS + 1)
    ax_c.set_ylabel("output tokens/s per GPU (throughput)", fontsize=FS + 1)
    # Right: latencies against the load.
    for values, p99, name, c in ((d.ttft_s, d.ttft_p99_s, "TTFT", style.OKABE_ITO["vermillion"]),
                                 (d.tpot_s, d.tpot_p99_s, "TPOT", style.OKABE_ITO["bluish_green"])):
        for series, dash, label in ((values, "-", f"{name} mean"), (p99, "--", f"{name} p99")):
            keep = _drawn(d.loads, series)
            if keep:
                ax_l.plot([d.loads[i] for i in keep], [float(series[i] or 0) * 1e3 for i in keep], dash, color=c,
                          linewidth=2.2 if dash == "-" else 1.4, marker="o" if dash == "-" else "", markersize=5,
                          label=label)
    if d.loads:
        log_axis(ax_l, "x", base=2 if d.load == "concurrency" else 10)
        log_axis(ax_l, "y", fine=True)
    ax_l.set_xlabel(LOAD_WORDS[d.load], fontsize=FS + 1)
    ax_l.set_ylabel("latency (ms)", fontsize=FS + 1)
    ax_l.legend(loc="upper left", fontsize=FS - 2, frameon=False)
    bounds = list(dict.fromkeys(d.bound[i] for i in idx))
    handles = [Line2D([], [], color="#444444", marker=style.SERVING_BOUND_MARKERS.get(b, ("o", ""))[0], linestyle="",
                      label=style.SERVING_BOUND_LABELS.get(b, b)) for b in bounds]
    if handles:
        fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.08, 0.93 - extra), ncol=min(5, len(handles)),
                   fontsize=FS - 2, frameon=False)
    return fig
