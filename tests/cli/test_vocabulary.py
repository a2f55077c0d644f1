"""One name per setting in every command: the step's token budget is vLLM's --max-num-batched-tokens and the
schemes are --quant everywhere; the former spellings are still read but no --help shows them."""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from rooflm.cli import app

runner = CliRunner()


def _visible_flags() -> dict[str, set[str]]:
    """Every command's options as --help lists them (hidden ones left out)."""
    group = typer.main.get_command(app)
    flags: dict[str, set[str]] = {}
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        subs = {f"{name} {sub}": cmd for sub, cmd in (getattr(command, "commands", None) or {}).items()}
        for key, cmd in (subs or {name: command}).items():
            flags[key] = {o for p in cmd.params if not getattr(p, "hidden", False)
                                              for o in p.opts}
    return flags


def test_no_command_shows_a_former_spelling() -> None:
    flags = _visible_flags()
    assert {"serving", "plan", "quant", "analyze"} <= set(flags)
    for command, opts in flags.items():
        assert "--max-tokens-per-step" not in opts, command
        assert "--schemes" not in opts, command
    for command in ("serving", "plan", "analyze", "sweep", "quant", "explain", "regimes", "plot"):
        assert "--max-num-batched-tokens" in flags[command], command
    for command in ("serving", "plan", "analyze", "quant", "plot"):
        assert "--quant" in flags[command], command


def test_the_former_spellings_still_work() -> None:
    new = runner.invoke(app, ["serving", "--concurrency", "8", "--method", "steady", "--max-num-batched-tokens",
                              "4096", "--json"])
    old = runner.invoke(app, ["serving", "--concurrency", "8", "--method", "steady", "--max-tokens-per-step",
                              "4096", "--json"])
    assert new.exit_code == old.exit_code == 0, new.output + old.output
    assert json.loads(new.stdout)["max_num_batched_tokens"] == 4096
    assert json.loads(new.stdout) == json.loads(old.stdout)
    by_quant = runner.invoke(app, ["quant", "--quant", "bf16,w4a16", "--batch", "8", "--json"])
    by_schemes = runner.invoke(app, ["quant", "--schemes", "bf16,w4a16", "--batch", "8", "--json"])
    assert by_quant.exit_code == by_schemes.exit_code == 0, by_quant.output + by_schemes.output
    assert json.loads(by_quant.stdout) == json.loads(by_schemes.stdout)
    assert {p["scheme"] for p in json.loads(by_quant.stdout)["points"]} == {"bf16", "w4a16"}
