"""The shared deployment flags reach the API the same way from every command."""

import json

import pytest
from typer.testing import CliRunner

from rooflm.analyses.axes import parse_int_list
from rooflm.cli import app

runner = CliRunner()


def test_int_lists_ranges_and_geometric_steps() -> None:
    assert parse_int_list("8,1,2,2", "batch") == [1, 2, 8]
    assert parse_int_list("1:5", "batch") == [1, 2, 3, 4, 5]
    assert parse_int_list("1:64:x4", "batch") == [1, 4, 16, 64]
    assert parse_int_list("2:9:3", "batch") == [2, 5, 8]


def test_kernel_overhead_flag_reaches_the_api_in_seconds() -> None:
    # One kernel per operator instance (count), 1 ms each, plus the H100 file's 250 us CPU cost of the step.
    doc = json.loads(runner.invoke(app, ["analyze", "--efficiency", "calibrated", "--kernel-overhead", "1e-3",
                                         "--json"]).stdout)
    kernels = sum(o["count"] for o in doc["operators"] if o["kind"] != "host")
    assert doc["totals"]["overhead_time_s"] == pytest.approx(kernels * 1e-3 + 2.5e-4)


def test_quant_takes_its_schemes_as_quant_and_defaults_to_calibrated() -> None:
    doc = json.loads(runner.invoke(app, ["quant", "--quant", "bf16,fp8", "--batch", "1", "--json"]).stdout)
    assert sorted({p["scheme"] for p in doc["points"]}) == ["bf16", "fp8"]
    doc = json.loads(runner.invoke(app, ["quant", "--batch", "1", "--context", "128", "--json"]).stdout)
    assert doc["efficiency"] == "calibrated"


def test_layout_flags_reach_every_analysis_command() -> None:
    for command in (["analyze"], ["sweep", "--batch", "4"], ["critical-batch"], ["explain"]):
        result = runner.invoke(app, [*command, "--tp", "2", "--json"])
        assert result.exit_code == 0, result.output
        assert "tp=2" in result.stdout


def test_enum_like_flags_reach_the_api_in_lower_case(monkeypatch: pytest.MonkeyPatch) -> None:
    """Modes, schemes and dtypes are accepted in any case (hardware names already were) and normalised here, so
    the API is handed the catalog's spelling whatever it accepts itself."""
    import rooflm.cli.main as cli

    seen: dict[str, object] = {}

    def record(model: str, hardware: str, **kwargs: object) -> None:
        seen.update(kwargs)
        raise cli.InvalidInputError("recorded")

    monkeypatch.setattr(cli, "_analyze", record)
    runner.invoke(app, ["analyze", "--efficiency", "CALIBRATED", "--phase", "Prefill", "--quant", "W4A16",
                        "--kv-dtype", "FP8", "--comm-algorithm", "Tree", "--mla-decode", "NAIVE"])
    assert {k: seen[k] for k in ("efficiency", "phase", "quant", "kv_dtype", "comm_algorithm", "mla_decode")} == {
        "efficiency": "calibrated", "phase": "prefill", "quant": "w4a16", "kv_dtype": "fp8",
        "comm_algorithm": "tree", "mla_decode": "naive"}


def test_enum_like_flags_in_upper_case_work_end_to_end() -> None:
    doc = json.loads(runner.invoke(app, ["analyze", "--efficiency", "CALIBRATED", "--quant", "FP8", "--json"]).stdout)
    assert doc["efficiency"] == "calibrated" and doc["quant"] == "fp8"
