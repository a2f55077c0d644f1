"""The JSON API: every endpoint, its replies equal to the CLI's --json, and mistakes as 422s naming the field."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from typer.testing import CliRunner

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

import rooflm
from rooflm.cli import app as cli_app
from rooflm.web import create_app

runner = CliRunner()


@pytest.fixture(scope="module")
def client() -> TestClient:
    # Bugs surface as 500s rather than exceptions, as they would for a user of the running server.
    return TestClient(create_app(), base_url="http://localhost", raise_server_exceptions=False)


def cli_json(*args: str) -> Any:
    result = runner.invoke(cli_app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# ------------------------------------------------------------------ replies equal the CLI's --json

@pytest.mark.parametrize(("body", "flags"), [
    ({}, []),
    ({"model": "llama-3.1-8b", "hardware": "h100-sxm", "batch": 8, "context": 2048},
     ["--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--batch", "8", "--context", "2048"]),
    ({"model": "qwen3-8b", "hardware": "h200", "phase": "prefill", "batch": 4, "prompt_len": 512, "quant": "fp8"},
     ["--model", "qwen3-8b", "--hardware", "h200", "--phase", "prefill", "--batch", "4", "--prompt-len", "512",
      "--quant", "fp8"]),
    ({"phase": "e2e", "batch": 16, "prompt_len": 256, "gen_len": 32, "quant": "w4a16", "kv_dtype": "fp8",
      "efficiency": "calibrated"},
     ["--phase", "e2e", "--batch", "16", "--prompt-len", "256", "--gen-len", "32", "--quant", "w4a16",
      "--kv-dtype", "fp8", "--efficiency", "calibrated"]),
    ({"model": "llama-3.1-70b", "tp": 4, "batch": 32, "kernel_overhead": 5e-6},
     ["--model", "llama-3.1-70b", "--tp", "4", "--batch", "32", "--kernel-overhead", "5e-6"]),
])
def test_analyze_equals_cli(client: TestClient, body: dict[str, Any], flags: list[str]) -> None:
    reply = client.post("/api/analyze", json=body)
    assert reply.status_code == 200, reply.text
    assert reply.json() == cli_json("analyze", *flags)


def test_sweep_equals_cli(client: TestClient) -> None:
    body = {"batch": "1:256:x2", "context": "128,4096", "quant": "fp8"}
    reply = client.post("/api/sweep", json=body)
    assert reply.status_code == 200, reply.text
    assert reply.json() == cli_json("sweep", "--batch", "1:256:x2", "--context", "128,4096", "--quant", "fp8")
    as_lists = client.post("/api/sweep", json={"batch": [1, 2, 4, 8, 16, 32, 64, 128, 256], "context": [128, 4096],
                                               "quant": "fp8"})
    assert as_lists.json() == reply.json()


def test_critical_batch_equals_cli(client: TestClient) -> None:
    reply = client.post("/api/critical-batch", json={"quant": "w4a16", "context": 512})
    assert reply.status_code == 200
    assert reply.json() == cli_json("critical-batch", "--quant", "w4a16", "--context", "512")
    assert reply.json()["critical_batch"] == rooflm.critical_batch(quant="w4a16", context=512).critical_batch


@pytest.mark.parametrize(("path", "args"), [
    ("/api/models", ["models", "list"]),
    ("/api/models/qwen3-8b", ["models", "show", "qwen3-8b"]),
    ("/api/hardware", ["hardware", "list"]),
    ("/api/hardware/H100", ["hardware", "show", "H100"]),
])
def test_catalog_equals_cli(client: TestClient, path: str, args: list[str]) -> None:
    reply = client.get(path)
    assert reply.status_code == 200
    assert reply.json() == cli_json(*args)


def test_catalog_endpoints_give_the_published_figures(client: TestClient) -> None:
    # Both surfaces call the same catalog functions, so the equality above says nothing about the values: these come
    # from the sources. Qwen3-8B (Qwen's model card: 8.2B parameters, 6.95B non-embedding), by hand from its
    # config.json (36 layers, h 4096, 32 q / 8 kv heads of 128 with q/k norms, FFN 12288, vocab 151936, untied):
    # attention 36 * 4096 * (4096 + 2 * 1024 + 4096) = 1,509,949,440; MLP 36 * 3 * 4096 * 12288 = 5,435,817,984;
    # norms 36 * (2 * 4096 + 2 * 128) + 4096 = 308,224: 6,946,075,648 non-embedding; + 2 * 151936 * 4096 =
    # 1,244,659,712 embedding and lm_head = 8,190,735,360. KV per token: 2 * 36 * 8 * 128 * 2 B = 147,456.
    qwen = client.get("/api/models/qwen3-8b").json()
    assert qwen["non_embedding_params"] == 6_946_075_648
    assert qwen["total_params"] == 8_190_735_360
    assert qwen["kv_bytes_per_token"] == 147_456
    # NVIDIA H100 datasheet (SXM5): 3.35 TB/s; 989.4 TFLOP/s dense bf16, 1978.9 fp8; nvidia-smi shows 81,559 MiB.
    h100 = client.get("/api/hardware/H100").json()
    assert h100["name"] == "h100-sxm" and h100["memory_bandwidth"] == 3.35e12
    assert h100["memory_capacity"] == 81_559 * 2**20
    assert h100["peak_flops"]["bf16"] == 989.4e12 and h100["peak_flops"]["fp8"] == 1978.9e12
    listed = {m["name"]: m for m in client.get("/api/models").json()["models"]}
    assert listed["llama-3.1-8b"]["total_params"] == 8_030_261_248  # Meta's model card
    assert {"h100-sxm", "h200", "b200", "mi300x", "l40s", "a100-sxm"} <= \
        {h["name"] for h in client.get("/api/hardware").json()["hardware"]}


def test_schemes(client: TestClient) -> None:
    schemes = client.get("/api/schemes").json()["schemes"]
    assert {"bf16", "fp8", "w4a16", "w4a8"} <= set(schemes)


def test_model_from_a_pasted_config(client: TestClient) -> None:
    config = json.loads((rooflm.specs.hf_config.MODELS_DIR / "llama-3.1-8b" / "config.json").read_text())
    as_object = client.post("/api/analyze", json={"config": config, "batch": 8, "context": 512})
    as_text = client.post("/api/analyze", json={"config": json.dumps(config), "batch": 8, "context": 512})
    catalog = client.post("/api/analyze", json={"model": "llama-3.1-8b", "batch": 8, "context": 512})
    assert as_object.status_code == as_text.status_code == 200
    assert as_object.json()["totals"] == as_text.json()["totals"] == catalog.json()["totals"]


# ------------------------------------------------------------------ mistakes: 422, the field named, no trace

def _error(reply: Any, status: int = 422) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    doc = reply.json()
    assert "Traceback" not in reply.text and 'File "' not in reply.text
    assert doc["message"]
    return doc  # type: ignore[no-any-return]


@pytest.mark.parametrize(("path", "body", "field", "words"), [
    ("/api/analyze", {"model": "llama-9"}, "model", "unknown model 'llama-9'; did you mean"),
    ("/api/analyze", {"batch": 0}, "batch", "batch must be a positive integer, got 0"),
    ("/api/analyze", {"batch": -3, "phase": "prefill"}, "batch", "positive integer"),
    ("/api/analyze", {"config": {"model_type": "llama", "hidden_size": 64}}, "config", "has no 'num_attention_heads'"),
    ("/api/analyze", {"config": "{not json"}, "config", "config is not valid JSON"),
    ("/api/analyze", {"config": [1, 2]}, "config", "Input should be"),
    ("/api/analyze", {"config": {"model_type": "t5"}}, "config", "not supported"),
    ("/api/analyze", {"model": "llama-3.1-8b", "config": {}}, "config", "either model or config"),
    ("/api/analyze", {"hardware": "h1000"}, "hardware", "unknown hardware 'h1000'"),
    ("/api/analyze", {"quant": "int3"}, "quant", "unknown quantization scheme 'int3'"),
    ("/api/analyze", {"quant": "fp4"}, "quant", "no fp4 compute roof"),
    ("/api/analyze", {"kv_dtype": "fp9"}, "kv_dtype", "fp9"),
    ("/api/analyze", {"phase": "training"}, "phase", "phase must be one of"),
    ("/api/analyze", {"context": 10_000_000}, "context", "exceeds the model's maximum"),
    ("/api/analyze", {"tp": 3}, "tp", "does not divide"),
    ("/api/analyze", {"eta_memory": 2}, "eta_memory", "memory efficiency must be in [0.001, 1]"),
    ("/api/analyze", {"batch": "many"}, "batch", "valid integer"),
    ("/api/analyze", {"bacth": 8}, "bacth", "Extra inputs are not permitted"),
    ("/api/sweep", {"batch": "1:x"}, "batch", "is not a list of integers"),
    ("/api/sweep", {"batch": [1, 0]}, "batch", "positive integer"),
    ("/api/critical-batch", {"context": 0}, "context", "positive integer"),
])
def test_mistakes_name_the_field(client: TestClient, path: str, body: dict[str, Any], field: str, words: str) -> None:
    doc = _error(client.post(path, json=body))
    assert doc["field"] == field
    assert words in doc["message"]
    assert field in doc["detail"][0]["loc"]


def test_unknown_names_in_the_path(client: TestClient) -> None:
    assert _error(client.get("/api/models/llama-9"))["field"] == "model"
    assert _error(client.get("/api/hardware/h1000"))["field"] == "hardware"
    assert _error(client.post("/api/figure/pie", json={}))["field"] == "kind"


def test_malformed_json_body(client: TestClient) -> None:
    doc = _error(client.post("/api/analyze", content=b"{batch: 8", headers={"content-type": "application/json"}))
    assert doc["field"] is None and "not valid JSON" in doc["message"]
    doc = _error(client.post("/api/analyze", content=b"[]", headers={"content-type": "application/json"}))
    assert "send a JSON object" in doc["message"]


def test_the_server_keeps_serving_after_mistakes_and_bugs(client: TestClient,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for body in ({"batch": 0}, {"model": "nope"}, {"config": "]"}):
        _error(client.post("/api/analyze", json=body))

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug deep inside")

    monkeypatch.setattr(rooflm, "analyze", broken)
    doc = _error(client.post("/api/analyze", json={}), status=500)
    assert "a bug deep inside" not in doc["message"] and "RuntimeError" in doc["message"]
    monkeypatch.undo()
    assert client.post("/api/analyze", json={"batch": 2}).status_code == 200


# ------------------------------------------------------------------ quant, explain, figures, the page, the schema

def test_quant_equals_cli(client: TestClient) -> None:
    body = {"schemes": "bf16,w4a16,w4a8", "batch": "1,64,512", "context": "1024"}
    reply = client.post("/api/quant", json=body)
    assert reply.status_code == 200, reply.text
    assert reply.json() == cli_json("quant", "--schemes", "bf16,w4a16,w4a8", "--batch", "1,64,512",
                                    "--context", "1024")
    as_lists = client.post("/api/quant", json={"schemes": ["bf16", "w4a16", "w4a8"], "batch": [1, 64, 512],
                                               "context": [1024]})
    assert as_lists.json() == reply.json()
    doc = _error(client.post("/api/quant", json={"schemes": "bf16,int3"}))
    assert doc["field"] == "schemes" and "int3" in doc["message"]


def test_explain_equals_cli(client: TestClient) -> None:
    reply = client.post("/api/explain", json={"batch": 64, "context": 1024, "quant": "fp8"})
    assert reply.status_code == 200, reply.text
    doc = reply.json()
    assert doc == cli_json("explain", "--batch", "64", "--context", "1024", "--quant", "fp8")
    assert doc["markdown"].startswith("# llama-3.1-8b on h100-sxm")


def test_figure_endpoint_gives_plotly_json(client: TestClient) -> None:
    pytest.importorskip("plotly")
    reply = client.post("/api/figure/roofline", json={"batch": 64, "context": 128})
    assert reply.status_code == 200
    fig = reply.json()
    names = [t.get("name", "") for t in fig["data"]]
    assert "whole step as batch grows" in names and "bf16 roof" in names
    assert fig["layout"]["xaxis"]["type"] == "log"


def test_page_and_local_plotly(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    srcs = re.findall(r"<script[^>]*\bsrc\s*=\s*['\"]?([^'\" >]+)", page.text)
    assert srcs == ["/static/plotly.min.js", "/static/app.js", "/static/serving.js"]  # served here: no CDN
    js = client.get("/static/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000 and b"plotly" in js.content[:2000].lower()
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/serving.js").status_code == 200
    assert client.get("/static/style.css").status_code == 200


def test_openapi_schema_lists_every_endpoint(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = set(schema["paths"])
    assert {"/api/models", "/api/hardware", "/api/analyze", "/api/sweep", "/api/quant", "/api/explain",
            "/api/critical-batch"} <= paths
    fields = schema["components"]["schemas"]["AnalyzeBody"]["properties"]
    assert {"model", "config", "hardware", "phase", "batch", "prompt_len", "context", "gen_len", "quant",
            "kv_dtype", "efficiency", "tp"} <= set(fields)


def test_serve_refuses_a_port_in_use() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = runner.invoke(cli_app, ["serve", "--port", str(port)])
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
