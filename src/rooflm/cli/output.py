"""What every `rooflm` command prints through: the consoles, one-line errors, tables at their natural width, JSON.

Every command module imports from here and cli/main.py registers them all; a command module imports no other, but
for the flags `plot pareto` shares with `plan` (cli/plot.py reads cli/plan.py's TTFT and TPOT targets).
"""

from __future__ import annotations

import inspect
import io
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import wraps
from typing import Annotated, Any, TypeVar
from weakref import WeakKeyDictionary

import typer
from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from rooflm.cli.options import flag
from rooflm.errors import RooflmError
from rooflm.kinds import Progress as ProgressCallback

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


# The tables whose columns may be left out on a narrow terminal, least needed first (see `droppable`).
_DROP_ORDER: WeakKeyDictionary[Table, tuple[str, ...]] = WeakKeyDictionary()


def droppable(table: Table, *headers: str) -> Table:
    """Mark ``headers`` as the columns ``show`` may leave out, in that order, when the table is wider than the
    terminal; the caption then names them and says that --wide shows all."""
    _DROP_ORDER[table] = headers
    return table


_WIDE: ContextVar[bool] = ContextVar("wide", default=False)
Wide = Annotated[bool, typer.Option("--wide", help="Every column of every table, at its natural width (a narrow "
                                                   "terminal otherwise leaves the least needed out).")]


def with_wide(fn: F) -> F:
    """Add --wide to a command that prints tables: ``show`` then prints every column."""
    signature = inspect.signature(fn, eval_str=True)
    wide = inspect.Parameter("wide", inspect.Parameter.KEYWORD_ONLY, annotation=Wide, default=False)

    @wraps(fn)
    def command(*args: Any, wide: bool = False, **kwargs: Any) -> Any:
        token = _WIDE.set(wide)
        try:
            return fn(*args, **kwargs)
        finally:
            _WIDE.reset(token)

    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
              else p for p in signature.parameters.values()]
    command.__signature__ = signature.replace(parameters=[*params, wide])  # type: ignore[attr-defined]
    return command  # type: ignore[return-value]


def target_width(wide: bool = False) -> int | None:
    """The width a table is fitted to: the terminal's, or `COLUMNS` when piped (a script or a test sets it);
    None for the table's natural width (--wide, or a pipe with no `COLUMNS`: a file has no width to respect)."""
    if wide:
        return None
    if out.is_terminal:
        return out.width
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else None


def show(renderable: RenderableType, *, wide: bool = False) -> None:
    """Print tables on stdout at the terminal's width (or `COLUMNS`), their headers whole: a table wider than that
    leaves out its least needed columns (`droppable`) and says so in its caption. ``wide`` (--wide), or piped
    with no `COLUMNS`: every column at the natural width, as a file has no width to respect."""
    width = target_width(wide or _WIDE.get())
    if width is not None:
        for table in _tables(renderable):
            _whole_headers(table)
            _fit(table, width)
        if out.is_terminal:
            out.print(renderable)
            return
    # A console of its own: print(width=) cannot exceed the console's width. Prose and panels wrap within it.
    natural = max(out.width if out.is_terminal else 80, _table_width(renderable))
    Console(file=out.file, width=width or natural, markup=False, emoji=False).print(renderable)


def _tables(renderable: RenderableType) -> Iterator[Table]:
    if isinstance(renderable, Table):
        yield renderable
    elif isinstance(renderable, Group):
        for r in renderable.renderables:
            yield from _tables(r)


def _whole_headers(table: Table) -> None:
    """No header cut to "TT…": a column is never narrower than its header, a number than itself, nor words than
    their longest word (they wrap between words instead of losing letters)."""
    for column in table.columns:
        cells = [str(c) for c in column.cells]
        pieces = cells if column.justify == "right" else [w for c in cells for w in c.split()]
        column.min_width = max([cell_len(str(column.header)), *(cell_len(w) for w in pieces)])


def _fit(table: Table, width: int) -> None:
    """Leave out the table's droppable columns, least needed first, until it fits ``width``; name them below it."""
    hidden = []
    for header in _DROP_ORDER.get(table, ()):
        if not _squeezed(table, width):
            break
        index = next((i for i, c in enumerate(table.columns) if str(c.header) == header), None)
        if index is not None:
            del table.columns[index]
            hidden.append(header)
    if hidden:
        note = f"not shown at {width} columns: {', '.join(hidden)} (--wide shows every column)"
        table.caption = f"{table.caption}\n{note}" if table.caption else note
        table.caption_justify = "left"


def _squeezed(table: Table, width: int) -> bool:
    """Whether the table, drawn ``width`` wide, runs past it or cuts a word short ("…" that the table's own cells do
    not hold). Drawn, not measured: rich's measure allows widths its layout then does not reach."""
    def draw(w: int) -> list[str]:
        console = Console(file=io.StringIO(), width=w, markup=False, emoji=False, color_system=None)
        with console.capture() as capture:
            console.print(table, crop=False)
        return capture.get().splitlines()

    lines = draw(width)
    return (max((cell_len(line) for line in lines), default=0) > width
            or sum(line.count("…") for line in lines) > sum(line.count("…") for line in draw(100_000)))


def _table_width(renderable: RenderableType) -> int:
    """The widest table's natural width (0 if none)."""
    if isinstance(renderable, Table):
        return Measurement.get(out, out.options.update_width(100_000), renderable).maximum
    if isinstance(renderable, Group):
        return max((_table_width(r) for r in renderable.renderables), default=0)
    return 0


def print_json(doc: object) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, allow_nan=False) + "\n")


@contextmanager
def progress_bar(what: str, *, quiet: bool = False) -> Iterator[ProgressCallback | None]:
    """A progress bar on stderr for a long run, handed to the API as its ``progress`` callback; None (no bar) when
    stderr is not a terminal (piped, redirected, a test) or ``quiet`` (a --json run: one document, nothing else).
    The bar goes away when the run ends, so that the table printed next stands alone."""
    if quiet or not err.is_terminal:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    # stdout is left alone: rich would otherwise route a command's own output (CSV rows) through the bar's console.
    with Progress(*columns, console=err, transient=True, redirect_stdout=False, redirect_stderr=False) as bar:
        task = bar.add_task(what, total=None)

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield report
