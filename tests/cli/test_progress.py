"""A long run shows a progress bar on stderr when stderr is a terminal, never when piped and never with --json; the
bar never touches stdout (a CSV or a table printed while it runs stays whole)."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console
from typer.testing import CliRunner

from rooflm.cli import app, output

SERVING = ["serving", "--concurrency", "1,2", "--requests", "20", "--prompt-len", "64", "--gen-len", "8"]
PLAN = ["plan", "--gpus", "1", "--quant", "bf16", "--kv-dtype", "bf16", "--max-running", "16",
        "--max-num-batched-tokens", "2048", "--concurrency", "1,4", "--workers", "1"]


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """stderr as a terminal: what the bar draws lands here."""
    screen = io.StringIO()
    monkeypatch.setattr(output, "err", Console(file=screen, force_terminal=True, width=100, markup=False,
                                               emoji=False))
    return screen


@pytest.mark.parametrize(("argv", "label", "total"), [(SERVING, "serving: simulating loads", "2/2"),
                                                      (PLAN, "plan: pricing step tables", None)])
def test_a_terminal_shows_the_bar(terminal: io.StringIO, argv: list[str], label: str, total: str | None) -> None:
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    drawn = terminal.getvalue()
    assert label in drawn
    if total is not None:  # two loads simulated: the bar counts them
        assert total in drawn
    assert label not in result.stdout  # stdout carries the table only


def test_json_shows_no_bar_even_on_a_terminal(terminal: io.StringIO) -> None:
    result = CliRunner().invoke(app, [*SERVING, "--json"])
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)
    assert terminal.getvalue() == ""


@pytest.mark.parametrize("argv", [SERVING, PLAN])
def test_piped_shows_no_bar(argv: list[str]) -> None:
    """CliRunner's stderr is not a terminal, as a pipe's is not."""
    assert not output.err.is_terminal or pytest.skip("stderr is a terminal here")
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert "simulating loads" not in result.output and "pricing step tables" not in result.output
    assert "━" not in result.stderr and "0:00:" not in result.stderr  # no bar, no elapsed time


def test_the_bar_leaves_a_streamed_csv_whole(terminal: io.StringIO) -> None:
    result = CliRunner().invoke(app, ["sweep", "--batch", "1:64", "--context", "128,1024", "--csv"])
    assert result.exit_code == 0, result.output
    rows = result.stdout.strip().split("\n")
    assert len(rows) == 1 + 64 * 2  # header + batch 1 … 64 × two contexts
    assert "sweep: pricing points" in terminal.getvalue() and "128/128" in terminal.getvalue()
