"""Mixture-of-experts: how many experts a step reads, and how many tokens each one sees.

With T tokens each choosing k of E experts, an expert is missed by one token with probability
1 − k/E, so under uniform routing the expected number of distinct experts hit is
E·(1 − (1 − k/E)^T). Only those experts' weights are read, and each sees on average T·k/D tokens:
that is the M of its GEMMs, and why an expert's GEMMs cross the ridge at a batch ≈ E/k times
larger than a dense layer's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rooflm.ops.cost import Num


@dataclass(frozen=True)
class Routing:
    """How tokens spread over experts. ``hot_factor`` = 1 is uniform routing. Otherwise a fraction
    ``hot_fraction`` of the experts is chosen ``hot_factor`` times as often as each of the others."""

    hot_factor: float = 1.0
    hot_fraction: float = 0.1

    @property
    def uniform(self) -> bool:
        return self.hot_factor == 1.0

    def describe(self) -> str:
        if self.uniform:
            return "uniform routing (every expert equally likely)"
        return (f"skewed routing: {self.hot_fraction:.0%} of the experts are chosen {self.hot_factor:g}× as often "
                "as each of the others")


def expert_classes(num_experts: int, top_k: int, routing: Routing) -> list[tuple[int, float]]:
    """(number of experts, probability that one token picks one of them), per class of experts."""
    if routing.uniform:
        return [(num_experts, top_k / num_experts)]
    n_hot = max(1, min(num_experts - 1, round(num_experts * routing.hot_fraction)))
    n_cold = num_experts - n_hot
    p_cold = top_k / (n_hot * routing.hot_factor + n_cold)
    p_hot = min(1.0, routing.hot_factor * p_cold)
    p_cold = (top_k - n_hot * p_hot) / n_cold  # what the capped hot experts leave to the others
    return [(n_hot, p_hot), (n_cold, p_cold)]


def distinct_experts(tokens: Num, n_experts: int, p_pick: float) -> Num:
    """Expected experts of a class hit at least once by ``tokens`` tokens: n·(1 − (1 − p)^T)."""
    return n_experts * (1.0 - np.power(1.0 - p_pick, tokens))


def tokens_per_expert(tokens: Num, n_experts: int, p_pick: float) -> Num:
    """Average tokens an expert of the class sees, among the experts that were hit (the GEMM's M)."""
    hit = distinct_experts(tokens, n_experts, p_pick)
    return tokens * n_experts * p_pick / np.maximum(hit, 1e-30)
