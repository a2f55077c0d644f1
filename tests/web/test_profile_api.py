"""A `rooflm fit` profile over HTTP: its TOML text in `profile_toml`, read from text, never a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

import rooflm
from rooflm.core.profiles import profile_from_text
from rooflm.web import create_app

SECRET = "SECRET-TOKEN-abc123"

# A profile as `rooflm fit` writes it (rooflm.fit.profile), by hand: fitted values far from the h100-sxm catalog's
# (eta_memory 0.81, kernel overhead 4 µs), so that a prediction with it cannot equal one without it.
PROFILE = """\
[profile]
data = "bench.csv"
data_sha256 = "00ff"
rows = 4

[devices."h100-sxm".parameters.eta_memory]
value = 0.5
catalog = 0.81
stderr = 0.01
fitted = true

[devices."h100-sxm".parameters.kernel_overhead]
value = 1e-5
catalog = 4e-6
stderr = 1e-6
fitted = true
"""


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(), base_url="http://localhost", raise_server_exceptions=False)


def _refused(reply: Any, field: str) -> dict[str, Any]:
    assert reply.status_code == 422, reply.text
    doc: dict[str, Any] = reply.json()
    assert doc["field"] == field, doc
    return doc


def test_a_posted_profile_predicts_as_the_python_api_with_that_profile(client: TestClient, tmp_path: Path) -> None:
    (tmp_path / "bench.toml").write_text(PROFILE)
    inputs = {"model": "llama-3.1-8b", "hardware": "h100-sxm", "phase": "decode", "batch": 8, "context": 2048}
    reply = client.post("/api/analyze", json={**inputs, "profile_toml": PROFILE})
    assert reply.status_code == 200, reply.text
    doc = reply.json()
    api = rooflm.analyze(**inputs, profile=tmp_path / "bench.toml").to_json_dict()
    assert doc["totals"] == api["totals"]
    assert doc["profile"] == {"name": "profile_toml", "data_sha256": "00ff"}
    # The same as the profile's values given as keywords; and not the catalog's calibration.
    by_hand = rooflm.analyze(**inputs, efficiency="calibrated", eta_memory=0.5, kernel_overhead_s=1e-5).to_json_dict()
    assert doc["totals"] == by_hand["totals"]
    plain = client.post("/api/analyze", json={**inputs, "efficiency": "calibrated"}).json()
    assert doc["totals"]["time_s"] > plain["totals"]["time_s"]  # eta_memory 0.5 < 0.81: decode is slower


def test_a_field_sent_wins_over_the_profile(client: TestClient) -> None:
    inputs = {"batch": 8, "context": 2048, "profile_toml": PROFILE}
    doc = client.post("/api/analyze", json={**inputs, "eta_memory": 0.81}).json()
    ref = rooflm.analyze("llama-3.1-8b", "h100-sxm", batch=8, context=2048, efficiency="calibrated",
                         eta_memory=0.81, kernel_overhead_s=1e-5).to_json_dict()
    assert doc["totals"] == ref["totals"]


@pytest.mark.parametrize(("path", "body"), [
    ("/api/analyze", {}), ("/api/sweep", {"batch": "1,8"}), ("/api/critical-batch", {}),
    ("/api/quant", {"schemes": "bf16,fp8", "batch": "1,8"}), ("/api/explain", {}),
    ("/api/serving", {"method": "steady", "concurrency": [1, 4]}), ("/api/figure/roofline", {}),
])
def test_every_endpoint_with_deployment_fields_takes_a_profile(client: TestClient, path: str, body: dict[str, Any]) -> None:
    reply = client.post(path, json={**body, "profile_toml": PROFILE})
    assert reply.status_code == 200, reply.text
    doc = reply.json()
    if isinstance(doc, dict) and "profile" in doc:
        assert doc["profile"]["name"] == "profile_toml"
    # and the profile is read on every one: a broken one is refused there too
    _refused(client.post(path, json={**body, "profile_toml": "[devices"}), "profile_toml")


def test_broken_toml_is_refused_naming_the_field_and_quoting_none_of_it(client: TestClient) -> None:
    doc = _refused(client.post("/api/analyze", json={"profile_toml": f"data = '{SECRET}\nbroken"}), "profile_toml")
    assert "not valid TOML" in doc["message"]
    assert SECRET not in str(doc)


@pytest.mark.parametrize("text", [
    f'[devices."{SECRET}".parameters.eta_memory]\nvalue = 0.5',  # a device the request's hardware is not
    f'[devices."h100-sxm".parameters.{SECRET}]\nvalue = 0.5',  # an unknown parameter
    f'[devices."{SECRET}".parameters.eta_memory]\nvalue = "x"',  # a value that is not a number
    f'[devices."{SECRET}".parameters.eta_memory]\nvalue = 7.0',  # out of range
    f'[devices]\n"{SECRET}" = 1',  # not a table
    f"[profile]\ndata = '{SECRET}'",  # no devices
])
def test_a_malformed_profile_is_refused_without_echoing_its_keys(client: TestClient, text: str) -> None:
    doc = _refused(client.post("/api/analyze", json={"profile_toml": text}), "profile_toml")
    assert SECRET not in str(doc)


def test_a_profile_with_efficiency_ideal_sent_is_refused(client: TestClient) -> None:
    doc = _refused(client.post("/api/analyze", json={"profile_toml": PROFILE, "efficiency": "ideal"}), "profile_toml")
    assert "calibrated" in doc["message"]


def test_a_path_is_just_text_that_is_not_toml(client: TestClient, tmp_path: Path) -> None:
    (tmp_path / "bench.toml").write_text(PROFILE)  # a valid profile the server must not open
    for path in (str(tmp_path / "bench.toml"), "/etc/passwd", "file:///etc/passwd"):
        doc = _refused(client.post("/api/analyze", json={"profile_toml": path}), "profile_toml")
        assert "not valid TOML" in doc["message"]


def test_the_text_reader_opens_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_open(*_: Any, **__: Any) -> None:
        raise AssertionError("profile_from_text opened a file")

    monkeypatch.setattr(Path, "read_text", no_open)
    monkeypatch.setattr(Path, "open", no_open)
    profile = profile_from_text(PROFILE, "profile_toml")
    assert profile.devices == {"h100-sxm": {"eta_memory": 0.5, "kernel_overhead": 1e-5}}


def test_a_profile_too_large_is_refused(client: TestClient) -> None:
    from rooflm.web.schemas import MAX_PROFILE_TOML

    text = "#" * (MAX_PROFILE_TOML + 1)
    _refused(client.post("/api/analyze", json={"profile_toml": text}), "profile_toml")


# A profile of format 2 (factors on the calibrated curves), as `rooflm fit` writes it now, by hand.
FACTOR_PROFILE = """\
[profile]
format = 2
data = "bench.csv"
data_sha256 = "00ff"

[devices."h100-sxm".factors."bandwidth.dense"]
value = 0.5
catalog = 1.0
stderr = 0.01
fitted = true
"""


def test_a_posted_factor_profile_predicts_as_the_python_api(client: TestClient, tmp_path: Path) -> None:
    (tmp_path / "bench.toml").write_text(FACTOR_PROFILE)
    inputs = {"model": "llama-3.1-8b", "hardware": "h100-sxm", "phase": "decode", "batch": 8, "context": 2048}
    doc = client.post("/api/analyze", json={**inputs, "profile_toml": FACTOR_PROFILE}).json()
    api = rooflm.analyze(**inputs, profile=tmp_path / "bench.toml").to_json_dict()
    assert doc["totals"] == api["totals"]
    plain = client.post("/api/analyze", json={**inputs, "efficiency": "calibrated"}).json()
    assert doc["totals"]["time_s"] > plain["totals"]["time_s"]  # half the dense GEMMs' bandwidth: decode is slower
