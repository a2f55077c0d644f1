"""The hierarchical roofline figure (PNG, SVG, PDF): a bandwidth slope per memory level under the compute roof,
each operator at its intensity for the level that binds it (hollow markers: its other levels, on request)."""

from __future__ import annotations

from matplotlib.figure import Figure

from rooflm.plot import style
from rooflm.plot.levels_data import LevelsData
from rooflm.plot.mpl_base import FS, decades, log_axis, new_figure, wrap_title

TERA = 1e12


def levels(d: LevelsData) -> Figure:
    fig, (ax,) = new_figure()
    intensities = [p.intensity for p in d.points] or [1.0]
    xmin, xmax = decades([*intensities, d.peak_flops / min(s.bandwidth for s in d.levels)], 2, 2)
    colours = style.SERIES_COLOURS
    for i, slope in enumerate(d.levels):
        ridge = d.peak_flops / slope.bandwidth
        colour = colours[i % len(colours)]
        ax.plot([xmin, ridge, xmax], [slope.bandwidth * xmin / TERA, d.peak_flops / TERA, d.peak_flops / TERA],
                color=colour, linewidth=1.8, label=f"{slope.name} {slope.bandwidth / TERA:,.1f} TB/s",
                gid=f"level:{slope.name}")
        mine = [p for p in d.points if p.level == slope.name]
        for binds in (True, False):
            pts = [p for p in mine if p.binds == binds]
            if pts:
                ax.scatter([p.intensity for p in pts], [p.flops_per_s / TERA for p in pts], s=36, zorder=3,
                           color=colour if binds else "none", edgecolors=colour, gid=f"points:{slope.name}")
    log_axis(ax, "x")
    log_axis(ax, "y")
    ax.set_xlim(xmin, xmax)
    ax.set_xlabel("arithmetic intensity at the level (FLOP/byte)", fontsize=FS)
    ax.set_ylabel("TFLOP/s", fontsize=FS)
    ax.legend(loc="lower right", fontsize=FS - 1, title="memory level", title_fontsize=FS - 1)
    title, _ = wrap_title(d.title)
    ax.set_title(title, fontsize=FS)
    return fig
