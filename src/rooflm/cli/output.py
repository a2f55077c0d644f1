"""What every `rooflm` command prints through: the consoles, one-line errors, tables at their natural width, JSON.

Every command module imports from here and cli/main.py registers them all; a command module imports no other, but
for the flags `plot pareto` shares with `plan` (cli/plot.py reads cli/plan.py's TTFT and TPOT targets).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer
from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from rooflm.cli.options import flag
from rooflm.errors import RooflmError

# Names, files and messages come from the user: never read them as rich markup ("[bold]") or emoji codes
# (":100:" in "1:100:x1"). Styled words are built as Text instead.
out = Console(markup=False, emoji=False)
err = Console(stderr=True, markup=False, emoji=False)
F = TypeVar("F", bound=Callable[..., Any])


def print_error(message: str) -> None:
    """`error: message` as one line on stderr (rich would otherwise wrap it at the terminal's width)."""
    err.print(Text.assemble(("error:", "bold red"), " ", " ".join(message.split())), highlight=False, soft_wrap=True)


def user_errors(fn: F) -> F:
    """Turn a user mistake into one line on stderr and exit status 2, never a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RooflmError as exc:
            print_error(exc.spelled(flag))  # the API's keywords as this command's flags
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def show(renderable: RenderableType) -> None:
    """Print a table on stdout. Piped or redirected, at its natural width: rich would squeeze it to 80 columns
    and cut operator names short, and a file has no width to respect."""
    if out.is_terminal:
        out.print(renderable)
        return
    # A console of its own: print(width=) cannot exceed the console's width. Prose and panels wrap within it.
    Console(file=out.file, width=max(out.width, _table_width(renderable)), markup=False, emoji=False).print(renderable)


def _table_width(renderable: RenderableType) -> int:
    """The widest table's natural width (0 if none)."""
    if isinstance(renderable, Table):
        return Measurement.get(out, out.options.update_width(100_000), renderable).maximum
    if isinstance(renderable, Group):
        return max((_table_width(r) for r in renderable.renderables), default=0)
    return 0


def print_json(doc: object) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, allow_nan=False) + "\n")
