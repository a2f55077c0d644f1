"""The Pareto figure (PNG, SVG, PDF): every configuration `rooflm plan` searched, faint (stronger where it meets the
latency targets), the frontier of output tokens/s per GPU against per user drawn through, the best within the
targets marked, and the TPOT target as the line 1 / TPOT on the per-user axis (points right of it meet it)."""

from __future__ import annotations

from matplotlib.figure import Figure

from rooflm.plot import style
from rooflm.plot.mpl_base import FS, WHITE_BOX, log_axis, new_figure, wrap_title
from rooflm.plot.pareto_data import ParetoData

FAINT = "#BBBBBB"


def pareto(d: ParetoData) -> Figure:
    fig, (ax,) = new_figure(1)
    title, lines = wrap_title(d.title)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.88 - 0.04 * (lines - 1), bottom=0.1)
    fig.suptitle(title, fontsize=FS + 1, x=0.08, ha="left")
    blue, red = style.OKABE_ITO["blue"], style.OKABE_ITO["vermillion"]
    targets = d.ttft_slo_s is not None or d.tpot_slo_s is not None
    groups = ((False, "searched", FAINT), (True, "searched, within the targets", style.OKABE_ITO["sky_blue"])) \
        if targets else ((True, "searched", FAINT),)  # without targets every point "meets" them
    for keep, name, colour in groups:
        idx = [i for i, m in enumerate(d.meets) if m == keep]
        ax.scatter([d.per_user[i] for i in idx], [d.per_gpu[i] for i in idx], s=10, color=colour, alpha=0.6,
                   linewidths=0, label=name, zorder=1)
    if d.frontier_per_user:
        ax.plot(d.frontier_per_user, d.frontier_per_gpu, "-o", color=blue, linewidth=2.2, markersize=6,
                label="Pareto frontier", zorder=3)
    if d.tpot_slo_s is not None:
        ax.axvline(1.0 / d.tpot_slo_s, color=red, linestyle="--", linewidth=1.4,
                   label=f"TPOT target {d.tpot_slo_s * 1e3:g} ms (1 / TPOT)", zorder=2)
    if d.best is not None:
        x, y, text = d.best
        ax.plot([x], [y], "*", markersize=20, color=style.OKABE_ITO["orange"], markeredgecolor="black", zorder=4,
                label="best within the targets" if targets else "best throughput")
        lo, hi = min(d.per_user), max(d.per_user)
        right = x > (lo * hi) ** 0.5  # in the right half (log axis): the label goes to the star's left
        ax.annotate(text, (x, y), xytext=(-12 if right else 12, -18), textcoords="offset points", fontsize=FS - 3,
                    ha="right" if right else "left", bbox=WHITE_BOX, zorder=5)
    elif targets:
        ax.text(0.98, 0.02, "no configuration meets the targets", transform=ax.transAxes, ha="right", va="bottom",
                fontsize=FS - 1, color=red)
    if d.per_user:
        log_axis(ax, "x", fine=True)
        log_axis(ax, "y", fine=True)
    ax.set_xlabel("output tokens/s per user (interactivity)", fontsize=FS + 1)
    ax.set_ylabel("output tokens/s per GPU (throughput)", fontsize=FS + 1)
    if d.ttft_slo_s is not None:
        ax.plot([], [], " ", label=f"TTFT target {d.ttft_slo_s * 1e3:g} ms")
    ax.legend(loc="lower left", fontsize=FS - 2, frameon=False)
    return fig
