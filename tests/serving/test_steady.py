"""serving.steady.iterate: the fixed-point loop the steady-state models share stops each point once it settles."""

from __future__ import annotations

import numpy as np

from rooflm.serving.steady import ITERATIONS, SETTLED, iterate

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
