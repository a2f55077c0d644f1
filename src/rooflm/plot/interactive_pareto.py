"""The Pareto figure as interactive HTML (plotly): the static figure's layers (mpl_pareto), and hovering a point of
the frontier gives its configuration."""

from __future__ import annotations

import plotly.graph_objects as go

from rooflm.plot import style
from rooflm.plot.pareto_data import ParetoData

FAINT = "#BBBBBB"


def pareto(d: ParetoData) -> go.Figure:
    fig = go.Figure()
    targets = d.ttft_slo_s is not None or d.tpot_slo_s is not None
    groups = ((False, "searched", FAINT), (True, "searched, within the targets", style.OKABE_ITO["sky_blue"])) \
        if targets else ((True, "searched", FAINT),)  # without targets every point "meets" them
    for keep, name, colour in groups:
        idx = [i for i, m in enumerate(d.meets) if m == keep]
        if idx:
            fig.add_trace(go.Scattergl(x=[d.per_user[i] for i in idx], y=[d.per_gpu[i] for i in idx], mode="markers",
                                       name=name, marker={"size": 5, "color": colour, "opacity": 0.6},
                                       hovertemplate="%{x:.4g} tok/s per user · %{y:.4g} tok/s per GPU<extra></extra>"))
    labels = [style.plotly_text(t) for t in d.frontier_labels]
    fig.add_trace(go.Scatter(x=d.frontier_per_user, y=d.frontier_per_gpu, mode="lines+markers", name="Pareto frontier",
                             line={"color": style.OKABE_ITO["blue"], "width": 2.5}, text=labels,
                             hovertemplate="%{text}<br>%{x:.4g} tok/s per user · %{y:.4g} tok/s per GPU"
                                           "<extra></extra>"))
    if d.best is not None:
        x, y, text = d.best
        fig.add_trace(go.Scatter(x=[x], y=[y], mode="markers", name="best within the targets" if targets else
                                 "best throughput", text=[style.plotly_text(text)], marker={"symbol": "star", "size": 18,
                                                                          "color": style.OKABE_ITO["orange"],
                                                                          "line": {"color": "black", "width": 1}},
                                 hovertemplate="%{text}<br>%{x:.4g} tok/s per user · %{y:.4g} tok/s per GPU"
                                               "<extra></extra>"))
    if d.tpot_slo_s is not None:
        fig.add_vline(x=1.0 / d.tpot_slo_s, line={"color": style.OKABE_ITO["vermillion"], "dash": "dash"},
                      annotation_text=f"TPOT target {d.tpot_slo_s * 1e3:g} ms")
    subtitle = [f"TTFT target {d.ttft_slo_s * 1e3:g} ms"] if d.ttft_slo_s is not None else []
    if targets and d.best is None:
        subtitle.append("no configuration meets the targets")
    fig.update_layout(
        title={"text": style.plotly_text(d.title).replace(" · ", "<br>", 1)
               + ("<br>" + " · ".join(subtitle) if subtitle else ""),
               "x": 0.01, "xanchor": "left", "font": {"size": 16}},
        template="simple_white", font={"size": 14}, margin={"l": 70, "r": 30, "t": 110, "b": 60},
        legend={"bgcolor": "rgba(255,255,255,0.85)", "bordercolor": "#CCCCCC", "borderwidth": 1})
    fig.update_xaxes(type="log", title="output tokens/s per user (interactivity)", showgrid=True, gridcolor="#E5E5E5")
    fig.update_yaxes(type="log", title="output tokens/s per GPU (throughput)", showgrid=True, gridcolor="#E5E5E5")
    return fig
