"""POST /api/serving: the CLI's document for the same inputs, and oversize requests refused up front (422)."""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from rooflm.cli import app as cli_app
from rooflm.web import create_app
from rooflm.web.schemas import MAX_API_SIMULATED_REQUESTS, MAX_API_SIMULATED_STEPS

client = TestClient(create_app(), base_url="http://localhost", raise_server_exceptions=False)


def test_reply_equals_the_cli_json() -> None:
    body = {"concurrency": "1,4", "prompt_len": "uniform:100:400", "gen_len": 32, "requests": 60}
    reply = client.post("/api/serving", json=body)
    assert reply.status_code == 200, reply.text
    cli = CliRunner().invoke(cli_app, ["serving", "--concurrency", "1,4", "--prompt-len", "uniform:100:400",
                                       "--gen-len", "32", "--requests", "60", "--json"])
    assert cli.exit_code == 0, cli.output
    assert reply.json() == json.loads(cli.stdout)


def test_emit_adds_the_launch_as_the_cli_does() -> None:
    body = {"concurrency": [8], "method": "steady", "tp": 2, "quant": "fp8", "emit": "sglang"}
    reply = client.post("/api/serving", json=body)
    assert reply.status_code == 200, reply.text
    cli = CliRunner().invoke(cli_app, ["serving", "--concurrency", "8", "--method", "steady", "--tp", "2", "--quant",
                                       "fp8", "--emit", "sglang", "--json"])
    assert cli.exit_code == 0, cli.output
    assert reply.json()["launch"] == json.loads(cli.stdout)["launch"]
    assert reply.json()["launch"]["serve"][0][:5] == ["python", "-m", "sglang.launch_server", "--model-path",
                                                      "meta-llama/Llama-3.1-8B"]
    bad = client.post("/api/serving", json={**body, "emit": "tgi"})
    assert bad.status_code == 422 and "emit" in bad.text


@pytest.mark.parametrize(("body", "field"), [
    ({"concurrency": "1:64", "requests": 2000}, "requests"),  # 64 × 2,000 simulated requests
    ({"concurrency": "1:64"}, "concurrency"),  # the default 2,000 per load
    ({"request_rate": [1.0] * 65, "method": "steady"}, "request_rate"),
    ({"concurrency": [1], "requests": 5_000, "gen_len": 100_000}, "requests"),  # 5·10^8 output tokens
    # serve_traffic's default for a rate is 4 × the rate: 12,000 requests (the check once assumed 2,000 for rates)
    ({"request_rate": [3000.0]}, "request_rate"),
    # 1-token chunks: 200 × (2 + 1,000) = 200,400 scheduler steps (took ~30 s before the step bound)
    ({"concurrency": [1], "requests": 200, "prompt_len": 1000, "gen_len": 2, "max_running": 1,
      "max_tokens_per_step": 1}, "requests"),
    ({"concurrency": [1], "prompt_len": "uniform:9:1"}, "prompt_len"),
    ({"concurrency": [1], "seed": -1}, "seed"),
])
def test_oversize_or_wrong_requests_are_refused_before_any_work(body: dict[str, object], field: str) -> None:
    start = time.perf_counter()
    reply = client.post("/api/serving", json=body)
    assert reply.status_code == 422, reply.text
    assert reply.json()["field"] == field
    assert time.perf_counter() - start < 1.0
    if field == "requests" and "gen_len" not in body:
        assert f"{MAX_API_SIMULATED_REQUESTS:,}" in reply.json()["message"]
    if "max_tokens_per_step" in body:
        assert f"200,400 scheduler steps; the API simulates at most {MAX_API_SIMULATED_STEPS:,}" in reply.json()["message"]


def test_disaggregated_reply_equals_the_cli_json() -> None:
    """POST /api/serving with disaggregate and kv_link: rooflm serving --disaggregate's document; a bad split is a
    422 naming the field."""
    body = {"concurrency": [1, 4], "prompt_len": 1500, "gen_len": 32, "requests": 60, "disaggregate": "1P:2D",
            "kv_link": "intra_node"}
    reply = client.post("/api/serving", json=body)
    assert reply.status_code == 200, reply.text
    cli = CliRunner().invoke(cli_app, ["serving", "--concurrency", "1,4", "--prompt-len", "1500", "--gen-len", "32",
                                       "--requests", "60", "--disaggregate", "1P:2D", "--kv-link", "intra_node",
                                       "--json"])
    assert cli.exit_code == 0, cli.output
    assert reply.json() == json.loads(cli.stdout)
    assert reply.json()["disaggregate"]["split"] == "1P:2D" and reply.json()["devices"] == 3
    bad = client.post("/api/serving", json={**body, "disaggregate": "0P:2D"})
    assert bad.status_code == 422 and bad.json()["field"] == "disaggregate"


def test_the_step_budget_is_max_num_batched_tokens_and_its_former_name_is_still_read() -> None:
    body = {"concurrency": [4], "prompt_len": 128, "gen_len": 8, "requests": 20, "max_running": 8}
    new = client.post("/api/serving", json={**body, "max_num_batched_tokens": 1024})
    old = client.post("/api/serving", json={**body, "max_tokens_per_step": 1024})
    assert new.status_code == old.status_code == 200
    assert new.json()["max_num_batched_tokens"] == 1024 and "max_tokens_per_step" not in new.json()
    assert new.json() == old.json()
    short = client.post("/api/serving", json={**body, "max_running": 64, "max_num_batched_tokens": 32})
    assert short.status_code == 422
    assert short.json()["detail"][0]["loc"] == ["body", "max_num_batched_tokens"]
