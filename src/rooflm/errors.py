"""Typed errors for user mistakes. The CLI prints their message on one line and exits 2.

A message names the inputs it is about as the API's keywords (``seed must be …``), each marked with :func:`arg`, so
that every surface spells them its own way: ``str(error)`` the Python keyword, the CLI its flag (``--seed``), the
web its body field (:meth:`RooflmError.spelled`). :func:`named` marks an input named as a noun rather than a
flag: the CLI writes it without dashes (``prompt-len must be a positive integer``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

# Control characters around a keyword: repr(), and so quoted(), escapes them in whatever the user sent, so the
# marks never come from user text. \x1d opens a flag, \x1c a noun.
_ARG = re.compile("([\x1c\x1d])([A-Za-z0-9_]+)\x1e")


def arg(name: str) -> str:
    """The API keyword ``name`` inside an error message, for each surface to spell (``--kv-dtype`` on the CLI)."""
    return f"\x1d{name}\x1e"


def named(name: str) -> str:
    """The API keyword ``name`` as the subject of a message, spelled as :func:`arg` is less leading dashes."""
    return f"\x1c{name}\x1e"


def spell(message: str, spelling: Callable[[str], str]) -> str:
    """``message`` with every keyword marked by :func:`arg` or :func:`named` spelled by ``spelling`` (keyword →
    text)."""
    return _ARG.sub(lambda m: spelling(m.group(2)).lstrip("-") if m.group(1) == "\x1c" else spelling(m.group(2)),
                    message)


class RooflmError(Exception):
    """Base of every error caused by what the user asked for (not by a bug). ``field`` names the input
    it is about, as the API's keyword ("batch", "kv_dtype", "seed"), when one is to blame."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    @property
    def marked(self) -> str:
        """The message with its keywords still marked: for a message that quotes this one (it keeps them)."""
        return str(self.args[0]) if self.args else ""

    def spelled(self, spelling: Callable[[str], str]) -> str:
        """The message with each keyword it names spelled by ``spelling``: the CLI's flag, the web's field."""
        return spell(self.marked, spelling)

    def __str__(self) -> str:  # the Python API's spelling: the keyword itself
        return self.spelled(str)


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
        super().__init__(self.message, _NAME_FIELDS.get(what))  # str(): RooflmError's, where KeyError's would quote


class UnsupportedModelError(RooflmError, ValueError):
    """A config.json whose architecture rooflm cannot model yet."""


class DoesNotFitError(RooflmError, ValueError):
    """The workload needs more memory than the device has."""
