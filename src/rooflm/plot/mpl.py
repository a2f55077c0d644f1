"""Static figures (PNG, SVG, PDF) with matplotlib's Agg canvas: no pyplot, no global state, no display.

Each function takes the data of one figure (``rooflm.plot.data``) and returns a ``matplotlib.figure.Figure``,
which notebooks display as they would any figure. The roofline lives in ``mpl_roofline``, the serving curve in ``mpl_serving``.
"""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from rooflm.plot import style
from rooflm.plot.data import BatchData, BreakdownData, MemoryData
from rooflm.plot.mpl_base import FS, WHITE_BOX, log_axis, new_figure, save, wrap_title
from rooflm.plot.mpl_levels import levels
from rooflm.plot.mpl_pareto import pareto
from rooflm.plot.mpl_roofline import roofline
from rooflm.plot.mpl_serving import serving

__all__ = ["batch", "breakdown", "levels", "memory", "pareto", "roofline", "save", "serving"]


def _head(fig: Figure, text: str) -> float:
    """Two panels under one title and one legend: the title wraps, and the legend and panels move down
    by what the extra lines take."""
    title, lines = wrap_title(text)
    extra = 0.04 * (lines - 1)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.84 - extra, bottom=0.12, wspace=0.25)
    fig.suptitle(title, fontsize=FS + 1, x=0.08, ha="left")
    return extra


# ---------------------------------------------------------------- batch


def batch(d: BatchData) -> Figure:
    fig, (ax_t, ax_r) = new_figure(2)
    extra = _head(fig, d.title)
    tokens = "output tokens/s" if d.phase == "decode" else "tokens/s (prompt + output)" if d.phase == "e2e" else \
        "prompt tokens/s"
    for ax, ylabel in ((ax_t, "time per step (ms)" if d.phase != "e2e" else "time per request batch (ms)"),
                       (ax_r, tokens)):
        log_axis(ax, "x", base=2)
        log_axis(ax, "y", fine=True)
        ax.set_xlabel("batch (sequences)", fontsize=FS + 1)
        ax.set_ylabel(ylabel, fontsize=FS + 1)
    n = len(d.series)
    for i, s in enumerate(d.series):
        colour = style.SERIES_COLOURS[i % len(style.SERIES_COLOURS)]
        # Schemes that share a roof coincide once compute-bound (w4a16 = bf16): earlier series are drawn
        # wider underneath, so every series stays visible where they overlap.
        width, size = 2.2 + 0.9 * (n - 1 - i), 6 + 1.5 * (n - 1 - i)
        fit = [k for k, f in enumerate(s.fits) if f]
        last_fit = fit[-1] if fit else -1
        for ax, values in ((ax_t, [t * 1e3 for t in s.time_s]), (ax_r, s.tokens_per_s)):
            ax.plot(s.batch[: last_fit + 1], values[: last_fit + 1], "-", color=colour, linewidth=width, zorder=2 + i,
                    label=style.mpl_text(s.label) if ax is ax_t else None)
            ax.plot(s.batch[max(last_fit, 0):], values[max(last_fit, 0):], ":", color=colour, linewidth=width,
                    zorder=2 + i)
            for b, v, bound, f in zip(s.batch, values, s.bound, s.fits, strict=True):
                ax.plot([b], [v], style.BOUND_MARKERS.get(bound, ("o", ""))[0], markersize=size, color=colour,
                        markerfacecolor=colour if f else "white", markeredgewidth=1.5, zorder=2 + i)
            if s.critical_batch:
                ax.axvline(s.critical_batch, color=colour, linestyle="--", linewidth=1.4, zorder=1)
                # At the foot of the axes: past B* time is high and tokens/s too, so the bottom is empty there.
                ax.annotate(f"B*={s.critical_batch:,}", (s.critical_batch, 0.0), xycoords=("data", "axes fraction"),
                            xytext=(4, 4 + 17 * i), textcoords="offset points", va="bottom", fontsize=FS - 2,
                            color=colour, bbox=WHITE_BOX)
    handles = [*ax_t.get_legend_handles_labels()[0],
               Line2D([], [], color="#444444", marker="o", linestyle="", label="memory-bound"),
               Line2D([], [], color="#444444", marker="s", linestyle="", label="compute-bound"),
               Line2D([], [], color="#444444", marker="o", markerfacecolor="white", linestyle=":",
                      label="does not fit in memory")]
    if any(s.critical_batch for s in d.series):
        handles.append(Line2D([], [], color="#444444", linestyle="--", label="B*: weight GEMMs turn compute-bound"))
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.08, 0.93 - extra), ncol=min(4, len(handles)),
               fontsize=FS - 2, frameon=False)
    return fig


# ---------------------------------------------------------------- breakdown


