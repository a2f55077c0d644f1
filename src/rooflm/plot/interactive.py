"""Interactive figures (plotly): the HTML files of ``rooflm plot -o x.html`` and the web page's roofline.

The same data as the static figures (``rooflm.plot.data``); hovering a point gives its numbers. HTML files
carry plotly.js inline, so they open offline and load nothing from the network.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from rooflm.plot import style
from rooflm.plot.data import BatchData, BreakdownData, MemoryData, RooflineData, StepPoint
from rooflm.plot.interactive_levels import levels  # noqa: F401 - render() draws each kind by its name here
from rooflm.plot.interactive_pareto import pareto  # noqa: F401 - render() draws each kind by its name here
from rooflm.plot.serving_data import ServingData
from rooflm.specs.files import write_atomic

TERA = 1e12
GIGA = 1e9


def _layout(fig: go.Figure, title: str, **axes: Any) -> go.Figure:
    fig.update_layout(
        title={"text": style.plotly_text(title), "x": 0.01, "xanchor": "left", "font": {"size": 18}},
        template="simple_white", font={"size": 14}, hoverlabel={"font_size": 13},
        legend={"bgcolor": "rgba(255,255,255,0.85)", "bordercolor": "#CCCCCC", "borderwidth": 1},
        margin={"l": 70, "r": 30, "t": 70, "b": 60}, **axes,
    )
    fig.update_xaxes(showgrid=True, gridcolor="#E5E5E5")
    fig.update_yaxes(showgrid=True, gridcolor="#E5E5E5")
    return fig


def _log_range(values: list[float], pad_low: float, pad_high: float) -> list[float]:
    return [math.floor(math.log10(min(values) / pad_low)), math.ceil(math.log10(max(values) * pad_high))]


def _sparse_labels(points: list[StepPoint], min_decades: float = 0.22) -> list[str]:
    """Batch labels along the trajectory, skipping points too close to the last one labelled (past the
    ridge many batches land on almost one spot); hovering still gives every point's numbers."""
    labels: list[str] = []
    last: tuple[float, float] | None = None
    for p in points:
        here = (math.log10(p.intensity), math.log10(p.flops_per_s))
        if last is None or max(abs(here[0] - last[0]), abs(here[1] - last[1])) >= min_decades:
            labels.append(f"{p.batch:,}")
            last = here
        else:
            labels.append("")
    return labels


