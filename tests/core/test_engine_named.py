"""With an engine set, every output names it beside its mode: analyze, sweep, quant, serving, plan, regimes and
explain (JSON and table titles)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from rooflm.cli.main import app

RUN = CliRunner()


def _out(*args: str) -> str:
    result = RUN.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_every_command_names_the_engine_with_its_mode() -> None:
    common = ("--efficiency", "calibrated", "--engine", "vllm")
    for args in (("analyze", "--hardware", "h200"), ("sweep", "--hardware", "h200"), ("quant", "--hardware", "h200"),
                 ("serving", "--hardware", "h200", "--concurrency", "4"),
                 ("plan", "--hardware", "h200", "--gpus", "1"), ("regimes", "--hardware", "h200"),
                 ("explain", "--hardware", "h200")):
        text = " ".join(_out(*args, *common).split())  # table titles wrap
        assert "calibrated mode (vllm 0.24.0 kernels)" in text, args
        doc = json.loads(_out(*args, *common, "--json")) if args[0] != "explain" else None
        if doc is not None:
            assert doc["engine_kernels"] == "vllm 0.24.0 kernels", args
            assert doc["efficiency"] == "calibrated", args


def test_a_device_without_tables_and_ideal_mode_say_what_stands_in() -> None:
    doc = json.loads(_out("analyze", "--hardware", "a100-sxm", "--efficiency", "calibrated", "--engine", "sglang",
                          "--json"))
    assert doc["engine_kernels"] == "sglang: generic kernels, no tables for a100-sxm"
    doc = json.loads(_out("analyze", "--hardware", "h200", "--engine", "sglang", "--json"))
    assert doc["engine_kernels"] == "sglang kernels unused in ideal mode"
    doc = json.loads(_out("analyze", "--hardware", "h200", "--json"))
    assert doc["engine_kernels"] is None and doc["efficiency"] == "ideal"
