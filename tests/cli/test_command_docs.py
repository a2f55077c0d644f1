"""The docs site's page per command (docs/commands/<name>.md) holds the command's current --help: a flag added,
renamed or re-documented without `python tools/command_docs.py` fails here."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import typer.main

from rooflm.cli import app

TOOL = Path(__file__).resolve().parents[2] / "tools" / "command_docs.py"


def _tool() -> Any:
    spec = importlib.util.spec_from_file_location("command_docs", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_command_has_its_page_with_its_current_help() -> None:
    tool = _tool()
    registered = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    assert registered == set(tool.COMMANDS)  # a new command gets a page
    stale = [name for name in tool.COMMANDS
             if not (tool.DOCS / f"{name}.md").is_file() or (tool.DOCS / f"{name}.md").read_text() != tool.page(name)]
    assert stale == [], "run: python tools/command_docs.py"


def test_a_page_holds_the_summary_and_every_flag() -> None:
    tool = _tool()
    text = tool.page("serving")
    assert text.startswith("# rooflm serving\n")
    for flag in ("--concurrency", "--request-rate", "--view", "--json"):
        assert flag in text, flag
