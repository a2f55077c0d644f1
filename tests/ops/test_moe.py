import numpy as np
import pytest

from rooflm.ops.moe import Routing, distinct_experts, expert_classes, tokens_per_expert


def _simulated_distinct(tokens: int, n_experts: int, top_k: int, trials: int, seed: int = 0) -> float:
    """Monte-Carlo uniform top-k routing: each token picks k different experts at random."""
    rng = np.random.default_rng(seed)
    hits = []
    for _ in range(trials):
        picks = np.argsort(rng.random((tokens, n_experts)), axis=1)[:, :top_k]
        hits.append(len(np.unique(picks)))
    return float(np.mean(hits))


@pytest.mark.parametrize(("tokens", "n_experts", "top_k"), [(1, 256, 8), (16, 256, 8), (64, 128, 8), (512, 256, 8),
                                                            (4, 8, 2), (3000, 256, 8)])
def test_distinct_experts_match_a_simulation_of_uniform_routing(tokens: int, n_experts: int, top_k: int) -> None:
    expected = distinct_experts(tokens, n_experts, top_k / n_experts)
    simulated = _simulated_distinct(tokens, n_experts, top_k, trials=200)
    assert expected == pytest.approx(simulated, rel=0.02, abs=0.05)


def test_one_token_reads_exactly_k_experts_and_many_tokens_read_all() -> None:
    # T = 1: E·(1 − (1 − k/E)) = k. T = 10,000: (1 − 8/256)^10000 ≈ e^-312 → all 256.
    assert distinct_experts(1, 256, 8 / 256) == pytest.approx(8)
    assert distinct_experts(10_000, 256, 8 / 256) == pytest.approx(256)


def test_tokens_per_expert_conserves_routed_tokens() -> None:
    # T·k token-expert pairs spread over the experts hit: M·D = T·k.
    for t in (1, 7, 100, 5000):
        hit = distinct_experts(t, 128, 8 / 128)
        assert tokens_per_expert(t, 128, 8 / 128) * hit == pytest.approx(t * 8)


def test_skewed_routing_keeps_k_picks_per_token_and_hits_fewer_experts() -> None:
    classes = expert_classes(256, 8, Routing(hot_factor=8.0, hot_fraction=0.1))
    # 26 hot experts (10% of 256) at 8x the probability of the 230 cold ones; picks per token still 8.
    assert classes[0][0] == 26 and classes[1][0] == 230
    assert sum(n * p for n, p in classes) == pytest.approx(8.0)
    assert classes[0][1] == pytest.approx(8 * classes[1][1])
    skewed = sum(distinct_experts(64, n, p) for n, p in classes)
    assert skewed < distinct_experts(64, 256, 8 / 256)
