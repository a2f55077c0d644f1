"""The shared deployment flags reach the API the same way from every command."""

import json

import pytest
from typer.testing import CliRunner

from rooflm.axes import parse_int_list
from rooflm.cli import app

runner = CliRunner()


def test_int_lists_ranges_and_geometric_steps() -> None:
    assert parse_int_list("8,1,2,2", "batch") == [1, 2, 8]
    assert parse_int_list("1:5", "batch") == [1, 2, 3, 4, 5]
    assert parse_int_list("1:64:x4", "batch") == [1, 4, 16, 64]
    assert parse_int_list("2:9:3", "batch") == [2, 5, 8]


def test_kernel_overhead_flag_reaches_the_api_in_seconds() -> None:
    # One kernel per operator instance (count), 1 ms each.
    doc = json.loads(runner.invoke(app, ["analyze", "--efficiency", "calibrated", "--kernel-overhead", "1e-3",
                                         "--json"]).stdout)
    kernels = sum(o["count"] for o in doc["operators"])
    assert doc["totals"]["overhead_time_s"] == pytest.approx(kernels * 1e-3)


def test_quant_has_no_quant_flag_and_defaults_to_calibrated() -> None:
    assert runner.invoke(app, ["quant", "--quant", "fp8"]).exit_code == 2
    doc = json.loads(runner.invoke(app, ["quant", "--batch", "1", "--context", "128", "--json"]).stdout)
    assert doc["efficiency"] == "calibrated"


def test_layout_flags_reach_every_analysis_command() -> None:
    for command in (["analyze"], ["sweep", "--batch", "4"], ["critical-batch"], ["explain"]):
        result = runner.invoke(app, [*command, "--tp", "2", "--json"])
        assert result.exit_code == 0, result.output
        assert "tp=2" in result.stdout
