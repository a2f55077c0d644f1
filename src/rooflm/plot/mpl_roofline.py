"""The roofline figure (PNG, SVG, PDF): the device's roofs, the step's operators, the batch trajectory."""

from __future__ import annotations

import math
import textwrap

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from rooflm.plot import style
from rooflm.plot.data import RooflineData
from rooflm.plot.mpl_base import FS, WHITE_BOX, Labels, Spot, decades, log_axis, new_figure, wrap_title

TERA = 1e12
# Where a trajectory label may go, in order of preference: above-left of its point (clear of the slope),
# else under it (clear of the flat roof, where compute-bound points bunch up).
TRAJECTORY_SPOTS: tuple[Spot, ...] = ((-7, 7, "right", "bottom"), (0, -11, "center", "top"))


def _clusters(d: RooflineData, tolerance: float = 0.12) -> list[tuple[float, float, list[str], float]]:
    """Operators that sit on the same spot (all weight GEMMs at small batch do) share one label."""
    groups: list[tuple[float, float, list[str], float]] = []
    for o in sorted(d.operators, key=lambda o: -o.time_share):
        lx, ly = math.log10(o.intensity), math.log10(o.flops_per_s)
        for i, (gx, gy, names, share) in enumerate(groups):
            if abs(gx - lx) < tolerance and abs(gy - ly) < tolerance:
                groups[i] = (gx, gy, [*names, o.name], share + o.time_share)
                break
        else:
            groups.append((lx, ly, [o.name], o.time_share))
    return groups


def _cluster_labels(names: list[str], share: float) -> list[str]:
    """A group's label, longest first: where it does not fit, a shorter one is tried."""
    out = []
    for shown in (2, 1):
        if len(names) >= shown:
            more = f" +{len(names) - shown}" if len(names) > shown else ""
            out.append(f"{', '.join(names[:shown])}{more} ({share:.0%})")
    return [*dict.fromkeys(out), f"{share:.0%}"]


def _roofs(ax: Axes, labels: Labels, d: RooflineData, xmin: float, xmax: float, ymin: float) -> None:
    """Roofs: min(peak, bandwidth × intensity); the scheme's own roof on top, dark."""
    for roof in sorted(d.roofs, key=lambda r: r.is_scheme_roof):
        colour = style.ROOF_COLOUR if roof.is_scheme_roof else style.OTHER_ROOF_COLOUR
        peak = roof.peak_flops / TERA
        ax.plot([xmin, roof.ridge, xmax], [d.bandwidth * xmin / TERA, peak, peak], color=colour,
                linewidth=2.6 if roof.is_scheme_roof else 1.6, zorder=2, solid_capstyle="round")
        ax.plot([roof.ridge], [peak], "o", color=colour, markersize=7, zorder=3)
        labels.reserve_line((xmin, d.bandwidth * xmin / TERA), (roof.ridge, peak))
        labels.reserve_line((roof.ridge, peak), (xmax, peak))
        weight = "bold" if roof.is_scheme_roof else "normal"
        # The peak's name sits above the roof, left of its ridge: a corner no point can reach.
        labels.place((roof.ridge, peak), f"{roof.label}  {peak:,.0f} TFLOP/s", [(-10, 5, "right", "bottom")],
                     FS - 1, force=True, color=colour, fontweight=weight)
        # The ridge: a dotted drop line to the x axis, labelled at its foot.
        ax.plot([roof.ridge, roof.ridge], [ymin, peak], ":", color=colour, linewidth=1.4, zorder=1)
        labels.place((roof.ridge, ymin), f"ridge {roof.ridge:,.0f} FLOP/B", [(-4, 6, "right", "bottom")], FS - 2,
                     force=True, rotation=90, color=colour, fontweight=weight)


def _slope_label(ax: Axes, labels: Labels, d: RooflineData, xmin: float, ymin: float) -> None:
    """The bandwidth's label along the slope, at the first place from its foot up that no point or label
    takes, above the slope or else below it. It is turned to the slope as drawn: on log-log axes the angle
    depends on the axes' aspect, so it is measured on screen."""
    foot = max(xmin, ymin * TERA / d.bandwidth)
    (p0, p1) = ax.transData.transform([(foot, d.bandwidth * foot / TERA), (foot * 10, d.bandwidth * foot * 10 / TERA)])
    angle = math.degrees(math.atan2(p1[1] - p0[1], p1[0] - p0[0]))
    sin, cos = math.sin(math.radians(angle)), math.cos(math.radians(angle))
    text = f"bandwidth {d.bandwidth / 1e12:.3g} TB/s"
    top_ridge = max(r.ridge for r in d.roofs)
    for side in (1, -1):  # above the slope, then below it
        for k in range(12):
            x = foot * 1.3 * 10 ** (0.25 * k)
            if x > top_ridge / 10:
                break
            spot: Spot = (-8 * sin * side, 8 * cos * side, "left", "bottom" if side > 0 else "top")
            if labels.place((x, d.bandwidth * x / TERA), text, [spot], FS - 1, rotation=angle,
                            rotation_mode="anchor", color=style.ROOF_COLOUR):
                return


