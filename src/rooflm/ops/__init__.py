"""Operators as small pure formula functions: FLOPs and main-memory bytes, split by class.

Each function takes sizes (numbers or numpy arrays, broadcast together) and byte widths, and
returns a :class:`Cost`. They know nothing of hardware: the roofline module turns costs into time.
"""

from rooflm.ops.cost import Cost, Op

__all__ = ["Cost", "Op"]
