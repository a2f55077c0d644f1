"""serving.steady.iterate: the fixed-point loop the steady-state models share stops each point once it settles."""

from __future__ import annotations

import numpy as np
import pytest

from rooflm.serving.steady import ITERATIONS, SETTLED, iterate, residual_step

# The fixed point of x = cos(x) (the Dottie number), a published constant: 0.739085133215160641655312087673…
DOTTIE = 0.7390851332151607


def test_points_settle_on_their_fixed_point_and_stop() -> None:
    calls = [0]

    def update(x: np.ndarray) -> tuple[np.ndarray]:
        calls[0] += 1
        return (np.cos(x),)

    (x,) = iterate(update, (np.array([0.0, 1.0, 3.0]),), ITERATIONS)
    assert np.allclose(x, DOTTIE, rtol=1e-12, atol=0)
    # cos contracts by |sin(0.739)| = 0.674 an iteration: from |x0 - x*| ≤ 2.3 to 1e-13 · 0.739 takes about
    # log(2.3 / 7.4e-14) / log(1 / 0.674) = 79 iterations (77 counted), far fewer than the 200 of the loop.
    assert 60 <= calls[0] <= 100


def test_each_point_freezes_where_it_settled_whatever_runs_beside_it() -> None:
    """A point evaluated beside others (one slow, one NaN that never settles) ends exactly where it ends alone."""
    def update(x: np.ndarray) -> tuple[np.ndarray]:
        return (np.cos(x),)

    (alone,) = iterate(update, (np.array([0.5]),), ITERATIONS)
    (together,) = iterate(update, (np.array([0.5, 3.0, np.nan]),), ITERATIONS)
    assert together[0] == alone[0]  # to the last bit
    assert np.isnan(together[2])
    assert abs(together[1] - DOTTIE) <= 10 * SETTLED * DOTTIE


def test_a_point_that_never_settles_runs_every_iteration() -> None:
    calls = [0]

    def flip(x: np.ndarray) -> tuple[np.ndarray]:
        calls[0] += 1
        return (-x,)  # oscillates between ±1 forever

    (x,) = iterate(flip, (np.array([1.0]),), 7)
    assert calls[0] == 7 and x[0] == -1.0  # 7 flips from +1


def test_an_arrival_waits_the_length_biased_rest_of_the_step_in_progress() -> None:
    """Half the steps mixed (30 ms), half decode-only (10 ms): the mean step is 20 ms, but a random instant falls in
    a mixed step 30 / (30 + 10) = 75% of the time. The mean rest is E[τ²] / (2 E[τ]) = (0.5 · 30² + 0.5 · 10²) /
    (2 · 20) = 500 / 40 = 12.5 ms, not half the mean step (10 ms)."""
    s = {"phi": np.array([0.5]), "tau_mixed": np.array([0.030]), "tau0": np.array([0.010])}
    assert residual_step(s, np.array([0.020]))[0] == pytest.approx(0.0125, rel=1e-12)
    # Every step alike: the rest is half a step.
    s = {"phi": np.array([0.0]), "tau_mixed": np.array([0.030]), "tau0": np.array([0.010])}
    assert residual_step(s, np.array([0.010]))[0] == pytest.approx(0.005, rel=1e-12)
