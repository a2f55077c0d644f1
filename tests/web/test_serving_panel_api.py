"""The serving panel's exact request bodies (tests/web/serving_panel_bodies.json, which the browser test checks the
page sends) are accepted by POST /api/serving and answered with rooflm.serve_traffic's numbers for the same
arguments, called directly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

import rooflm
from rooflm.web import create_app

BODIES = json.loads((Path(__file__).parent / "serving_panel_bodies.json").read_text())
# The same inputs as serve_traffic's arguments, written out by hand (the load lists as the lists they denote).
# The page leaves the mode to the view (no efficiency sent): serving's own default, calibrated, on both sides.
DEPLOYMENT = {"quant": "bf16", "tp": 1, "ep": 1, "pp": 1, "dp": 1}
DIRECT: dict[str, dict[str, Any]] = {
    "simulate_concurrency": {"prompt_len": "uniform:100:400", "gen_len": 32, "method": "simulate",
                             "concurrency": [1, 4, 16], "requests": 100},
    "steady_request_rate": {"prompt_len": 1024, "gen_len": 32, "method": "steady",
                            "request_rate": [1.0, 2.0, 4.0, 8.0, 16.0], "max_running": 64, "max_tokens_per_step": 2048},
    "steady_disaggregated": {"prompt_len": 1024, "gen_len": 32, "method": "steady",
                             "request_rate": [1.0, 2.0, 4.0, 8.0, 16.0], "max_running": 64, "max_tokens_per_step": 2048,
                             "disaggregate": "1P:1D", "kv_link": "intra_node"},
}


@pytest.mark.parametrize("name", sorted(DIRECT))
def test_the_panel_body_gives_serve_traffics_numbers(name: str) -> None:
    client = TestClient(create_app(), base_url="http://localhost", raise_server_exceptions=False)
    reply = client.post("/api/serving", json=BODIES[name])
    assert reply.status_code == 200, reply.text
    direct = rooflm.serve_traffic("llama-3.1-8b", "h100-sxm", **DIRECT[name], **DEPLOYMENT).to_json_dict()
    doc = reply.json()
    assert doc == json.loads(json.dumps(direct))
    loads = DIRECT[name].get("concurrency") or DIRECT[name]["request_rate"]
    assert len(doc["points"]) == len(loads)
    assert all(p["ttft_s"] > 0 and p["output_tokens_per_s_per_gpu"] > 0 for p in doc["points"])
