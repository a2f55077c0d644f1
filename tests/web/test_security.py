"""The server opens no file a request names, answers only its own Host names, and bounds every request."""

from __future__ import annotations

import inspect
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from rooflm.cli.plot import served_hosts
from rooflm.specs.hardware import HARDWARE_DIR
from rooflm.specs.hf_config import MODELS_DIR
from rooflm.web import create_app
from rooflm.web.guards import MAX_BODY_BYTES, host_name
from rooflm.web.schemas import MAX_API_POINTS

SECRET = "SECRET-TOKEN-abc123"


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(), base_url="http://localhost", raise_server_exceptions=False)


@pytest.fixture
def secrets(tmp_path: Path) -> dict[str, Path]:
    """Files a server must never read for a request: a JSON whose model_type is a secret, a folder with a
    config.json, a valid model config, a file that is not JSON, and a hardware TOML."""
    (tmp_path / "secret.json").write_text(json.dumps({"model_type": SECRET}))
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "config.json").write_text(json.dumps({"model_type": "PASSWORD=hunter2"}))
    (tmp_path / "valid").mkdir()
    (tmp_path / "valid" / "config.json").write_text((MODELS_DIR / "llama-3.1-8b" / "config.json").read_text())
    (tmp_path / "notjson.json").write_text(f"{SECRET} is not json")
    (tmp_path / "device.toml").write_text((HARDWARE_DIR / "h100-sxm.toml").read_text())
    return {p.name: p for p in tmp_path.iterdir()}


def _refused(reply: Any, field: str) -> dict[str, Any]:
    assert reply.status_code == 422, reply.text
    assert SECRET not in reply.text and "hunter2" not in reply.text
    doc = reply.json()
    assert doc["field"] == field
    return doc  # type: ignore[no-any-return]


@pytest.mark.parametrize("endpoint", ["/api/analyze", "/api/sweep", "/api/critical-batch", "/api/quant",
                                      "/api/explain", "/api/regimes", "/api/figure/roofline"])
def test_no_endpoint_opens_a_model_path(client: TestClient, secrets: dict[str, Path], endpoint: str) -> None:
    messages = set()
    for path in (secrets["secret.json"], secrets["folder"], secrets["valid"], secrets["notjson.json"],
                 secrets["folder"] / "nothing-here.json"):
        doc = _refused(client.post(endpoint, json={"model": str(path)}), "model")
        assert "not in the catalog" in doc["message"]
        # The same words whether the file exists, is JSON or not: the reply cannot probe the disk.
        messages.add(re.sub(r"'[^']*'", "NAME", doc["message"], count=1))
    assert len(messages) == 1


def test_no_endpoint_opens_a_hardware_path(client: TestClient, secrets: dict[str, Path]) -> None:
    for path in (secrets["device.toml"], secrets["secret.json"], Path("/etc/passwd")):
        doc = _refused(client.post("/api/analyze", json={"hardware": str(path)}), "hardware")
        assert "unknown hardware" in doc["message"]
        _refused(client.get(f"/api/hardware/{path}"), "hardware")


def test_catalog_documents_name_no_server_path(client: TestClient) -> None:
    doc = client.get("/api/models/llama-3.1-8b").json()
    assert str(MODELS_DIR) not in json.dumps(doc)
    assert doc["source"] == "the catalog's llama-3.1-8b/config.json"
    assert str(HARDWARE_DIR) not in client.get("/api/hardware/h100-sxm").text
    assert str(MODELS_DIR.parent) not in client.get("/api/models").text


def test_pasted_hardware_toml_equals_the_catalog_device(client: TestClient) -> None:
    toml = (HARDWARE_DIR / "h100-sxm.toml").read_text()
    pasted = client.post("/api/analyze", json={"hardware_toml": toml, "batch": 8})
    named = client.post("/api/analyze", json={"hardware": "h100-sxm", "batch": 8})
    assert pasted.status_code == 200, pasted.text
    assert pasted.json()["totals"] == named.json()["totals"]
    doc = _refused(client.post("/api/analyze", json={"hardware_toml": f"name = '{SECRET}\nbroken"}), "hardware_toml")
    assert "not valid TOML" in doc["message"]
    _refused(client.post("/api/analyze", json={"hardware_toml": "[a]\n" * 3 + "x = 1"}), "hardware_toml")