def roofline(d: RooflineData) -> go.Figure:
    fig = go.Figure()
    pts = d.operators + d.trajectory
    xr = _log_range([p.intensity for p in pts] + [d.step.intensity] + [r.ridge for r in d.roofs], 2, 4)
    yr = _log_range([p.flops_per_s / TERA for p in pts] + [r.peak_flops / TERA for r in d.roofs], 2, 3)
    xmin, xmax = 10 ** xr[0], 10 ** xr[1]
    ymin = 10 ** yr[0]
    for roof in sorted(d.roofs, key=lambda r: r.is_scheme_roof):
        colour = style.ROOF_COLOUR if roof.is_scheme_roof else style.OTHER_ROOF_COLOUR
        peak = roof.peak_flops / TERA
        hover = f"{style.plotly_text(roof.label)}: {peak:,.0f} TFLOP/s, ridge {roof.ridge:,.0f} FLOP/B<extra></extra>"
        fig.add_trace(go.Scatter(
            x=[xmin, roof.ridge, xmax], y=[d.bandwidth * xmin / TERA, peak, peak], mode="lines+markers",
            line={"color": colour, "width": 3 if roof.is_scheme_roof else 1.5}, name=f"{style.plotly_text(roof.label)} roof",
            marker={"size": [0, 9, 0], "color": colour}, hovertemplate=hover))
        # The ridge as a dotted drop line labelled at its foot, clear of the points that gather near the roof.
        fig.add_trace(go.Scatter(x=[roof.ridge, roof.ridge], y=[ymin, peak], mode="lines", showlegend=False,
                                 line={"color": colour, "width": 1, "dash": "dot"}, hovertemplate=hover))
        # Annotations on log axes take log10 coordinates.
        fig.add_annotation(x=math.log10(roof.ridge), y=math.log10(peak),
                           text=f"{style.plotly_text(roof.label)} {peak:,.0f} TFLOP/s",
                           showarrow=False, xanchor="right", yanchor="bottom", xshift=-8, yshift=4,
                           font={"color": colour, "size": 14})
        fig.add_annotation(x=math.log10(roof.ridge), y=yr[0], text=f"ridge {roof.ridge:,.0f} FLOP/B", textangle=-90,
                           showarrow=False, xanchor="right", yanchor="bottom", xshift=-2, yshift=6,
                           font={"color": colour, "size": 13})
    for op_class in dict.fromkeys(o.op_class for o in d.operators):
        ops = [o for o in d.operators if o.op_class == op_class]
        fig.add_trace(go.Scatter(
            x=[o.intensity for o in ops], y=[o.flops_per_s / TERA for o in ops], mode="markers",
            name=style.class_label(op_class), text=[style.plotly_text(o.name) for o in ops],
            customdata=[[100 * o.time_share, o.bound] for o in ops],
            marker={"color": style.class_colour(op_class), "size": [8 + 60 * math.sqrt(o.time_share) for o in ops],
                    "line": {"color": "white", "width": 1}, "opacity": 0.9},
            hovertemplate="%{text}<br>%{x:.3g} FLOP/B · %{y:.4g} TFLOP/s<br>%{customdata[0]:.1f}% of the step · "
                          "%{customdata[1]}-bound<extra></extra>"))
    if d.trajectory:
        tr = d.trajectory
        fig.add_trace(go.Scatter(
            x=[p.intensity for p in tr], y=[p.flops_per_s / TERA for p in tr], mode="lines+markers+text",
            name="whole step as batch grows", text=_sparse_labels(tr), textposition="top left",
            customdata=[[p.batch, p.bound, "fits" if p.fits else "does not fit"] for p in tr],
            line={"color": style.TRAJECTORY_COLOUR, "width": 2},
            marker={"symbol": [style.BOUND_MARKERS.get(p.bound, ("o", "circle"))[1] + ("" if p.fits else "-open")
                               for p in tr], "size": 9, "color": style.TRAJECTORY_COLOUR},
            hovertemplate="batch %{customdata[0]:,}<br>%{x:.3g} FLOP/B · %{y:.4g} TFLOP/s<br>%{customdata[1]}-bound · "
                          "%{customdata[2]} in memory<extra></extra>"))
    fig.add_trace(go.Scatter(
        x=[d.step.intensity], y=[d.step.flops_per_s / TERA], mode="markers",
        name=f"this step: B={d.step.batch:,}, {d.step.bound}-bound",
        marker={"symbol": "star", "size": 22, "color": style.OKABE_ITO["yellow"],
                "line": {"color": "black", "width": 1}},
        hovertemplate="this step<br>%{x:.3g} FLOP/B · %{y:.4g} TFLOP/s<extra></extra>"))
    fig = _layout(fig, d.title, legend_x=0.01, legend_y=0.99)
    fig.update_xaxes(type="log", range=xr, dtick=1, title="arithmetic intensity (FLOP/byte)")
    fig.update_yaxes(type="log", range=yr, dtick=1, title="attainable performance (TFLOP/s)")
    if d.not_drawn:
        fig.add_annotation(text=style.plotly_text(f"Not drawn (no FLOPs): {', '.join(d.not_drawn)}"), xref="paper",
                           yref="paper", x=0,
                           y=-0.12, showarrow=False, xanchor="left", font={"size": 11, "color": "#555555"})
    return fig


