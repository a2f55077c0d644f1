"""Typed errors for user mistakes. The CLI prints their message on one line and exits 2."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class RooflmError(Exception):
    """Base of every error caused by what the user asked for (not by a bug). ``field`` names the input
    it is about, as the CLI flag's snake_case name ("batch", "kv_dtype"), when one is to blame."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def blames(field: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Errors raised inside the decorated loader that name no field are about ``field`` (a model file's
    missing key is the model's fault, a hardware file's the hardware's)."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @wraps(fn)
        def loader(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except RooflmError as exc:
                exc.field = exc.field or field
                raise

        return loader

    return decorate


def quoted(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: messages quote what the user sent, never megabytes of it
    (a 400-digit integer is named by its length)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**15:
        return f"a {len(str(abs(value)))}-digit integer"
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}…{text[-4:]}"


class InvalidInputError(RooflmError, ValueError):
    """A size, option or file the user gave makes no sense."""


# Which input an unknown name was given for.
_NAME_FIELDS = {"model": "model", "hardware": "hardware", "quantization scheme": "quant", "dtype": "kv_dtype"}


class UnknownNameError(RooflmError, KeyError):
    """A model, hardware or scheme name that is not in the catalog."""

    def __init__(self, what: str, name: str, suggestions: list[str], list_command: str, advice: str = "") -> None:
        hint = f"; did you mean {', '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        advice = f"; {advice}" if advice else ""
        self.message = f"unknown {what} {quoted(name)}{hint}{advice} (see `{list_command}`)"
        super().__init__(self.message, _NAME_FIELDS.get(what))

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.message


class UnsupportedModelError(RooflmError, ValueError):
    """A config.json whose architecture rooflm cannot model yet."""


class DoesNotFitError(RooflmError, ValueError):
    """The workload needs more memory than the device has."""