@pytest.mark.parametrize(("host", "served"), [
    ("localhost", True), ("localhost:8000", True), ("127.0.0.1:8000", True), ("[::1]:8000", True),
    ("LOCALHOST", True), ("evil.example", False), ("evil.example:8000", False), ("127.0.0.1.evil.example", False),
    ("", False),
])
def test_only_loopback_hosts_are_answered(client: TestClient, host: str, served: bool) -> None:
    reply = client.get("/api/schemes", headers={"host": host})
    assert reply.status_code == (200 if served else 400), reply.text
    if not served:
        assert "--allow-host" in reply.json()["message"]


def test_allowed_hosts_come_from_the_serve_flags() -> None:
    assert host_name("[::1]:8000") == "::1" and host_name("Box.Lan:80") == "box.lan"
    assert served_hosts("127.0.0.1", []) == {"localhost", "127.0.0.1", "::1"}
    # Listening on every interface does not make every name safe; a named address or --allow-host adds one.
    assert served_hosts("0.0.0.0", []) == {"localhost", "127.0.0.1", "::1"}
    assert served_hosts("10.0.0.5", ["box.lan:8000"]) == {"localhost", "127.0.0.1", "::1", "10.0.0.5", "box.lan"}
    app = TestClient(create_app(allowed_hosts=served_hosts("0.0.0.0", ["box.lan"])), base_url="http://box.lan")
    assert app.get("/api/schemes").status_code == 200
    assert app.get("/api/schemes", headers={"host": "other.lan"}).status_code == 400


def test_oversize_bodies_are_refused_before_parsing(client: TestClient) -> None:
    big = json.dumps({"model": "x" * (MAX_BODY_BYTES + 1)})
    started = time.perf_counter()
    reply = client.post("/api/analyze", content=big, headers={"content-type": "application/json"})
    assert reply.status_code == 422 and f"{MAX_BODY_BYTES:,} bytes" in reply.json()["message"]
    assert len(reply.content) < 1000

    def chunks() -> Any:  # no Content-Length: the limit holds on what arrives
        for _ in range(40):
            yield b" " * 65536

    reply = client.post("/api/analyze", content=chunks(), headers={"content-type": "application/json"})
    assert reply.status_code == 422 and "over the limit" in reply.json()["message"]
    assert time.perf_counter() - started < 5  # generous: the point is that nothing is evaluated


def test_echoed_fields_are_cut_short(client: TestClient) -> None:
    reply = client.post("/api/analyze", json={"k" * 200_000: 1, "batch": "b" * 300_000})
    assert reply.status_code == 422
    assert len(reply.content) < 5_000, len(reply.content)


def test_deeply_nested_bodies_are_refused(client: TestClient) -> None:
    body = '{"config": ' + "[" * 100_000 + "]" * 100_000 + "}"
    doc = client.post("/api/analyze", content=body, headers={"content-type": "application/json"}).json()
    assert "nests too deeply" in doc["message"]


@pytest.mark.parametrize(("endpoint", "body"), [
    ("/api/sweep", {"batch": "1:4096", "context": "1:4096"}),
    ("/api/sweep", {"batch": "1:1000000000000"}),
    ("/api/sweep", {"batch": list(range(1, 10_001)), "prompt_len": "1,2"}),
    ("/api/quant", {"batch": "1:4096", "context": "1:64"}),
    ("/api/quant", {"batch": "1:4000"}),  # 4,000 points × the 4 default schemes
])
def test_oversize_sweeps_are_refused_up_front(client: TestClient, endpoint: str, body: dict[str, Any]) -> None:
    started = time.perf_counter()
    doc = _refused(client.post(endpoint, json=body), "batch")
    assert f"at most {MAX_API_POINTS:,}" in doc["message"]
    assert time.perf_counter() - started < 2  # refused by counting, not by evaluating (generous for shared CI)


def test_a_500_says_it_closes_the_connection(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    import rooflm

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(rooflm, "analyze", broken)
    reply = client.post("/api/analyze", json={})
    assert reply.status_code == 500 and reply.headers["connection"] == "close"


def test_evaluations_run_off_the_event_loop() -> None:
    # An `async def` endpoint runs on the event loop, where a 2-second evaluation stalls every other client.
    routes = [r for r in create_app().routes if isinstance(r, APIRoute) and "POST" in r.methods]
    assert {"/api/analyze", "/api/sweep", "/api/quant", "/api/explain"} <= {r.path for r in routes}
    assert not [r.path for r in routes if inspect.iscoroutinefunction(r.endpoint)]
