"""Write docs/commands/<command>.md, one page per `rooflm` command, from the command's own help.

    python tools/command_docs.py            # rewrite the pages
    python tools/command_docs.py --check    # exit 1, naming the pages, when a page differs from the help

Each page holds the command's summary (its docstring's first paragraph) and its full `--help` as a terminal prints
it at 100 columns without colour. tests/cli/test_command_docs.py runs the check, so a flag added or renamed
without the page rewritten fails the suite.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import typer.main
from typer.testing import CliRunner

from rooflm.cli import app

DOCS = Path(__file__).resolve().parents[1] / "docs" / "commands"
# Commands and their sub-commands, as `rooflm NAME --help` takes them.
COMMANDS = ("analyze", "sweep", "critical-batch", "quant", "explain", "regimes", "serving", "plan", "plot", "serve",
            "measure", "validate", "fit", "models", "hardware")
WIDTH = 100


def help_text(args: list[str]) -> str:
    env = {"COLUMNS": str(WIDTH), "NO_COLOR": "1", "TERM": "dumb", "_TYPER_FORCE_DISABLE_TERMINAL": "1"}
    result = CliRunner().invoke(app, [*args, "--help"], env=env, terminal_width=WIDTH, prog_name="rooflm")
    if result.exit_code != 0:
        raise SystemExit(f"rooflm {' '.join(args)} --help failed: {result.output}")
    return "\n".join(line.rstrip() for line in result.output.strip("\n").splitlines())


def page(name: str) -> str:
    command = typer.main.get_command(app)
    sub = command.commands[name]  # type: ignore[attr-defined]
    summary = (sub.help or "").strip().split("\n\n")[0].replace("\n", " ")
    parts = [f"# rooflm {name}\n", f"{summary}\n" if summary else "", "```text", help_text([name]), "```\n"]
    for child in sorted(getattr(sub, "commands", {}) or {}):
        parts += [f"## rooflm {name} {child}\n", "```text", help_text([name, child]), "```\n"]
    return "\n".join(p for p in parts if p != "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    os.environ.pop("COLUMNS", None)
    DOCS.mkdir(parents=True, exist_ok=True)
    stale = []
    for name in COMMANDS:
        path = DOCS / f"{name}.md"
        text = page(name)
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.write_text(text)
    if stale:
        sys.exit("out of date (run python tools/command_docs.py): " + ", ".join(stale))


if __name__ == "__main__":
    main()
