"""Length distributions and load lists: the syntax, the moments of the draws, and the messages for mistakes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rooflm.errors import InvalidInputError
from rooflm.serving.traffic import check_loads, moments, parse_lengths, parse_rates


def test_fixed_length() -> None:
    lengths = parse_lengths("1024", "prompt_len")
    assert lengths.fixed == 1024 and lengths.upper == 1024
    assert np.all(lengths.sample(np.random.default_rng(0), 5) == 1024)


def test_uniform_draws_cover_both_ends_with_the_textbook_mean() -> None:
    x = parse_lengths("uniform:512:2048", "prompt_len").sample(np.random.default_rng(0), 100_000)
    assert x.min() == 512 and x.max() == 2048
    # Discrete uniform on 512 … 2048: mean (512 + 2048) / 2 = 1280, sd ≈ 1537 / √12 ≈ 443.7; 5 standard errors.
    assert abs(x.mean() - 1280) < 5 * 443.7 / math.sqrt(len(x))


def test_lognormal_is_parameterised_by_its_own_mean_and_std() -> None:
    x = parse_lengths("lognormal:1000:500", "gen_len").sample(np.random.default_rng(1), 200_000)
    # The draws' own mean and sd are the ones given (rounding to integers moves them by < 0.5 token).
    assert abs(x.mean() - 1000) < 5 * 500 / math.sqrt(len(x)) + 0.5
    assert abs(x.std() / 500 - 1) < 0.03
    assert x.min() >= 1


def test_normal_draws_are_clipped_to_one_token() -> None:
    x = parse_lengths("normal:10:50", "gen_len").sample(np.random.default_rng(2), 10_000)
    assert x.min() == 1


def test_decode_context_is_weighted_by_decode_rows() -> None:
    # Fixed L = 100, G = 11: the 10 decode rows run at contexts 101 … 110, mean 105.5 = L + G/2.
    m = moments(parse_lengths("100", "prompt_len"), parse_lengths("11", "gen_len"))
    assert m.decode_context == pytest.approx(105.5)


@pytest.mark.parametrize("text", ["", "abc", "uniform:5", "uniform:10:5", "gauss:1:2", "0", "normal:10:-1",
                                  "uniform:1.5:3", "nan", "lognormal:inf:1", "1" * 300])
def test_bad_lengths_name_the_flag(text: str) -> None:
    with pytest.raises(InvalidInputError) as e:
        parse_lengths(text, "prompt_len")
    assert e.value.field == "prompt_len" and str(e.value).startswith("prompt_len ") and "--" not in str(e.value)


def test_one_load_kind() -> None:
    assert check_loads([1, 8], None) == ("concurrency", [1.0, 8.0])
    assert check_loads(None, [0.5]) == ("request_rate", [0.5])
    for bad in [([1], [1.0]), (None, None), ([0], None), (None, [0.0]), (None, [math.inf]), ([], None)]:
        with pytest.raises(InvalidInputError):
            check_loads(*bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"^request_rate '1,x' is not a list of numbers"):
        parse_rates("1,x")
