"""Findings in words: a step's regime, what binds and the levers ranked by predicted gain (prose), and the regime
table read as sentences (regimes)."""

from rooflm.explain.prose import Explanation, explain

__all__ = ["Explanation", "explain"]
