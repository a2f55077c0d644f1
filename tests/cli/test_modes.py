"""Which mode each view predicts in when none is asked, and that every output names it: serving, plan, quant and
explain are calibrated (what an engine reaches); analyze, sweep, critical-batch and regimes keep the roofline."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import rooflm
from rooflm.cli import app

runner = CliRunner()
SERVING = ["--concurrency", "1", "--method", "steady", "--prompt-len", "256", "--gen-len", "16"]
PLAN = ["--gpus", "1", "--prompt-len", "256", "--gen-len", "16", "--quant", "fp8", "--kv-dtype", "fp8",
        "--max-running", "16", "--max-tokens-per-step", "2048", "--concurrency", "1", "--workers", "1"]
# command, its flags, the mode it defaults to, and the words its table (or Markdown) names the mode in
COMMANDS = [
    ("serving", SERVING, "calibrated"),
    ("plan", PLAN, "calibrated"),
    ("quant", ["--batch", "1"], "calibrated"),
    ("explain", [], "calibrated"),
    ("analyze", [], "ideal"),
    ("sweep", ["--batch", "1,2"], "ideal"),
    ("critical-batch", [], "ideal"),
    ("regimes", [], "ideal"),
]


def _run(args: list[str]) -> str:
    result = runner.invoke(app, args, env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return " ".join(result.stdout.split())  # a narrow console folds a title: words, not line breaks


@pytest.mark.parametrize(("command", "flags", "mode"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_each_command_names_its_default_mode_in_json_and_table(command: str, flags: list[str], mode: str) -> None:
    doc = json.loads(_run([command, *flags, "--json"]))
    assert doc["efficiency"] == mode
    assert f"{mode} mode" in _run([command, *flags])


@pytest.mark.parametrize(("command", "flags", "mode"), COMMANDS[:4], ids=[c[0] for c in COMMANDS[:4]])
def test_the_calibrated_views_take_ideal_when_asked(command: str, flags: list[str], mode: str) -> None:
    doc = json.loads(_run([command, *flags, "--efficiency", "ideal", "--json"]))
    assert doc["efficiency"] == "ideal"


def test_the_api_defaults_are_the_clis() -> None:
    assert rooflm.serve_traffic(concurrency=[1], method="steady", gen_len=16).efficiency == "calibrated"
    assert rooflm.compare_quant(batch=[1]).efficiency == "calibrated"
    assert rooflm.explain().report.efficiency == "calibrated"
    plan = rooflm.plan(gpus=1, prompt_len=256, gen_len=16, quant="fp8", kv_dtype="fp8", max_running=[16],
                       max_tokens_per_step=[2048], concurrency=[1], workers=1)
    assert plan.efficiency == "calibrated"
    assert rooflm.analyze().efficiency == rooflm.sweep().efficiency == "ideal"
    assert rooflm.critical_batch().efficiency == rooflm.regimes("llama-3.1-8b", "h100-sxm").efficiency == "ideal"
    # Asked for, ideal is ideal everywhere.
    assert rooflm.serve_traffic(concurrency=[1], method="steady", gen_len=16, efficiency="ideal").efficiency == "ideal"
    assert rooflm.explain(efficiency="ideal").report.efficiency == "ideal"


def test_the_web_endpoints_default_as_the_cli() -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from rooflm.web import create_app

    client = TestClient(create_app(), base_url="http://localhost")
    serving = client.post("/api/serving", json={"concurrency": "1", "method": "steady", "gen_len": 16}).json()
    assert serving["efficiency"] == "calibrated"
    assert client.post("/api/explain", json={}).json()["efficiency"] == "calibrated"
    assert client.post("/api/quant", json={"batch": "1"}).json()["efficiency"] == "calibrated"
    analyze = client.post("/api/analyze", json={}).json()
    assert analyze["efficiency"] == "ideal" and analyze["totals"]["calibrated"]["efficiency"] == "calibrated"


def test_plot_titles_name_the_mode() -> None:
    from rooflm.plot import Query, figure_data

    q = Query.of(model="llama-3.1-8b", hardware="h100-sxm")
    assert "ideal mode" in figure_data("roofline", q).title
    assert "calibrated mode" in figure_data("roofline", Query.of(model="llama-3.1-8b", hardware="h100-sxm",
                                                                 efficiency="calibrated")).title
