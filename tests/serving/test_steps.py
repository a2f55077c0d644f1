"""serving.steps: the step-time tables' bilinear interpolation, at one point (what the simulation asks each step) and
over arrays (what the steady model asks), gives the same numbers; hand-checked at a cell's centre and beyond the ends."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rooflm.serving.steps import Engine, StepModel, _interp2

BATCH = np.array([1.0, 2.0, 4.0, 8.0, 64.0])
CONTEXT = np.array([128.0, 1024.0, 8192.0])
TABLE = np.arange(15, dtype=np.float64).reshape(5, 3) ** 1.5  # any non-linear table


@settings(max_examples=200, deadline=None)
@given(st.floats(-10, 100), st.floats(0, 20000))
def test_one_point_equals_the_array_path(b: float, c: float) -> None:
    one = _interp2(BATCH, CONTEXT, TABLE, b, c)  # type: ignore[arg-type]
    many = _interp2(BATCH, CONTEXT, TABLE, np.array([b, 3.0]), np.array([c, 500.0]))
    assert one == many[0]


def test_hand_values() -> None:
    table = np.array([[0.0, 10.0], [20.0, 30.0]])
    grid_b, grid_c = np.array([1.0, 3.0]), np.array([100.0, 300.0])
    # The cell's centre: the mean of its four corners, (0 + 10 + 20 + 30) / 4 = 15.
    assert _interp2(grid_b, grid_c, table, 2.0, 200.0) == 15.0  # type: ignore[arg-type]
    # Beyond the ends the table is held: b = 9 → the b = 3 row, c = 50 → the c = 100 column: 20.
    assert _interp2(grid_b, grid_c, table, 9.0, 50.0) == 20.0  # type: ignore[arg-type]
    # A quarter along b at c = 300: 10 + (30 − 10) / 4 = 15.
    assert _interp2(grid_b, grid_c, table, 1.5, 300.0) == 15.0  # type: ignore[arg-type]


def _steps() -> StepModel:
    """A step model on small hand-made tables (non-linear, so an interpolation slip shows)."""
    rows = np.array([1.0, 16.0, 256.0, 4096.0])
    prompts = np.array([1.0, 512.0, 8192.0])
    return StepModel(batch_grid=BATCH, context_grid=CONTEXT, decode=TABLE * 1e-4, decode_attention=TABLE * 2e-5,
                     decode_bound=np.full(TABLE.shape, "memory"), rows_grid=rows, decode_linear=1e-3 + rows**1.2 * 1e-6,
                     chunk_grid=rows, prefill_linear=2e-3 + rows**1.1 * 1e-6, prompt_grid=prompts,
                     prompt_attention=prompts**2 * 1e-9, engine=Engine(64, 4096, 10**6), devices=1, dp=1,
                     kv_bytes_per_token=1.0)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([0.0, 0.5, 1.0]) | st.floats(0, 300), st.sampled_from([0.0, 0.5, 1.0]) | st.floats(0, 5000),
       st.floats(0, 20000), st.floats(0, 1e-2))
def test_one_step_equals_the_array_path(b: float, t: float, c: float, att: float) -> None:
    """The simulation's scalar step time is the steady model's array one, to the last bit, on every branch: no
    prefill (t = 0) with and without decode rows, a fraction of a row, a fraction of a chunk token."""
    steps = _steps()
    assert steps.step_time_point(b, t, c, att) == float(steps.step_time(b, t, c, att))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-10, 100), min_size=1, max_size=5), st.floats(0, 20000))
def test_the_disaggregated_models_decode_lookup_is_the_bilinear_one(batches: list[float], c: float) -> None:
    """disagg_steady reads D(b, c̄) at one context with the context weights applied once: the same values, to the
    last bit, as the 2-D interpolation, inside the grid and beyond its ends; a one-point batch grid holds its value."""
    from rooflm.serving.disagg_steady import _DecodeAt

    steps = _steps()
    b = np.array(batches)
    assert np.array_equal(_DecodeAt(steps, c)(b), steps.decode_time(b, np.full_like(b, c)))
    one = StepModel(**{**steps.__dict__, "batch_grid": BATCH[:1], "decode": steps.decode[:1]})
    assert np.array_equal(_DecodeAt(one, c)(b), np.full_like(b, float(one.decode_time(1.0, c))))