def batch(d: BatchData) -> go.Figure:
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1)
    for i, s in enumerate(d.series):
        colour = style.SERIES_COLOURS[i % len(style.SERIES_COLOURS)]
        symbols = [style.BOUND_MARKERS.get(b, ("o", "circle"))[1] + ("" if f else "-open")
                   for b, f in zip(s.bound, s.fits, strict=True)]
        custom = [[b, "fits" if f else "does not fit"] for b, f in zip(s.bound, s.fits, strict=True)]
        label = style.plotly_text(s.label)
        for col, values, unit in ((1, [t * 1e3 for t in s.time_s], "ms"), (2, s.tokens_per_s, "tokens/s")):
            fig.add_trace(go.Scatter(
                x=s.batch, y=values, mode="lines+markers", name=label, legendgroup=label, showlegend=col == 1,
                line={"color": colour, "width": 2 + 1.2 * (len(d.series) - 1 - i)},
                marker={"symbol": symbols, "size": 9, "color": colour}, customdata=custom,
                hovertemplate=f"{label}<br>batch %{{x:,}}: %{{y:.4g}} {unit}<br>%{{customdata[0]}}-bound · "
                              "%{customdata[1]}<extra></extra>"), row=1, col=col)
            if s.critical_batch:
                # On log axes shapes take data values but annotations take log10 ones.
                fig.add_vline(x=s.critical_batch, line={"color": colour, "dash": "dash", "width": 1.5}, opacity=1,
                              row=1, col=col)
                fig.add_annotation(x=math.log10(s.critical_batch), y=0, yref="y domain",
                                   text=f"B*={s.critical_batch:,}", showarrow=False, xanchor="left", yanchor="bottom",
                                   xshift=4, yshift=4 + 20 * i, font={"color": colour},
                                   bgcolor="rgba(255,255,255,0.8)", row=1, col=col)
    fig = _layout(fig, d.title)
    ticks = sorted({b for s in d.series for b in s.batch})[::2]
    fig.update_xaxes(type="log", title="batch (sequences)", tickvals=ticks, ticktext=[f"{b:,}" for b in ticks])
    fig.update_yaxes(type="log", dtick=1)
    tokens = {"decode": "output tokens/s", "prefill": "prompt tokens/s"}.get(d.phase, "tokens/s")
    fig.update_yaxes(title="time per step (ms)", row=1, col=1)
    fig.update_yaxes(title=tokens, row=1, col=2)
    return fig


def breakdown(d: BreakdownData) -> go.Figure:
    fig = go.Figure()
    labels = [f"{x:,}" for x in d.x]
    for cls, values in d.layers.items():
        fig.add_trace(go.Bar(
            x=labels, y=[v * 1e3 for v in values], name=style.class_label(cls), marker_color=style.class_colour(cls),
            customdata=[100 * v / t if t else 0.0 for v, t in zip(values, d.total_s, strict=True)],
            hovertemplate=f"{style.class_label(cls)}: %{{y:.4g}} ms (%{{customdata:.1f}}%)<extra></extra>"))
    fig = _layout(fig, d.title, barmode="stack")
    fig.update_xaxes(type="category", title="batch (sequences)" if d.axis == "batch" else "context (tokens)")
    fig.update_yaxes(title="time per step (ms)")
    return fig


def memory(d: MemoryData) -> go.Figure:
    fig = go.Figure()
    for key, values in (("weights", d.weights), ("kv_cache", d.kv_cache), ("activations", d.activations)):
        fig.add_trace(go.Scatter(
            x=d.batch, y=[v / GIGA for v in values], mode="lines", stackgroup="memory", name=style.MEMORY_LABELS[key],
            line={"color": style.MEMORY_COLOURS[key], "width": 0.5}, fillcolor=style.MEMORY_COLOURS[key],
            hovertemplate=f"{style.MEMORY_LABELS[key]}: %{{y:.3g}} GB at batch %{{x:,}}<extra></extra>"))
    fig.add_hline(y=d.capacity / GIGA, line={"color": "black", "width": 2}, layer="above", opacity=1,
                  annotation_text=f"device memory {d.capacity / GIGA:,.0f} GB", annotation_position="top left")
    if d.max_batch > 0:
        fig.add_vline(x=d.max_batch, line={"color": "black", "dash": "dash", "width": 2}, layer="above", opacity=1,
                      annotation_text=f"largest batch that fits: {d.max_batch:,}", annotation_position="top left")
    fig = _layout(fig, d.title)
    fig.update_xaxes(title="batch (sequences)")
    fig.update_yaxes(title="memory (GB)", rangemode="tozero")
    return fig


