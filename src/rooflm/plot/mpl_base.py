"""What every static figure shares: a Figure on the Agg canvas (no pyplot, no global state), slide-sized
type, plain log-axis labels, a label placer that keeps text from overlapping, and saving by suffix.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Annotation
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from rooflm.plot import style
from rooflm.specs.files import write_atomic

FS = style.FONT_SIZE
WHITE_BOX = {"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1}

Point = tuple[float, float]
Quad = list[Point]  # a label's (possibly rotated) rectangle, or a marker's square, in display pixels
Spot = tuple[float, float, str, str]  # offset in points (dx, dy), ha, va


def new_figure(ncols: int = 1) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=style.FIGSIZE, dpi=style.DPI)
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    for ax in axes:
        ax.tick_params(labelsize=FS - 1)
        ax.grid(True, which="major", color="#DDDDDD", linewidth=0.8)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return fig, axes


def wrap_title(text: str, width: int = 105) -> tuple[str, int]:
    """A title broken at its " · " separators into lines that fit a 12-inch figure, and how many lines; its names
    (the user's) shown literally."""
    lines: list[str] = []
    for part in style.mpl_text(text).split(" · "):
        if lines and len(lines[-1]) + 3 + len(part) <= width:
            lines[-1] += " · " + part
        else:
            lines.append(part)
    return "\n".join(lines), len(lines)


def plain(value: float, _pos: object = None) -> str:
    """Tick labels a slide audience reads at a glance: 0.1, 1, 10, 1,000 rather than 10⁻¹ … 10³."""
    if value <= 0:
        return ""
    if value >= 1:
        return f"{value:,.0f}"
    return f"{value:.{max(0, -math.floor(math.log10(value)))}f}"


def log_axis(ax: Axes, which: str, base: int = 10, fine: bool = False) -> None:
    """A log axis with plain tick labels; ``fine`` adds 2 and 5 between decades (for axes spanning few)."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log", base=base)
    axis.set_major_formatter(FuncFormatter(plain))
    axis.set_minor_formatter(NullFormatter())
    if base == 2:
        axis.set_major_locator(LogLocator(base=4))
    elif fine:
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))


def decades(values: Sequence[float], pad_low: float, pad_high: float) -> tuple[float, float]:
    """Axis limits on whole decades around ``values``."""
    lo, hi = min(values) / pad_low, max(values) * pad_high
    return 10 ** math.floor(math.log10(lo)), 10 ** math.ceil(math.log10(hi))


def _overlap(a: Quad, b: Quad) -> bool:
    """Whether two convex quadrilaterals overlap (separating-axis test)."""
    for quad in (a, b):
        for (x0, y0), (x1, y1) in zip(quad, quad[1:] + quad[:1], strict=True):
            nx, ny = y0 - y1, x1 - x0
            pa = [nx * x + ny * y for x, y in a]
            pb = [nx * x + ny * y for x, y in b]
            if max(pa) < min(pb) or max(pb) < min(pa):
                return False
    return True


class Labels:
    """Puts each label at the first of its candidate spots where it overlaps no label or marker placed
    before and stays inside the axes. Text sizes are estimated from the characters (no draw needed), which
    is enough once the layout is fixed (``subplots_adjust``, not a layout engine that moves axes later)."""

    def __init__(self, ax: Axes) -> None:
        self.ax = ax
        self.pt = ax.figure.dpi / 72
        self.taken: list[Quad] = []
        self.frame = ax.bbox.extents

    def quad(self, xy: Point, text: str, fontsize: float, spot: Spot, rotation: float = 0,
             rotation_mode: str = "default") -> Quad:
        """The text's rectangle on screen. ``anchor`` mode aligns the text in its own frame and turns it about
        the anchor; ``default`` turns it first and aligns its upright bounding box (matplotlib's two modes)."""
        x, y = self.ax.transData.transform(xy)
        x, y = x + spot[0] * self.pt, y + spot[1] * self.pt
        lines = text.split("\n")
        w = 0.6 * fontsize * max(len(line) for line in lines) * self.pt
        h = 1.25 * fontsize * len(lines) * self.pt
        c, s = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
        corners = [(u * c - v * s, u * s + v * c) for u, v in ((0, 0), (w, 0), (w, h), (0, h))]
        if rotation_mode == "anchor":
            # Align in the text's frame, then turn: shift along the text's own axes.
            du = {"left": 0.0, "center": -w / 2, "right": -w}[spot[2]]
            dv = {"bottom": 0.0, "center": -h / 2, "center_baseline": -h / 2, "top": -h}[spot[3]]
            shift = (du * c - dv * s, du * s + dv * c)
        else:
            xs, ys = [p[0] for p in corners], [p[1] for p in corners]
            bw, bh = max(xs) - min(xs), max(ys) - min(ys)
            left = {"left": 0.0, "center": -bw / 2, "right": -bw}[spot[2]]
            bottom = {"bottom": 0.0, "center": -bh / 2, "center_baseline": -bh / 2, "top": -bh}[spot[3]]
            shift = (left - min(xs), bottom - min(ys))
        return [(x + px + shift[0], y + py + shift[1]) for px, py in corners]

    def free(self, q: Quad) -> bool:
        fx0, fy0, fx1, fy1 = self.frame
        inside = all(fx0 <= x <= fx1 and fy0 <= y <= fy1 for x, y in q)
        return inside and not any(_overlap(q, t) for t in self.taken)

    def reserve_point(self, xy: Point, radius_pt: float) -> None:
        """Keep labels off a marker of ``radius_pt`` points at ``xy``."""
        x, y = self.ax.transData.transform(xy)
        r = radius_pt * self.pt
        self.taken.append([(x - r, y - r), (x + r, y - r), (x + r, y + r), (x - r, y + r)])

    def reserve_line(self, a: Point, b: Point, half_width_pt: float = 2) -> None:
        """Keep labels off a straight line from ``a`` to ``b`` (data coordinates): a thin band around it."""
        (x0, y0), (x1, y1) = self.ax.transData.transform([a, b])
        length = math.hypot(x1 - x0, y1 - y0) or 1.0
        nx, ny = (y0 - y1) / length * half_width_pt * self.pt, (x1 - x0) / length * half_width_pt * self.pt
        self.taken.append([(x0 + nx, y0 + ny), (x1 + nx, y1 + ny), (x1 - nx, y1 - ny), (x0 - nx, y0 - ny)])

    def reserve_artist(self, artist: Any) -> None:
        """Keep labels off an artist already drawn (the legend)."""
        # The Agg canvas has get_renderer; matplotlib's stubs declare only FigureCanvasBase, which lacks it.
        e = artist.get_window_extent(self.ax.figure.canvas.get_renderer())  # type: ignore[attr-defined]
        self.taken.append([(e.x0, e.y0), (e.x1, e.y0), (e.x1, e.y1), (e.x0, e.y1)])

    def place(self, xy: Point, text: str, spots: Sequence[Spot], fontsize: float, *, force: bool = False,
              rotation: float = 0, rotation_mode: str = "default", **kwargs: Any) -> Annotation | None:
        """Annotate ``xy`` at the first free spot; with ``force``, at the first spot if none is free."""
        for spot in spots:
            q = self.quad(xy, text, fontsize, spot, rotation, rotation_mode)
            if self.free(q):
                break
        else:
            if not force:
                return None
            spot = spots[0]
            q = self.quad(xy, text, fontsize, spot, rotation, rotation_mode)
        self.taken.append(q)
        return self.ax.annotate(text, xy, xytext=spot[:2], textcoords="offset points", ha=spot[2], va=spot[3],
                                fontsize=fontsize, rotation=rotation, rotation_mode=rotation_mode, **kwargs)


def save(fig: Figure, path: str | Path) -> Path:
    """Write PNG, SVG or PDF by the suffix. SVG keeps its text as text (so it can be searched and edited)."""
    path = Path(path)
    buffer = io.BytesIO()  # drawn in memory, then written whole: a failed write leaves no truncated figure
    with mpl.rc_context({"svg.fonttype": "none", "pdf.fonttype": 42}):
        fig.savefig(buffer, format=path.suffix.lstrip(".").lower(), dpi=style.DPI, facecolor="white")
    return write_atomic(path, buffer.getvalue(), str(path), field="output")
