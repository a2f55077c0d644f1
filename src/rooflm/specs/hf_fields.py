"""Typed, bounded access to a config.json's keys: every value a reader takes is checked (an integer that is an
integer, a finite number in range, a list of the right kind), and a bad one is a one-line error naming the key."""

from __future__ import annotations

import builtins
import math
import reprlib
from typing import Any

from rooflm.errors import InvalidInputError

# Bounds on what a config.json may ask for: ten times today's largest models or more, yet finite, so that a
# typo or a fuzzed value cannot make rooflm build per-layer structures for 1e12 layers or overflow a float.
MAX_LAYERS = 10_000
MAX_WIDTH = 1_000_000  # hidden and intermediate widths, heads, head dims, experts, LoRA ranks
MAX_VOCAB = 10_000_000
MAX_POSITIONS = 1 << 30  # context lengths and sliding windows (about 1.07e9 tokens)
_LIMITS = {"num_hidden_layers": MAX_LAYERS, "first_k_dense_replace": MAX_LAYERS, "moe_layer_freq": MAX_LAYERS,
           "decoder_sparse_step": MAX_LAYERS, "sliding_window_pattern": MAX_LAYERS, "max_window_layers": MAX_LAYERS,
           "mlp_only_layers": MAX_LAYERS, "vocab_size": MAX_VOCAB, "max_position_embeddings": MAX_POSITIONS,
           "original_max_position_embeddings": MAX_POSITIONS, "sliding_window": MAX_POSITIONS}

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 2, 4, 4, 40, 40


def show_value(value: object) -> str:
    """A short, one-line quote of a config value, whatever its size or depth."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    try:
        return _REPR.repr(value)
    except (RecursionError, ValueError):  # deep nesting; an int too long to print (Python's 4,300-digit limit)
        return f"a {type(value).__name__}"


def integral(value: object) -> int | None:
    """``value`` as an int if it is a whole number (``4096`` or ``4096.0``, never ``true`` or ``"4096"``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


class Config:
    """A parsed config.json with typed accessors whose errors name the key and the file. A key set to null
    reads as absent (transformers then uses its default too)."""

    def __init__(self, raw: dict[str, Any], where: str) -> None:
        self.raw, self.where = raw, where

    def fail(self, key: str, what: str, value: object) -> InvalidInputError:
        return InvalidInputError(f"{self.where}: {key!r} must be {what}, got {show_value(value)}", field="model")

    def in_range(self, key: str, value: object, low: int, high: int) -> int:
        """``value`` as a whole number in [low, high]; the message names ``key``."""
        number = integral(value)
        if number is None or number < low:
            raise self.fail(key, "a positive integer" if low == 1 else f"an integer of at least {low}", value)
        if number > high:
            raise InvalidInputError(f"{self.where}: {key!r} is {show_value(number)}; rooflm models at most {high:,}",
                                    field="model")
        return number

    def int(self, key: str, default: int | None = None, *, low: int = 1) -> int:
        value = self.raw.get(key)
        if value is None:
            value = default
        if value is None:
            raise InvalidInputError(f"{self.where} has no {key!r}; is it a decoder-only model's config.json?",
                                    field="model")
        return self.in_range(key, value, low, _LIMITS.get(key, MAX_WIDTH))

    def opt_int(self, key: str, *, low: builtins.int = 1) -> builtins.int | None:
        return self.int(key, low=low) if self.raw.get(key) is not None else None

    def number(self, key: str, default: float, *, low: float, high: float) -> float:
        """A finite number in [low, high]."""
        value = self.raw.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"a number from {low:g} to {high:g}", value)
        try:
            number = float(value)
        except OverflowError:  # an int beyond float range
            number = math.inf
        if not low <= number <= high:  # NaN fails every comparison
            raise self.fail(key, f"a number from {low:g} to {high:g}", value)
        return number

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.raw.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(key, "true or false", value)
        return value

    def text(self, key: str) -> str | None:
        value = self.raw.get(key)
        if value is not None and not isinstance(value, str):
            raise self.fail(key, "a string", value)
        return value

    def int_list(self, key: str) -> list[builtins.int]:
        """A list of non-negative integers (layer indices); absent is empty."""
        value = self.raw.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(key, "a list of layer indices", value)
        return [self.in_range(key, v, 0, _LIMITS.get(key, MAX_WIDTH)) for v in value]

    def section(self, key: str) -> dict[str, Any] | None:
        """A nested object (rope_scaling, text_config), or None when absent."""
        value = self.raw.get(key)
        if value is not None and not isinstance(value, dict):
            raise self.fail(key, "a JSON object", value)
        return value