def _ms(v: float | None) -> float | None:
    return None if v is None else v * 1e3


def serving(d: ServingData) -> go.Figure:
    """Left: output tokens/s per GPU against per user, a point per load (hover: its TTFT and TPOT). Right: TTFT
    and TPOT against the load."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1)
    unit = "" if d.load == "concurrency" else " req/s"
    load_word = "concurrency" if d.load == "concurrency" else "request rate"
    colour = style.SERIES_COLOURS[0]
    keep = [i for i, (x, y) in enumerate(zip(d.tokens_per_s_per_user, d.tokens_per_s_per_gpu, strict=True))
            if x is not None and y is not None]
    fig.add_trace(go.Scatter(
        x=[d.tokens_per_s_per_user[i] for i in keep], y=[d.tokens_per_s_per_gpu[i] for i in keep],
        mode="lines+markers+text", name="one point per load", text=[f"{d.loads[i]:g}{unit}" for i in keep],
        textposition="top right", line={"color": colour, "width": 2},
        marker={"symbol": [style.SERVING_BOUND_MARKERS.get(d.bound[i], ("o", "circle"))[1] for i in keep],
                "size": 11, "color": colour},
        customdata=[[d.loads[i], _ms(d.ttft_s[i]), _ms(d.tpot_s[i]), style.SERVING_BOUND_LABELS.get(d.bound[i],
                                                                                                  d.bound[i])]
                    for i in keep],
        hovertemplate=f"{load_word} %{{customdata[0]:g}}{unit}<br>%{{x:.4g}} tokens/s per user · %{{y:.4g}} tokens/s "
                      "per GPU<br>TTFT %{customdata[1]:.4g} ms · TPOT %{customdata[2]:.4g} ms<br>%{customdata[3]}"
                      "<extra></extra>"), row=1, col=1)
    for values, p99, name, c in ((d.ttft_s, d.ttft_p99_s, "TTFT", style.OKABE_ITO["vermillion"]),
                                 (d.tpot_s, d.tpot_p99_s, "TPOT", style.OKABE_ITO["bluish_green"])):
        for series, dash, label in ((values, "solid", f"{name} mean"), (p99, "dash", f"{name} p99")):
            if all(v is None for v in series):
                continue
            fig.add_trace(go.Scatter(
                x=d.loads, y=[_ms(v) for v in series], mode="lines+markers" if dash == "solid" else "lines",
                name=label, line={"color": c, "dash": dash, "width": 2 if dash == "solid" else 1.4},
                hovertemplate=f"{label}: %{{y:.4g}} ms at {load_word} %{{x:g}}{unit}<extra></extra>"), row=1, col=2)
    fig = _layout(fig, d.title)
    fig.update_xaxes(type="log", title="output tokens/s per user (interactivity)", row=1, col=1)
    fig.update_yaxes(type="log", title="output tokens/s per GPU (throughput)", row=1, col=1)
    fig.update_xaxes(type="log", title="concurrency (users)" if d.load == "concurrency" else
                     "request rate (requests/s)", row=1, col=2)
    fig.update_yaxes(type="log", title="latency (ms)", row=1, col=2)
    return fig


def save(fig: go.Figure, path: str | Path) -> Path:
    """A self-contained HTML file: plotly.js inline (no CDN), no MathJax."""
    html = fig.to_html(include_plotlyjs=True, include_mathjax=False, full_html=True,
                       config={"displaylogo": False, "responsive": True})
    return write_atomic(path, html, str(path), field="output")
