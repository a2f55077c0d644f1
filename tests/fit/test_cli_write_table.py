"""`rooflm validate --write-table FILE`: what validate measured, as a table `rooflm fit` and `validate --table` read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rooflm.cli import app

runner = CliRunner()


def test_write_table_end_to_end(tmp_path: Path) -> None:
    """The tiny model at quick sizes on a catalog CPU: one row per measured case (its median), and `validate --table`
    on that table predicts each row exactly as the run did (same config, same hardware, calibrated mode)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    table = tmp_path / "steps.csv"
    run = runner.invoke(app, ["validate", "--quick", "--json", "--models", "dense-tiny", "--no-gemms",
                              "--hardware", "xeon-8480", "--write-table", str(table)])
    assert run.exit_code == 0, run.output
    cases = json.loads(run.stdout)["cases"]
    assert (tmp_path / "steps.models" / "dense-tiny" / "config.json").is_file()
    checked = runner.invoke(app, ["validate", "--table", str(table), "--json"])
    assert checked.exit_code == 0, checked.output
    rows = json.loads(checked.stdout)["points"]
    assert len(rows) == len(cases)
    for case, row in zip(cases, rows, strict=True):
        assert (row["phase"], row["batch"]) == (case["phase"], case["batch"])
        assert row["measured_s"] == pytest.approx(case["measured_s"], rel=1e-5)  # written with 6 digits
        assert row["predicted_s"] == pytest.approx(case["predicted_s"], rel=1e-9)
    fitted = runner.invoke(app, ["fit", str(table), "--params", "kernel_overhead", "--json"])
    assert fitted.exit_code == 0, fitted.output


@pytest.mark.parametrize(("args", "message"), [
    (["--write-table", "t.txt"], "name it .csv"),
    (["--table", "x.csv", "--write-table", "t.csv"], "drop --table"),
])
def test_write_table_refusals(args: list[str], message: str) -> None:
    """Refused at once, before anything is measured (no PyTorch needed to say so)."""
    result = runner.invoke(app, ["validate", *args])
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output
