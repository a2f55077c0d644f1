"""Sweep axes written as text: "1,2,8", "1:4096" (every integer), "1:4096:8" (every 8th), "1:4096:x2" (× 2 each).

The CLI and the web API take the same syntax. ``count_int_list`` sizes an axis without building it, so that a
request for 10^12 points is refused in microseconds instead of after filling memory.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from rooflm.errors import InvalidInputError, arg, quoted

# More values than this on one axis are refused up front: 10^7 values is already ~20 s of evaluation and 1 GB of
# CSV per value of the other axes, and the list of them alone holds ~400 MB of Python integers.
MAX_AXIS_VALUES = 10_000_000


def _ranges(text: str) -> Iterator[tuple[int, int, str]]:
    """(lo, hi, step) of each comma-separated part; a single value is the range lo:lo:1."""
    for part in (p.strip() for p in text.split(",")):
        if ":" not in part:
            value = int(part)
            yield value, value, "1"
            continue
        pieces = part.split(":")
        if len(pieces) not in (2, 3):
            raise ValueError
        lo, hi = int(pieces[0]), int(pieces[1])
        step = pieces[2].strip() if len(pieces) == 3 else "1"
        if step.startswith("x"):
            if not math.isfinite(float(step[1:])) or float(step[1:]) <= 1 or lo <= 0:
                raise ValueError
        elif int(step) <= 0:
            raise ValueError
        yield lo, hi, step


def _refuse(text: str, flag: str) -> InvalidInputError:
    return InvalidInputError(f"{arg(flag.replace('-', '_'))} {quoted(text)} is not a list of integers: use e.g. 1,2,8 or "
                             "1:4096 or 1:4096:x2",
                             field=flag.replace("-", "_"))


def count_int_list(text: str, flag: str) -> int:
    """How many values ``text`` lists (before duplicates are merged: an upper bound), without building them."""
    total = 0
    try:
        for lo, hi, step in _ranges(text):
            if hi < lo:
                continue
            if step.startswith("x"):
                total += math.floor(math.log(hi / lo, float(step[1:])) + 1e-9) + 1
            else:
                total += (hi - lo) // int(step) + 1
    except (ValueError, OverflowError, ZeroDivisionError):
        raise _refuse(text, flag) from None
    return total


def parse_int_list(text: str, flag: str, max_values: int = MAX_AXIS_VALUES) -> list[int]:
    """'1,2,8' → [1, 2, 8]; '1:4096' → 1…4096; '1:4096:8' → every 8th; '1:4096:x2' → 1, 2, 4, … (sorted, unique).
    More than ``max_values`` values is refused before any is built."""
    count = count_int_list(text, flag)
    if count > max_values:
        raise InvalidInputError(f"{arg(flag.replace('-', '_'))} {quoted(text)} lists {count:,} values; at most "
                                f"{max_values:,} can be "
                                "evaluated (split the range, or step through it: 1:N:x2)", field=flag.replace("-", "_"))
    parts = list(_ranges(text))
    if len(parts) == 1 and not parts[0][2].startswith("x") and parts[0][0] <= parts[0][1]:
        lo, hi, step = parts[0]
        return list(range(lo, hi + 1, int(step)))  # one range is sorted and unique already: no copy to dedupe
    values: list[int] = []
    for lo, hi, step in parts:
        if step.startswith("x"):
            factor, v = float(step[1:]), float(lo)
            while v <= hi:
                values.append(round(v))
                v *= factor
        else:
            values.extend(range(lo, hi + 1, int(step)))
    if not values:
        raise InvalidInputError(f"{arg(flag.replace('-', '_'))} {quoted(text)} selects nothing", field=flag.replace("-", "_"))
    return sorted(dict.fromkeys(values))
