"""`rooflm validate --write-table FILE`: its refusals. The measured run that writes a table, and `validate --table`
and `rooflm fit` reading it, are tests/measure/test_cli_measure.py's (one measurement serves both checks)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from rooflm.cli import app

runner = CliRunner()


@pytest.mark.parametrize(("args", "message"), [
    (["--write-table", "t.txt"], "name it .csv"),
    (["--table", "x.csv", "--write-table", "t.csv"], "drop --table"),
])
def test_write_table_refusals(args: list[str], message: str) -> None:
    """Refused at once, before anything is measured (no PyTorch needed to say so)."""
    result = runner.invoke(app, ["validate", *args])
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output
