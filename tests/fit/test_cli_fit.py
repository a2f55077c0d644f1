"""`rooflm fit` on the command line: it writes a profile only when the fit beats the catalog on held-out
configurations, unless forced."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from rooflm.cli import app

runner = CliRunner()


def _one_configuration(folder: Path) -> Path:
    """Three decode steps of one configuration (llama-3.1-8b on h100-sxm, bf16, tp 1): nothing to hold out."""
    path = folder / "t.csv"
    path.write_text("model,hardware,phase,batch,context,measured_s\n"
                    "llama-3.1-8b,h100-sxm,decode,1,1024,0.009\nllama-3.1-8b,h100-sxm,decode,8,1024,0.0095\n"
                    "llama-3.1-8b,h100-sxm,decode,64,1024,0.013\n")
    return path


def test_unvalidated_fit_is_not_written_unless_forced(tmp_path: Path) -> None:
    table, out = _one_configuration(tmp_path), tmp_path / "p.toml"
    result = runner.invoke(app, ["fit", str(table), "--params", "bandwidth", "-o", str(out), "--json"])
    assert result.exit_code == 2 and not out.exists()
    line = result.stderr.strip().splitlines()[-1]
    assert "not written" in line and "one configuration only" in line and "--force" in line
    assert json.loads(result.stdout)["cv_error"] is None  # the fit is still reported
    forced = runner.invoke(app, ["fit", str(table), "--params", "bandwidth", "-o", str(out), "--force", "--json"])
    assert forced.exit_code == 0 and "format = 2" in out.read_text()


def test_unknown_factor_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["fit", str(_one_configuration(tmp_path)), "--params", "warp"])
    assert result.exit_code == 2 and "--params: unknown factor warp" in result.stderr
