"""Colours, names and sizes shared by the static (matplotlib) and interactive (plotly) figures.

The palette is Okabe & Ito's (2008), distinguishable under the common colour-vision deficiencies;
shapes also carry the bound, so no figure relies on colour alone.
"""

from __future__ import annotations

import html


def plotly_text(text: str) -> str:
    """Text that names what the user gave (a model, a device's display name) as plotly shows it literally: plotly reads
    a subset of HTML in titles, legends, hover text and annotations (a link, styled text), and ``%{...}`` in hover
    templates. Entities are what plotly decodes back to the characters."""
    return html.escape(text, quote=False).replace("%", "&#37;")


def mpl_text(text: str) -> str:
    """Text as matplotlib shows it literally: a pair of ``$`` would start mathtext (``\\$`` is a plain dollar sign)."""
    return text.replace("$", r"\$")

OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}

# Series on one figure (schemes, devices) take these in order; yellow is last because it is faint on white.
SERIES_COLOURS: tuple[str, ...] = (
    OKABE_ITO["blue"], OKABE_ITO["vermillion"], OKABE_ITO["bluish_green"], OKABE_ITO["reddish_purple"],
    OKABE_ITO["orange"], OKABE_ITO["sky_blue"], OKABE_ITO["black"], OKABE_ITO["yellow"],
)

# Operator classes as the report names them (report.operators[].op_class, totals.time_by_class).
CLASS_COLOURS: dict[str, str] = {
    "weight_gemm": OKABE_ITO["blue"],
    "attention": OKABE_ITO["vermillion"],
    "expert": OKABE_ITO["bluish_green"],
    "communication": OKABE_ITO["reddish_purple"],
    "other": OKABE_ITO["orange"],
    "overhead": "#7F7F7F",
}
CLASS_LABELS: dict[str, str] = {
    "weight_gemm": "weight GEMMs",
    "attention": "attention / KV cache",
    "expert": "experts (MoE)",
    "communication": "communication",
    "other": "norms, RoPE, activations",
    "overhead": "kernel launch overhead",
}

# Memory components (report.memory) and the device's capacity line.
MEMORY_COLOURS: dict[str, str] = {
    "weights": OKABE_ITO["blue"],
    "kv_cache": OKABE_ITO["vermillion"],
    "activations": OKABE_ITO["orange"],
    "capacity": OKABE_ITO["black"],
}
MEMORY_LABELS: dict[str, str] = {"weights": "weights", "kv_cache": "KV cache", "activations": "activations"}

# Roofs: the scheme's own roof is drawn solid and dark, the device's other roofs lighter.
ROOF_COLOUR = "#222222"
OTHER_ROOF_COLOUR = "#8C8C8C"
TRAJECTORY_COLOUR = OKABE_ITO["black"]

# Marker shapes by bound (matplotlib / plotly names).
BOUND_MARKERS: dict[str, tuple[str, str]] = {
    "memory": ("o", "circle"),
    "compute": ("s", "square"),
    "communication": ("D", "diamond"),
    "overhead": ("^", "triangle-up"),
}
# A serving point may also be held back by an engine limit (rooflm.serving.result.SERVING_BOUNDS).
SERVING_BOUND_MARKERS: dict[str, tuple[str, str]] = BOUND_MARKERS | {
    "kv_cache": ("v", "triangle-down"),
    "max_running": ("P", "cross"),
    "max_tokens_per_step": ("X", "x"),
    "overloaded": ("*", "star"),
}
SERVING_BOUND_LABELS: dict[str, str] = {
    "memory": "memory-bound", "compute": "compute-bound", "communication": "communication-bound",
    "overhead": "launch-overhead-bound", "kv_cache": "KV cache full", "max_running": "max running requests",
    "max_tokens_per_step": "max tokens per step", "overloaded": "overloaded (queue grows)",
}

# Sizes that stay readable on a slide: a 12 × 7 inch figure shown full-width.
FIGSIZE: tuple[float, float] = (12.0, 7.0)
DPI = 150
FONT_SIZE = 14


def class_colour(op_class: str) -> str:
    return CLASS_COLOURS.get(op_class, OKABE_ITO["sky_blue"])


def class_label(op_class: str) -> str:
    return CLASS_LABELS.get(op_class, op_class.replace("_", " "))