def _legend(ax: Axes, d: RooflineData) -> None:
    classes = list(dict.fromkeys(o.op_class for o in d.operators))
    handles: list[Line2D | Patch] = [Patch(color=style.class_colour(c), label=style.class_label(c)) for c in classes]
    if d.trajectory:
        first_compute = next((p.batch for p in d.trajectory if p.bound == "compute"), None)
        turn = f"compute-bound from B={first_compute:,}" if first_compute else "memory-bound at every batch"
        handles += [
            Line2D([], [], color="black", marker="o", label=f"whole step as batch grows\n({turn})"),
            Line2D([], [], color="black", marker="s", linestyle="", label="compute-bound"),
            Line2D([], [], color="black", marker="o", markerfacecolor="white", linestyle="",
                   label="does not fit in memory"),
        ]
    handles.append(Line2D([], [], color=style.OKABE_ITO["yellow"], marker="*", markersize=16, linestyle="",
                          markeredgecolor="black", label=f"this step: B={d.step.batch:,}, {d.step.bound}-bound"))
    ax.legend(handles=handles, loc="upper left", fontsize=FS - 2, framealpha=0.95, edgecolor="#CCCCCC",
              title="operators of this step (area ∝ time)", title_fontsize=FS - 2, alignment="left")


def roofline(d: RooflineData) -> Figure:
    fig, (ax,) = new_figure()
    # Room under the x axis for the notes on what is not drawn (about 150 characters a line).
    note_lines = math.ceil(len(", ".join(d.communication)) / 110) + math.ceil(len(", ".join(d.not_drawn)) / 110)
    title, title_lines = wrap_title(d.title)
    fig.subplots_adjust(left=0.1, right=0.97, top=0.91 - 0.035 * (title_lines - 1), bottom=0.1 + 0.024 * note_lines)
    pts = d.operators + d.trajectory
    xmin, xmax = decades([p.intensity for p in pts] + [d.step.intensity] + [r.ridge for r in d.roofs], 2, 4)
    ymin, ymax = decades([p.flops_per_s / TERA for p in pts] + [r.peak_flops / TERA for r in d.roofs], 2, 3)
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    log_axis(ax, "x")
    log_axis(ax, "y")
    ax.set_xlabel("arithmetic intensity (FLOP/byte)", fontsize=FS + 1)
    ax.set_ylabel("attainable performance (TFLOP/s)", fontsize=FS + 1)
    ax.set_title(title, fontsize=FS + 1, loc="left", pad=12)
    _legend(ax, d)
    labels = Labels(ax)
    labels.reserve_artist(ax.get_legend())
    _roofs(ax, labels, d, xmin, xmax, ymin)

    # Operators of the step: area ∝ share of the step's time, colour by class. Points are reserved first
    # so that no label covers one.
    radius = {o.name: math.sqrt((40 + 2400 * o.time_share) / math.pi) for o in d.operators}  # points
    for o in d.operators:
        ax.scatter([o.intensity], [o.flops_per_s / TERA], s=math.pi * radius[o.name] ** 2, zorder=4,
                   color=style.class_colour(o.op_class), edgecolors="white", linewidths=1.0, alpha=0.9)
        labels.reserve_point((o.intensity, o.flops_per_s / TERA), radius[o.name])
    for p in d.trajectory:
        labels.reserve_point((p.intensity, p.flops_per_s / TERA), 5)
    _slope_label(ax, labels, d, xmin, ymin)
    for gx, gy, names, share in sorted(_clusters(d), key=lambda g: -g[3]):
        if share >= 0.02:
            r = 0.75 * max(radius[n] for n in names) + 3
            spots: list[Spot] = [(r, -r, "left", "top"), (r + 3, 0, "left", "center"), (0, -r - 5, "center", "top"),
                                 (r + 6, -r - 14, "left", "top"), (0, -r - 28, "center", "top"),
                                 (-r, r, "right", "bottom")]
            texts = _cluster_labels(names, share)
            for text in texts:
                # Only the shortest label is forced in (for a group that takes a large share of the time).
                if labels.place((10**gx, 10**gy / TERA), text, spots, FS - 3, force=text == texts[-1] and share >= 0.2,
                                color="#333333", zorder=6, bbox=WHITE_BOX):
                    break

    # The batch trajectory: the step's aggregate point at each batch; hollow where it does not fit.
    if d.trajectory:
        tx = [p.intensity for p in d.trajectory]
        ty = [p.flops_per_s / TERA for p in d.trajectory]
        ax.plot(tx, ty, "-", color=style.TRAJECTORY_COLOUR, linewidth=1.6, zorder=5)
        for p, x, y in zip(d.trajectory, tx, ty, strict=True):
            marker = style.BOUND_MARKERS.get(p.bound, ("o", ""))[0]
            ax.plot([x], [y], marker, markersize=7, zorder=6, markeredgecolor=style.TRAJECTORY_COLOUR,
                    markerfacecolor=style.TRAJECTORY_COLOUR if p.fits else "white", markeredgewidth=1.5)
        for i, p in enumerate(d.trajectory):
            labels.place((tx[i], ty[i]), f"B={p.batch:,}" if i == 0 else f"{p.batch:,}", TRAJECTORY_SPOTS, FS - 2,
                         zorder=7, color=style.TRAJECTORY_COLOUR)
    ax.plot([d.step.intensity], [d.step.flops_per_s / TERA], "*", markersize=22, color=style.OKABE_ITO["yellow"],
            markeredgecolor="black", markeredgewidth=1.2, zorder=8)

    notes = []
    if d.communication:
        notes.append(f"Communication, on the interconnect rather than this roofline: {d.communication_share:.0%} of "
                     f"the step ({', '.join(d.communication)}).")
    if d.not_drawn:
        notes.append(f"Not drawn (no FLOPs, intensity 0): {', '.join(d.not_drawn)}.")
    lines = [line for note in notes for line in textwrap.wrap(note, 150)]
    for i, line in enumerate(lines):
        fig.text(0.1, 0.012 + 0.024 * (len(lines) - 1 - i), line, fontsize=FS - 4, color="#555555")
    return fig
