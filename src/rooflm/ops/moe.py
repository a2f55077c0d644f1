"""Mixture-of-experts: how many experts a step reads, and how many tokens each one sees.

With T tokens each choosing k of E experts, an expert is missed by one token with probability
1 − k/E, so under uniform routing the expected number of distinct experts hit is
E·(1 − (1 − k/E)^T). Only those experts' weights are read, and each sees on average T·k/D tokens:
that is the M of its GEMMs, and why an expert's GEMMs cross the ridge at a batch ≈ E/k times
larger than a dense layer's.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

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


def expected_max_std_normal(n: int) -> float:
    """E[max of n independent standard normals], by Blom's approximation Φ⁻¹((n − 0.375)/(n + 0.25))
    (Blom 1958): 0.5895 / 1.4342 / 2.3367 against the exact ∫ x·n·φ(x)·Φ(x)^(n−1) dx = 0.5642 / 1.4236 / 2.3437
    at n = 2 / 8 / 64, within 0.03. 0 for n = 1."""
    if n <= 1:
        return 0.0
    return NormalDist().inv_cdf((n - 0.375) / (n + 0.25))


def expected_max_load(tokens: Num, num_experts: int, top_k: int, ep: int) -> Num:
    """Expected token-expert assignments on the most-loaded of ``ep`` devices (each holding E/ep experts)
    under uniform top-k routing.

    A token's k distinct experts put a hypergeometric number on a given device: mean k/ep, variance
    (k/ep)(1 − 1/ep)(E − k)/(E − 1). Over T independent tokens a device's load L_r has mean μ = T·k/ep; the
    ep loads sum to T·k, and their covariance is exactly that of Y_r − Ȳ for independent Y_r of variance
    s² = T·(k/ep)·(E − k)/(E − 1). For many tokens the Y_r are near-normal (central limit), so
    E[max_r L_r] ≈ μ + s·e_ep, with e_ep the expected maximum of ep standard normals. Capped at the
    most a device can take: every token sending min(k, E/ep) of its picks there.
    """
    if ep <= 1:  # one device takes every pick
        return tokens * top_k
    mu = tokens * top_k / ep
    s = np.sqrt(tokens * (top_k / ep) * (num_experts - top_k) / max(num_experts - 1, 1))
    return np.minimum(mu + s * expected_max_std_normal(ep), tokens * min(top_k, num_experts // ep))


def ep_load_factor(tokens: Num, num_experts: int, top_k: int, ep: int) -> Num:
    """Most-loaded device's tokens over the mean (≥ 1): the factor by which its experts' M exceeds the average."""
    if ep <= 1:
        return 1.0
    mu = np.maximum(tokens * top_k / ep, 1e-30)
    return np.maximum(expected_max_load(tokens, num_experts, top_k, ep) / mu, 1.0)
