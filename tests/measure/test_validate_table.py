"""`rooflm validate --table`: a measurement table (rooflm fit's format) checked against rooflm's predictions.

validate --table and fit predict each row with the same rooflm.fit.solve.Predictor, so validate's catalog errors
must equal fit's catalog error and, with the profile fit wrote, fit's own fit error: two paths, one predictor. That
agreement alone could not catch a wrong predictor, so one row is also checked against rooflm.analyze, called the
way a user would (calibrated mode; then profile=).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rooflm import analyze
from rooflm.cli import app
from rooflm.errors import InvalidInputError
from rooflm.measure.validate import validate_table

EXAMPLE = Path(__file__).parents[2] / "examples" / "measurements.csv"
runner = CliRunner()


def _json(args: list[str]) -> dict:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# Built once per run: conftest.WORKER_UNITS sends this module's tests to one xdist worker.
@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("profile") / "p.toml"
    return path, _json(["fit", str(EXAMPLE), "-o", str(path), "--json"])


def test_catalog_errors_equal_fits_catalog_error(fitted: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # the table path needs no PyTorch
    _, fit_doc = fitted
    doc = _json(["validate", "--table", str(EXAMPLE), "--json"])
    assert doc["profile"] is None and len(doc["points"]) == 28
    assert doc["error"]["median_abs"] == pytest.approx(fit_doc["catalog_error"]["median_abs"], rel=1e-9)
    assert doc["error"]["max_abs"] == pytest.approx(fit_doc["catalog_error"]["max_abs"], rel=1e-9)
    # The first data row (line 26: llama-3.1-8b decode, batch 1, context 1024, tpot_s 0.0078447) is one decode
    # step, which analyze reports as totals.time_s; error = predicted / measured − 1.
    first = doc["points"][0]
    assert (first["line"], first["quantity"], first["measured_s"]) == (26, "tpot_s", 0.0078447)
    step = analyze("llama-3.1-8b", "h100-sxm", phase="decode", batch=1, context=1024, efficiency="calibrated")
    assert first["predicted_s"] == pytest.approx(step.totals.time_s, rel=1e-9)
    assert first["error"] == pytest.approx(step.totals.time_s / 0.0078447 - 1, rel=1e-9)


def test_tokens_per_s_row_is_turned_into_step_seconds() -> None:
    # Line 33: llama-3.1-8b decode at batch 64 measured 5275.9 output tokens/s: one step is 64 / 5275.9 s.
    row = next(p for p in validate_table(EXAMPLE).points if p.line == 33)
    assert row.quantity == "tokens_per_s" and row.measured_s == pytest.approx(64 / 5275.9)


def test_the_fitted_profile_errs_less_than_the_catalog(fitted: tuple[Path, dict]) -> None:
    path, fit_doc = fitted
    catalog = validate_table(EXAMPLE)
    doc = _json(["validate", "--table", str(EXAMPLE), "--profile", str(path), "--json"])
    assert doc["profile"]["name"] == "p.toml" and len(doc["profile"]["data_sha256"]) == 64
    assert doc["error"]["median_abs"] < catalog.median_abs and doc["error"]["max_abs"] < catalog.max_abs
    # On the points it was fitted on, the profile's error is fit's fit error (the profile keeps full precision).
    assert doc["error"]["median_abs"] == pytest.approx(fit_doc["fit_error"]["median_abs"], rel=1e-6)
    step = analyze("llama-3.1-8b", "h100-sxm", phase="decode", batch=1, context=1024, profile=path)
    assert doc["points"][0]["predicted_s"] == pytest.approx(step.totals.time_s, rel=1e-9)


def test_table_output_shows_rows_and_summary(fitted: tuple[Path, dict]) -> None:
    result = runner.invoke(app, ["validate", "--table", str(EXAMPLE), "--profile", str(fitted[0])],
                           terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "profile p.toml" in result.stdout and "qwen3-32b" in result.stdout and "median" in result.stdout


def test_malformed_table_refused_naming_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("# comment\nmodel,batch,tpot_s\nllama-3.1-8b,1,0.007\nllama-3.1-8b,two,0.008\n")
    with pytest.raises(InvalidInputError, match="line 4, column batch"):
        validate_table(bad)
    result = runner.invoke(app, ["validate", "--table", str(bad)])
    assert result.exit_code == 2 and "line 4, column batch" in result.stderr and "Traceback" not in result.output


def test_device_the_profile_does_not_cover_refused(fitted: tuple[Path, dict], tmp_path: Path) -> None:
    other = tmp_path / "a100.csv"
    other.write_text("model,hardware,batch,tpot_s\nllama-3.1-8b,a100-sxm-80gb,1,0.01\n")
    with pytest.raises(InvalidInputError, match="no parameters for a100") as exc:
        validate_table(other, fitted[0])
    assert exc.value.field == "profile"


@pytest.mark.parametrize(("args", "message"), [
    (["--profile", "p.toml"], "--table only"),
    (["--table", str(EXAMPLE), "--hardware", "xeon-8480"], "drop --hardware"),
])
def test_flags_that_do_not_go_together_refused(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["validate", *args])
    assert result.exit_code == 2 and message in result.stderr
