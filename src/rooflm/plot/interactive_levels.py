"""The hierarchical roofline as interactive HTML (plotly): the static figure's layers (mpl_levels), one bandwidth
slope per memory level under the compute roof; hovering an operator gives its level, intensity and FLOP/s."""

from __future__ import annotations

import math

import plotly.graph_objects as go

from rooflm.plot import style
from rooflm.plot.levels_data import LevelsData

TERA = 1e12


def levels(d: LevelsData) -> go.Figure:
    fig = go.Figure()
    intensities = [p.intensity for p in d.points] or [1.0]
    # Whole decades around the points and every ridge, as the static figure's axis (no matplotlib here).
    spread = [*intensities, d.peak_flops / min(s.bandwidth for s in d.levels)]
    xr = (math.floor(math.log10(min(spread) / 2)), math.ceil(math.log10(max(spread) * 2)))
    xmin, xmax = 10.0 ** xr[0], 10.0 ** xr[1]
    colours = style.SERIES_COLOURS
    for i, slope in enumerate(d.levels):
        colour = colours[i % len(colours)]
        ridge = d.peak_flops / slope.bandwidth
        # The same three vertices as the static figure: the slope bandwidth·x up to the ridge, then the roof.
        fig.add_trace(go.Scatter(
            x=[xmin, ridge, xmax], y=[slope.bandwidth * xmin / TERA, d.peak_flops / TERA, d.peak_flops / TERA],
            mode="lines", name=f"{style.plotly_text(slope.name)} {slope.bandwidth / TERA:,.1f} TB/s", legendgroup=slope.name,
            line={"color": colour, "width": 2.5},
            hovertemplate=f"{style.plotly_text(slope.name)}: ridge {ridge:,.1f} FLOP/B<extra></extra>"))
        for binds in (True, False):
            pts = [p for p in d.points if p.level == slope.name and p.binds == binds]
            if not pts:
                continue
            fig.add_trace(go.Scatter(
                x=[p.intensity for p in pts], y=[p.flops_per_s / TERA for p in pts], mode="markers",
                name=f"{style.plotly_text(slope.name)}: {'binding' if binds else 'other level'}", legendgroup=slope.name,
                showlegend=False, text=[style.plotly_text(p.operator) for p in pts],
                marker={"size": 9, "color": colour if binds else "rgba(0,0,0,0)", "line": {"color": colour,
                                                                                          "width": 1.5}},
                hovertemplate=f"%{{text}} at {style.plotly_text(slope.name)}{' (binds)' if binds else ''}<br>"
                              "%{x:.4g} FLOP/B · "
                              "%{y:.4g} TFLOP/s<extra></extra>"))
    fig.update_layout(
        title={"text": style.plotly_text(d.title), "x": 0.01, "xanchor": "left", "font": {"size": 16}}, template="simple_white",
        font={"size": 14}, margin={"l": 70, "r": 30, "t": 80, "b": 60},
        legend={"title": {"text": "memory level"}, "bgcolor": "rgba(255,255,255,0.85)", "bordercolor": "#CCCCCC",
                "borderwidth": 1})
    fig.update_xaxes(type="log", range=list(xr), title="arithmetic intensity at the level "
                     "(FLOP/byte)", showgrid=True, gridcolor="#E5E5E5")
    fig.update_yaxes(type="log", title="TFLOP/s", showgrid=True, gridcolor="#E5E5E5")
    return fig

