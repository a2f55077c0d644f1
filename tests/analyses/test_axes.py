"""Sweep axes as text: sizes counted without building them, big ones refused before any value exists."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rooflm.analyses.axes import MAX_AXIS_VALUES, count_int_list, parse_int_list
from rooflm.errors import InvalidInputError


@pytest.mark.parametrize(("text", "count"), [
    ("1,2,8", 3),
    ("1:4096", 4096),
    ("1:4096:8", 512),  # 1, 9, …, 4089: (4096 − 1) // 8 + 1
    ("1:4096:x2", 13),  # 2^0 … 2^12
    ("3:1000:x10", 3),  # 3, 30, 300
    ("5:1", 0),  # an empty range
])
def test_counts_by_hand(text: str, count: int) -> None:
    assert count_int_list(text, "batch") == count


@given(st.lists(st.tuples(st.integers(1, 300), st.integers(0, 300), st.sampled_from(["", "3", "x2", "x1.5"])),
                min_size=1, max_size=4))
def test_the_count_bounds_the_values_built(parts: list[tuple[int, int, str]]) -> None:
    # The count is exact before duplicates merge, so it is never below the number of values parse builds.
    text = ",".join(f"{lo}:{lo + span}" + (f":{step}" if step else "") for lo, span, step in parts)
    assert count_int_list(text, "batch") >= len(parse_int_list(text, "batch"))


def test_a_huge_axis_is_refused_before_it_is_built() -> None:
    started = time.perf_counter()
    with pytest.raises(InvalidInputError, match="lists 1,000,000,000,000 values") as caught:
        parse_int_list("1:1000000000000", "batch")
    assert caught.value.field == "batch" and f"{MAX_AXIS_VALUES:,}" in str(caught.value)
    assert time.perf_counter() - started < 1  # generous; building the list would take hours and terabytes
    assert parse_int_list("1:1000000", "batch")[-3:] == [999_998, 999_999, 1_000_000]


@pytest.mark.parametrize("text", ["1:x", "1:8:0", "1:8:x1", "0:8:x2", "1:8:xnan", "a", "1:2:3:4", ""])
def test_malformed_axes_name_the_flag(text: str) -> None:
    with pytest.raises(InvalidInputError, match=r"^prompt_len .* is not a list of integers") as caught:
        parse_int_list(text, "prompt-len")
    assert caught.value.field == "prompt_len"
