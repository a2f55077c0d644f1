import numpy as np
import pytest

from rooflm.ops.moe import Routing, distinct_experts, expected_max_load, expert_classes, tokens_per_expert


def _simulated_distinct(tokens: int, n_experts: int, top_k: int, trials: int, seed: int = 0) -> tuple[float, float]:
    """Monte-Carlo uniform top-k routing: each token picks k different experts at random (the k smallest of i.i.d.
    uniforms). Returns the mean number of experts hit and its standard error."""
    rng = np.random.default_rng(seed)
    hits = []
    for _ in range(trials):
        picks = np.argpartition(rng.random((tokens, n_experts)), top_k - 1, axis=1)[:, :top_k]
        hits.append(len(np.unique(picks)))
    return float(np.mean(hits)), float(np.std(hits, ddof=1) / np.sqrt(trials))


@pytest.mark.parametrize(("tokens", "n_experts", "top_k"), [(1, 256, 8), (16, 256, 8), (64, 128, 8), (512, 256, 8),
                                                            (4, 8, 2), (3000, 256, 8)])
def test_distinct_experts_match_a_simulation_of_uniform_routing(tokens: int, n_experts: int, top_k: int) -> None:
    expected = distinct_experts(tokens, n_experts, top_k / n_experts)
    simulated, standard_error = _simulated_distinct(tokens, n_experts, top_k, trials=100)
    # The simulated mean is within 4 standard errors of the true one (a 6e-5 chance otherwise), plus 1/trials: a mean
    # of 100 integer counts cannot resolve less, and where every trial hits the same count (512 tokens hit all 256
    # experts but for a 2e-5 chance) the sample shows no spread at all.
    assert expected == pytest.approx(simulated, abs=4 * standard_error + 1 / 100)


def test_one_token_reads_exactly_k_experts_and_many_tokens_read_all() -> None:
    # T = 1: E·(1 − (1 − k/E)) = k. T = 10,000: (1 − 8/256)^10000 ≈ e^-312 → all 256.
    assert distinct_experts(1, 256, 8 / 256) == pytest.approx(8)
    assert distinct_experts(10_000, 256, 8 / 256) == pytest.approx(256)


def test_tokens_per_expert_by_hand() -> None:
    # T·k token-expert pairs spread over the D experts hit, M = T·k / D, with 128 experts and top-8:
    # T = 1: 8 experts hit, one token each: M = 1.
    assert tokens_per_expert(1, 128, 8 / 128) == pytest.approx(1.0)
    # T = 16: D = 128 · (1 − (120/128)^16) = 128 · (1 − e^(16 · ln 0.9375)) = 128 · (1 − 0.35607) = 82.42, so
    # M = 128 / 82.42 = 1.5530.
    assert tokens_per_expert(16, 128, 8 / 128) == pytest.approx(1.5530, rel=1e-4)
    # T = 10,000: every expert hit ((120/128)^10000 ≈ e^-645): M = 80,000 / 128 = 625.
    assert tokens_per_expert(10_000, 128, 8 / 128) == pytest.approx(625.0)


def test_skewed_routing_keeps_k_picks_per_token_and_hits_fewer_experts() -> None:
    classes = expert_classes(256, 8, Routing(hot_factor=8.0, hot_fraction=0.1))
    # 26 hot experts (10% of 256) at 8x the probability of the 230 cold ones; picks per token still 8.
    assert classes[0][0] == 26 and classes[1][0] == 230
    assert sum(n * p for n, p in classes) == pytest.approx(8.0)
    assert classes[0][1] == pytest.approx(8 * classes[1][1])
    skewed = sum(distinct_experts(64, n, p) for n, p in classes)
    assert skewed < distinct_experts(64, 256, 8 / 256)


def test_most_loaded_of_two_devices_by_hand() -> None:
    # 100 tokens pick 2 of 8 experts; 2 devices hold 4 experts each. A device's load has mean 100 · 2/2 = 100 and the
    # loads' spread s² = 100 · (2/2) · (8 − 2)/(8 − 1) = 85.714 (the finite-population factor (E − k)/(E − 1) of
    # drawing k distinct experts of E), s = 9.2582; the expected larger of two standard normals by Blom's
    # approximation is Φ⁻¹(1.625 / 2.25) = 0.58946. Expected maximum: 100 + 9.2582 · 0.58946 = 105.457.
    assert float(expected_max_load(100.0, 8, 2, 2)) == pytest.approx(105.457, rel=1e-4)


def test_one_device_takes_every_pick() -> None:
    assert float(expected_max_load(100.0, 8, 2, 1)) == 200.0  # 100 tokens x 2 picks, all on the one device


def test_a_device_with_one_expert_takes_at_most_one_pick_per_token() -> None:
    # 8 experts on 8 devices, 4 picks per token: a device holds one expert, so one token loads it at most once, however
    # large the normal approximation's tail (0.5 + 0.5345 · 1.4342 = 1.267 would be more than the token has).
    assert float(expected_max_load(1.0, 8, 4, 8)) == 1.0


def test_skew_keeps_one_cold_expert_when_the_hot_share_rounds_to_all() -> None:
    # 8 experts, "95% hot" rounds to 8 hot: capped at 7 hot and 1 cold. Top-2, hot 2x as likely: p_cold = 2 / (7 · 2
    # + 1) = 2/15, p_hot = 4/15; the picks still sum to k: 7 · 4/15 + 2/15 = 30/15 = 2.
    classes = expert_classes(8, 2, Routing(hot_factor=2.0, hot_fraction=0.95))
    assert [n for n, _ in classes] == [7, 1]
    assert [p for _, p in classes] == pytest.approx([4 / 15, 2 / 15])