def breakdown(d: BreakdownData) -> Figure:
    fig, (ax_abs, ax_pct) = new_figure(2)
    extra = _head(fig, d.title)
    pos = list(range(len(d.x)))
    bottom_abs = [0.0] * len(d.x)
    bottom_pct = [0.0] * len(d.x)
    for cls, values in d.layers.items():
        ms = [v * 1e3 for v in values]
        pct = [100 * v / t if t else 0.0 for v, t in zip(values, d.total_s, strict=True)]
        colour = style.class_colour(cls)
        ax_abs.bar(pos, ms, bottom=bottom_abs, color=colour, label=style.class_label(cls), width=0.75)
        ax_pct.bar(pos, pct, bottom=bottom_pct, color=colour, width=0.75)
        bottom_abs = [a + b for a, b in zip(bottom_abs, ms, strict=True)]
        bottom_pct = [a + b for a, b in zip(bottom_pct, pct, strict=True)]
    for ax in (ax_abs, ax_pct):
        ticks = [f"{x // 1024:,}k" if x >= 8192 and x % 1024 == 0 else f"{x:,}" for x in d.x]
        ax.set_xticks(pos, ticks, fontsize=FS - 2, rotation=45 if len(d.x) > 10 else 0)
        ax.set_xlabel("batch (sequences)" if d.axis == "batch" else "context (tokens in each KV cache)",
                      fontsize=FS + 1)
        ax.grid(False, axis="x")
    ax_abs.set_ylabel("time per step (ms)", fontsize=FS + 1)
    ax_pct.set_ylabel("share of step time (%)", fontsize=FS + 1)
    ax_pct.set_ylim(0, 100)
    handles, labels = ax_abs.get_legend_handles_labels()
    if not all(d.fits):
        # Hatched, not annotated: a note over each bar would crowd the tall bars at the right.
        for ax in (ax_abs, ax_pct):
            for container in ax.containers:
                for patch, fits in zip(container, d.fits, strict=True):
                    if not fits:
                        patch.set_hatch("//")
                        patch.set_edgecolor("white")
        handles.append(Patch(facecolor="#BBBBBB", edgecolor="white", hatch="//"))
        labels.append("does not fit in memory")
    fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(0.08, 0.93 - extra),
               ncol=min(5, len(handles)), fontsize=FS - 2, frameon=False)
    return fig


# ---------------------------------------------------------------- memory


def memory(d: MemoryData) -> Figure:
    fig, (ax,) = new_figure()
    title, lines = wrap_title(d.title)
    fig.subplots_adjust(left=0.08, right=0.97, top=0.84 - 0.04 * (lines - 1), bottom=0.11)
    ax.set_title(title, fontsize=FS + 1, loc="left", pad=40)
    giga = 1e9
    layers = {"weights": d.weights, "kv_cache": d.kv_cache, "activations": d.activations}
    ax.stackplot(d.batch, *([v / giga for v in values] for values in layers.values()),
                 colors=[style.MEMORY_COLOURS[k] for k in layers], labels=[style.MEMORY_LABELS[k] for k in layers],
                 alpha=0.9)
    ax.axhline(d.capacity / giga, color=style.MEMORY_COLOURS["capacity"], linewidth=2.2,
               label=f"device memory {d.capacity / giga:,.0f} GB")
    ax.text(d.batch[len(d.batch) // 5], d.weights[0] / giga / 2, f"weights {d.weights[0] / giga:,.1f} GB",
            ha="center", va="center", fontsize=FS, color="white", fontweight="bold")
    if d.max_batch > 0:
        ax.axvline(d.max_batch, color=style.MEMORY_COLOURS["capacity"], linestyle="--", linewidth=1.8)
        ax.axvspan(d.max_batch, max(d.batch), color="#000000", alpha=0.08, linewidth=0)
        ax.annotate(f"largest batch that fits: {d.max_batch:,}", (d.max_batch, d.capacity / giga), xytext=(-8, 10),
                    textcoords="offset points", ha="right", fontsize=FS, fontweight="bold")
        ax.annotate("does not fit", (d.max_batch, 1.0), xycoords=("data", "axes fraction"), xytext=(8, -8),
                    textcoords="offset points", va="top", fontsize=FS - 1, color="#333333")
        k = min(range(len(d.batch)), key=lambda i: abs(d.batch[i] - d.max_batch * 0.65))
        kv_mid = (d.weights[k] + d.kv_cache[k] / 2) / giga
        if d.kv_cache[k] > 0.15 * d.capacity:
            ax.text(d.batch[k], kv_mid, f"KV cache\n{d.kv_cache[k] / giga:,.1f} GB at batch {d.batch[k]:,}",
                    ha="center", va="center", fontsize=FS - 1, color="white", fontweight="bold")
    else:
        ax.text(0.5, 0.5, "the weights alone do not fit", transform=ax.transAxes, ha="center", fontsize=FS + 2)
    ax.set_xlim(min(d.batch), max(d.batch))
    ax.set_ylim(0, max(d.capacity, max(map(sum, zip(*layers.values(), strict=True)))) / giga * 1.1)
    ax.set_xlabel("batch (sequences)", fontsize=FS + 1)
    ax.set_ylabel("memory (GB)", fontsize=FS + 1)
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, 1.09), ncol=4, fontsize=FS - 2, frameon=False)
    return fig
