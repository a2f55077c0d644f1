"""What the deployment is asked to do in one step or one request, and the checks every entry point shares
on the sizes, numbers and named choices a user gives."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from numbers import Integral, Real
from typing import Literal, TypeVar, cast, get_args

from rooflm.errors import InvalidInputError, named, quoted

# prefill: B prompts of L tokens. decode: one step of B sequences whose caches hold C tokens (the new
# one included). e2e: prefill, then gen_len − 1 decode steps at contexts L+1 … L+N−1.
Phase = Literal["prefill", "decode", "e2e"]
PHASES: tuple[str, ...] = get_args(Phase)

_Choice = TypeVar("_Choice", bound=str)  # check_choice keeps a Literal choice's type

# Generous upper bounds on the sizes. They are far beyond any real deployment, and keep every size exactly
# representable as a float64 (< 2^53) so the vectorised arithmetic never overflows (a 400-digit batch raised
# OverflowError in np.float64(batch)).
# - batch: a global batch of 10^7 concurrent sequences is ~100× what the largest serving fleets run at once.
# - lengths (and the tokens of one engine step): 10^8 tokens is 10× the longest context window any released model
#   supports (10M, Llama 4 Scout);
#   the model's own max_position_embeddings is checked later, once the model is loaded.
# - parallel degrees: 10^6 devices per dimension is more accelerators than any cluster has.
MAX_BATCH = 10**7
MAX_TOKENS = 10**8
MAX_DEVICES = 10**6
SIZE_LIMITS: dict[str, int] = {"batch": MAX_BATCH, "prompt_len": MAX_TOKENS, "context": MAX_TOKENS,
                               "gen_len": MAX_TOKENS, "tp": MAX_DEVICES, "ep": MAX_DEVICES, "pp": MAX_DEVICES,
                               "dp": MAX_DEVICES, "max_num_batched_tokens": MAX_TOKENS}


def check_positive(**sizes: object) -> None:
    """Every size a positive integer (or a list of them) within its bound; the message names the flag."""
    for name, value in sizes.items():
        # A list, tuple, range or one-dimensional array (np.arange) of sizes, or one size.
        values = value if isinstance(value, (list, tuple, range)) or getattr(value, "ndim", 0) == 1 else [value]
        flag = named(name)
        limit = SIZE_LIMITS.get(name)
        for v in cast("Iterable[object]", values):  # a one-dimensional array iterates like a list
            # Integral: Python's int and numpy's integers (an API caller's np.arange), not bool.
            if isinstance(v, bool) or not isinstance(v, Integral) or v <= 0:
                raise InvalidInputError(f"{flag} must be a positive integer, got {quoted(v)}", name)
            if limit is not None and int(v) > limit:
                raise InvalidInputError(f"{flag} must be at most {limit:,}, got {quoted(v)}", name)


def check_context(context: int, max_position: int, what: str = "context") -> None:
    if context > max_position:
        raise InvalidInputError(
            f"{what} {context} exceeds the model's maximum of {max_position} positions "
            "(its config.json's max_position_embeddings, or that times a YaRN/dynamic rope_scaling factor); "
            "use a shorter one",
            {"context": "context", "prompt length": "prompt_len"}.get(what, "gen_len"),
        )


def check_number(value: object, name: str, low: float, high: float, *, low_open: bool = False,
                 high_open: bool = False, unit: str = "", label: str | None = None) -> float:
    """A finite real number in [low, high] (an end excluded when ``*_open``), as a float. NaN, ±inf, 1e308,
    strings and booleans are refused with a message that starts with ``label`` (default: the flag of ``name``)
    and is blamed on ``name`` (the CLI flag's snake_case name)."""
    flag = label or named(name)
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InvalidInputError(f"{flag} must be a number, got {quoted(value)}", name)
    try:
        x = float(value)
    except OverflowError:  # an int too large for a float
        x = math.inf
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}{' ' + unit if unit else ''}"
    inside = (low < x if low_open else low <= x) and (x < high if high_open else x <= high)
    if not inside:  # also every NaN, which compares false
        raise InvalidInputError(f"{flag} must be in {interval}, got {quoted(value)}", name)
    return x


def check_choice(value: object, name: str, choices: Sequence[_Choice]) -> _Choice:
    """One of ``choices``, in any case and with surrounding spaces ignored ('CALIBRATED', ' Ring')."""
    picked = value.strip().lower() if isinstance(value, str) else None
    if picked is None or picked not in choices:
        options = " or ".join(choices) if len(choices) == 2 else ", ".join(choices)
        raise InvalidInputError(f"{name} {quoted(value)}: use {options}", name)
    return cast(_Choice, picked)  # equal to one of the choices: of their type
