"""Fuzz the JSON API: whatever a client sends, the reply is JSON with status 200, or 422 naming the
problem in "message" and "field". Never a 500, never a stack trace, never a reply that takes long.

Two fuzzers: hypothesis over bodies built from the request schemas' own field names (with values that are
sometimes sane, sometimes pasted configs and TOML with one figure broken, sometimes anything JSON can carry),
and schemathesis over the app's OpenAPI document, which also covers the GET endpoints and path parameters.
Set ROOFLM_FUZZ_EXAMPLES=2000 for a long, randomly seeded run; CI runs a short, derandomized one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("schemathesis")

import schemathesis
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode

from rooflm.analyses import documents
from rooflm.specs.hardware import HARDWARE_DIR, hardware_names
from rooflm.specs.hf_config import MODELS_DIR
from rooflm.specs.quant import scheme_names
from rooflm.web import create_app
from rooflm.web.schemas import AnalyzeBody, CriticalBatchBody, ExplainBody, QuantBody, RegimesBody, ServingBody, SweepBody

_EXAMPLES = os.environ.get("ROOFLM_FUZZ_EXAMPLES")


def _settings(examples: int) -> settings:
    return settings(max_examples=int(_EXAMPLES or examples), deadline=None, derandomize=_EXAMPLES is None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# Generous: the slowest legitimate request (a 10,000-point sweep of DeepSeek-V3) takes under a second here.
MAX_SECONDS = 5.0
APP = create_app()
client = TestClient(APP, base_url="http://localhost", raise_server_exceptions=False)

# Every POST endpoint and the body it reads; a new endpoint fails test_every_post_endpoint_is_fuzzed.
ENDPOINTS: dict[str, type[BaseModel]] = {
    "/api/analyze": AnalyzeBody, "/api/sweep": SweepBody, "/api/critical-batch": CriticalBatchBody,
    "/api/quant": QuantBody, "/api/explain": ExplainBody, "/api/figure/roofline": AnalyzeBody,
    "/api/serving": ServingBody, "/api/regimes": RegimesBody,
}

# ---------------------------------------------------------------- values

EDGE_INTS = [0, -1, 1, 2, 8, 2**31, 2**63, 10**7 + 1, 10**400, -(10**400)]
EDGE_FLOATS = [math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, 0.0, -0.0, 0.5, 1.0, 1.5, 1e-300, 0.001, 0.000999]
MARKUP = ["[red]", "[/]", ":x:", "[link=file:///etc/passwd]a[/link]", "<script>alert(1)</script>", "\x00", "\ud800",
          "\x1b[2J", "a\nb", "\u202e", "💥", "%s", "{}", "../../etc/passwd", "/etc/passwd", "~", ".", "x" * 300,
          "é" * 400]

scalars = st.one_of(st.none(), st.booleans(), st.sampled_from(EDGE_INTS), st.integers(), st.sampled_from(EDGE_FLOATS),
                    st.floats(), st.sampled_from(MARKUP), st.text(max_size=12))


# Strategies are given named functions, not lambdas: Hypothesis describes a lambda by parsing this file's source
# (~0.1 s each time, ~0.6 s of a run), a function by its name.
def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3))


# Anything JSON can carry (and NaN/Infinity, which Python's JSON reader takes): nested objects and lists too.
anything = st.recursive(scalars, _containers, max_leaves=8)


def _casings(word: str) -> st.SearchStrategy[str]:
    return st.sampled_from([word, word.upper(), word.title(), f" {word} "])


def _cased(words: list[str]) -> st.SearchStrategy[str]:
    return st.sampled_from(words).flatmap(_casings)


def _mostly(sane: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usually a plausible value, so that many examples reach the analysis rather than the first check."""

    def sane_or_anything(pick: int) -> st.SearchStrategy[Any]:
        return anything if pick == 0 else sane

    return st.integers(0, 3).flatmap(sane_or_anything)


def _axis() -> st.SearchStrategy[Any]:
    """A sweep axis, as text in the CLI's syntax or a JSON list; small, and sometimes malformed."""
    small = st.integers(-2, 64)

    def listed(values: list[int]) -> str:
        return ",".join(map(str, values))

    def ranged(r: tuple[int, int, str]) -> str:
        return f"{r[0]}:{r[0] + r[1]}{r[2]}"

    text = st.one_of(
        st.lists(small, min_size=1, max_size=4).map(listed),
        st.tuples(small, st.integers(0, 32), st.sampled_from(["", ":1", ":3", ":0", ":x2", ":x1", ":xnan", ":x-2"]))
        .map(ranged),
        st.sampled_from(["", "1:", "8:1", "1:2:3:4", f"1:{10**400}:x2", "1:99999999999", "1:20000", "1:10000:x1.0001"]),
    )
    return st.one_of(text, st.lists(small, min_size=0, max_size=5), st.lists(st.sampled_from(EDGE_INTS), max_size=3))


def _catalog_config() -> st.SearchStrategy[Any]:
    """A catalog model's config.json with up to three keys broken or dropped, as an object or as text."""
    configs = [json.loads(p.read_text()) for p in sorted(MODELS_DIR.glob("*/config.json"))]

    def broken(config: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
        keys = sorted(config)
        edits = st.lists(st.tuples(st.sampled_from(keys), st.one_of(st.just(None), anything)), max_size=3)

        def edited(changes: list[tuple[str, Any]]) -> dict[str, Any]:
            return _edited(config, changes)

        return edits.map(edited)

    obj = st.sampled_from(configs).flatmap(broken)
    return st.one_of(obj, obj.map(json.dumps), st.sampled_from(["", "{", "[]", "null", '{"model_type": "llama"}']))


def _edited(config: dict[str, Any], changes: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(config)
    for key, value in changes:
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


NUMBER = re.compile(r"(?<== )-?[0-9][0-9.e+_-]*")
TOML_JUNK = ["nan", "inf", "-inf", "-1", "0", "1e400", "5e-324", str(10**400), '"x"', "[]", "{}", "true", "1e308",
             "", "= =", '"""', "0x10"]


def _catalog_toml() -> st.SearchStrategy[str]:
    """A catalog device's TOML with one or two of its numbers replaced by something else."""
    texts = [p.read_text() for p in sorted(HARDWARE_DIR.glob("*.toml"))]

    def broken(text: str) -> st.SearchStrategy[str]:
        spots = [m.span() for m in NUMBER.finditer(text)]
        edits = st.lists(st.tuples(st.sampled_from(spots), st.sampled_from(TOML_JUNK)), min_size=1, max_size=2,
                         unique_by=_spot)

        def replaced(changes: list[tuple[tuple[int, int], str]]) -> str:
            return _replaced(text, changes)

        return edits.map(replaced)

    return st.one_of(st.sampled_from(texts).flatmap(broken), st.sampled_from(["", "[", "name = 1", "x" * 300]))


def _spot(edit: tuple[tuple[int, int], str]) -> tuple[int, int]:
    return edit[0]


def _replaced(text: str, changes: list[tuple[tuple[int, int], str]]) -> str:
    for (start, end), junk in sorted(changes, reverse=True):
        text = text[:start] + junk + text[end:]
    return text


# A profile as `rooflm fit` writes it (rooflm.fit.profile), for the device most bodies name by default.
PROFILE = "".join(f'[devices."h100-sxm".parameters.{name}]\nvalue = {value}\ncatalog = {value}\nstderr = 0.01\n'
                  f"fitted = true\n" for name, value in [("eta_memory", 0.7), ("eta_compute", 0.6),
                                                         ("kernel_overhead", 3e-6), ("step_overhead", 2e-4)])


def _profile_toml() -> st.SearchStrategy[str]:
    """A profile with one or two of its numbers replaced by something else, or a path, or not TOML at all."""
    spots = [m.span() for m in NUMBER.finditer(PROFILE)]
    edits = st.lists(st.tuples(st.sampled_from(spots), st.sampled_from(TOML_JUNK)), min_size=1, max_size=2,
                     unique_by=_spot)

    def replaced(changes: list[tuple[tuple[int, int], str]]) -> str:
        return _replaced(PROFILE, changes)

    return st.one_of(st.just(PROFILE), edits.map(replaced),
                     st.sampled_from(["", "[devices", "devices = 1", "/etc/passwd", "x" * 300]))


INT = _mostly(st.one_of(st.sampled_from(EDGE_INTS), st.integers(1, 70_000)))
FLOAT = _mostly(st.one_of(st.none(), st.sampled_from(EDGE_FLOATS), st.floats(0, 1), st.floats()))
NAME_LISTS = {"quant": [*scheme_names(), "fp8+kv-fp8"], "kv_dtype": ["bf16", "fp16", "fp8", "int8", "int4"],
              "efficiency": ["ideal", "calibrated"], "comm_algorithm": ["auto", "ring", "tree"],
              "mla_decode": ["absorbed", "naive"], "phase": ["prefill", "decode", "e2e"],
              "model": [name for name, _ in documents.catalog_models()], "hardware": [*hardware_names(), "h100"]}
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    **{name: _mostly(_cased(words)) for name, words in NAME_LISTS.items()},
    "baseline": _mostly(_cased(NAME_LISTS["quant"])),
    "schemes": _mostly(st.one_of(st.lists(_cased(NAME_LISTS["quant"]), min_size=1, max_size=3).map(",".join),
                                 st.lists(_cased(NAME_LISTS["quant"]), max_size=4))),
    "config": _mostly(_catalog_config()), "hardware_toml": _mostly(_catalog_toml()),
    "profile_toml": _mostly(st.one_of(st.none(), _profile_toml())),
    **dict.fromkeys(["batch", "prompt_len", "context", "gen_len", "tp", "ep", "pp", "dp",
                     "max_num_batched_tokens", "small_prefill", "moe_batch"], INT),
    **dict.fromkeys(["eta_memory", "eta_compute", "kernel_overhead", "hot_expert_factor", "hot_expert_fraction",
                     "dequant_ops", "kv_dequant_ops", "threshold", "comm_overlap", "step_overhead",
                     "gpu_memory_utilization"], FLOAT),
    **dict.fromkeys(["act_quant", "lm_head_all_tokens", "cuda_graphs"], _mostly(st.one_of(st.none(), st.booleans()))),
    # speculative decoding: k, its acceptance (one rate or one per position) and the draft (a catalog model or mtp)
    "spec_tokens": _mostly(st.one_of(st.sampled_from([0, 1, 3]), st.integers(-2, 100))),
    "acceptance": _mostly(st.one_of(st.none(), st.sampled_from(["0.8", "0.8,0.6,0.4", "1", "0", "x", ",", "nan"]))),
    "draft": _mostly(st.one_of(st.none(), _cased(["mtp", "qwen3-8b", "llama-3.1-8b", "/etc/passwd", "x"]))),
    # rooflm serving
    "concurrency": _mostly(st.one_of(st.none(), _axis())), "request_rate": _mostly(st.one_of(
        st.none(), st.lists(st.sampled_from(EDGE_FLOATS), min_size=1, max_size=4), st.sampled_from(["1,2.5", "x", ""]))),
    "method": _mostly(_cased(["simulate", "steady", "exact"])),
    "view": _mostly(_cased(["steady", "benchmark", "bench"])),
    "disaggregate": _mostly(st.one_of(st.none(), _cased(["1P:1D", "1p:3d", "0P:1D", "1P:999D", "abc", ""]))),
    "kv_link": _mostly(st.one_of(st.none(), _cased(["inter_node", "intra_node", "fiber"]))),
    "engine": _mostly(st.one_of(st.none(), _cased(["vllm", "trtllm", "sglang", "vllm@0.24", "sglang@9", "tgi", "@1",
                                                   ""]))),
    "emit": _mostly(st.one_of(st.none(), _cased(["vllm", "sglang", "trtllm", "tensorrt"]))),
    **dict.fromkeys(["requests", "seed", "max_running", "max_tokens_per_step", "kv_blocks"], INT),
}
AXES = {"batch", "prompt_len", "context"}


def _field(body: type[BaseModel], name: str) -> st.SearchStrategy[Any]:
    if body in (SweepBody, QuantBody) and name in AXES:
        return _mostly(_axis())
    return FIELD_VALUES[name]


def bodies(body: type[BaseModel]) -> st.SearchStrategy[Any]:
    """Objects with some of the schema's fields (and now and then one it does not have), or now and then not an
    object at all. "config" without "model" and "hardware_toml" without "hardware" most of the time, so that the
    pasted documents get read."""
    fields = {name: _field(body, name) for name in body.model_fields}
    obj = st.fixed_dictionaries({}, optional=fields)
    extra = st.dictionaries(st.one_of(st.sampled_from(["bacth", "Batch", "model ", "", "__proto__"]), st.text()),
                            anything, min_size=1, max_size=1)

    def merged(parts: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
        return {**parts[0], **parts[1]}

    with_extra = st.tuples(obj, extra).map(merged)

    def shape(pick: int) -> st.SearchStrategy[Any]:
        return anything if pick == 0 else with_extra if pick == 1 else obj

    return st.integers(0, 9).flatmap(shape)


# ---------------------------------------------------------------- the contract


class _Kept(logging.Handler):
    """The server's log of a 500 (its traceback), shown when a test fails."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


KEPT = _Kept()


@pytest.fixture(scope="module", autouse=True)
def _keep_server_log() -> Iterator[None]:
    logger = logging.getLogger("rooflm.web")
    logger.addHandler(KEPT)
    yield
    logger.removeHandler(KEPT)


def check_reply(what: str, status: int, text: str, seconds: float, allowed: tuple[int, ...] = (200, 422)) -> None:
    shown = f"{what}\n-> {status} in {seconds:.2f} s: {text[:1500]}"
    if status == 500 and KEPT.records:
        shown += "\nserver log:\n" + KEPT.records[-1][-3000:]
    assert status in allowed, shown
    assert "Traceback" not in text and 'File "' not in text, shown
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in a reply\n{shown}"))
    if status != 200:
        assert isinstance(doc, dict) and {"message", "field"} <= set(doc), shown
        assert isinstance(doc["message"], str) and doc["message"], shown
    assert seconds < MAX_SECONDS, shown


def post(path: str, content: bytes, content_type: str = "application/json") -> None:
    start = time.perf_counter()
    reply = client.post(path, content=content, headers={"content-type": content_type})
    check_reply(f"POST {path} {content[:3000]!r}", reply.status_code, reply.text, time.perf_counter() - start)


def _encoded(body: Any) -> bytes:
    # json.dumps writes NaN and Infinity (Python's reader takes them) and escapes lone surrogates: both reach the API.
    return json.dumps(body).encode()


def test_every_post_endpoint_is_fuzzed() -> None:
    posts = {r.path for r in APP.routes if isinstance(r, APIRoute) and "POST" in r.methods}
    fuzzed = {re.sub(r"/roofline$", "/{kind}", path) for path in ENDPOINTS}
    assert posts == fuzzed
    for path, body in ENDPOINTS.items():
        assert set(body.model_fields) <= set(FIELD_VALUES), f"{path}: no fuzz values for some fields"


@pytest.mark.parametrize("path", [p for p in ENDPOINTS if "figure" not in p])
@_settings(15)
@given(data=st.data())
def test_any_body_gets_a_json_answer(path: str, data: st.DataObject) -> None:
    post(path, _encoded(data.draw(bodies(ENDPOINTS[path]), label="body")))


@_settings(4)  # a figure takes a few hundred milliseconds
@given(body=bodies(AnalyzeBody))
def test_any_figure_body_gets_a_json_answer(body: Any) -> None:
    post("/api/figure/roofline", _encoded(body))


@pytest.mark.parametrize(("path", "content"), [
    ("/api/analyze", b'{"batch": NaN}'),
    ("/api/analyze", b'{"batch": -Infinity}'),
    ("/api/analyze", b'{"batch": 1e400}'),
    ("/api/sweep", b'{"batch": [NaN, 1e400]}'),
    ("/api/quant", b'{"schemes": [NaN]}'),
    ("/api/analyze", b'{"model": "\\ud800"}'),
    ("/api/analyze", b'{"\\udfff": 1}'),
    ("/api/analyze", b'"\\ud800"'),
    ("/api/analyze", b'{"batch": ' + b"9" * 5000 + b"}"),
    ("/api/analyze", b"\xff\xfe{"),
    ("/api/analyze", b'{"model": "\xff"}'),
    ("/api/analyze", b'{"model": "llama-3.1-8b", "model": 1}'),
    ("/api/analyze", b"[" * 100_000),
    ("/api/analyze", b""),
    ("/api/figure/roofline", b'{"batch": NaN}'),
], ids=lambda v: repr(v)[:40])
def test_raw_bodies_json_cannot_describe(path: str, content: bytes) -> None:
    """Bodies a JSON encoder would not write: NaN, numbers past a float or past Python's 4,300-digit limit,
    lone surrogates, bytes that are not UTF-8."""
    post(path, content)


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("body", [{"eta_compute": 5e-324}, {"eta_memory": 5e-324}], ids=repr)
def test_known_edges(path: str, body: dict[str, Any]) -> None:
    """Found by the fuzzer: an efficiency so small (a subnormal float) that times overflow to inf."""
    post(path, _encoded({**body, "batch": "1,8"} if ENDPOINTS[path] in (SweepBody, QuantBody) else body))


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/api/nothing", 404), ("GET", "/static/nothing.js", 404), ("DELETE", "/api/analyze", 405),
    ("TRACE", "/api/models", 405), ("GET", "/api/analyze", 405),
])
def test_unknown_paths_and_methods_answer_in_the_api_shape(method: str, path: str, status: int) -> None:
    start = time.perf_counter()
    reply = client.request(method, path)
    check_reply(f"{method} {path}", reply.status_code, reply.text, time.perf_counter() - start, allowed=(status,))


@pytest.mark.parametrize("path", ["/api/models/%0A0", "/api/hardware/a%0D%0Ab", "/api/hardware/x%0A"])
def test_a_name_with_a_newline_is_an_unknown_name(path: str) -> None:
    """Found by schemathesis: a newline in a catalog name matched no route (404) instead of naming the field."""
    reply = client.get(path)
    check_reply(f"GET {path}", reply.status_code, reply.text, 0.0, allowed=(422,))
    assert reply.json()["field"] in ("model", "hardware") and "\\n" in reply.json()["message"]


def test_a_body_that_is_not_json_typed() -> None:
    post("/api/analyze", b"batch=1", "application/x-www-form-urlencoded")
    post("/api/analyze", b'{"batch": NaN}', "text/plain")


def _asgi_post(headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[int, str]:
    """One POST straight into the app, with header bytes exactly as given (a test client re-encodes them)."""
    sent: list[dict[str, Any]] = []
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/analyze", "raw_path": b"/api/analyze", "root_path": "", "query_string": b"",
             "headers": [(b"host", b"localhost"), (b"content-type", b"application/json"), *headers],
             "client": ("127.0.0.1", 1), "server": ("localhost", 80)}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(APP(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body").decode()


@pytest.mark.parametrize("length", ["²".encode("latin-1"), b"-1", b"1e3", b"", b" 2", b"\xff"], ids=repr)
def test_odd_content_length(length: bytes) -> None:
    """A Content-Length that only looks like a number ('²'.isdigit() is true; int('²') fails)."""
    start = time.perf_counter()
    status, text = _asgi_post([(b"content-length", length)], b"{}")
    check_reply(f"Content-Length {length!r}", status, text, time.perf_counter() - start)


# ---------------------------------------------------------------- schemathesis


def _schema() -> Any:
    config = SchemathesisConfig()
    project = config.projects.default
    project.update(base_url="http://localhost")
    project.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                              max_examples=int(_EXAMPLES or 6), deterministic=_EXAMPLES is None)
    if _EXAMPLES is None:
        # The short run's coverage phase sends only the schema-breaking boundary values (a field one past its
        # bound, a wrong type, a missing field): every one must get a 422 naming the field. The valid boundary
        # values (each field at its bound: ~940 requests that each do real work, a third of this file's time) run in
        # the long run; the short run meets valid values through the fuzzing phase and the body fuzzer above.
        project.phases.coverage.generation = type(project.generation)(modes=[GenerationMode.NEGATIVE])
    return schemathesis.openapi.from_asgi("/openapi.json", APP, config=config, headers={"Host": "localhost"})


schema = _schema()


@schema.parametrize()
@_settings(6)
def test_openapi_operations(case: Any) -> None:
    start = time.perf_counter()
    response = case.call(headers={"Host": "localhost"})
    # Negative testing also tries methods the path does not have: 405 (the error shape is checked all the same).
    undeclared = case.method.upper() != case.operation.method.upper()
    check_reply(f"{case.method} {case.formatted_path} {str(case.body)[:3000]}", response.status_code, response.text,
                time.perf_counter() - start, allowed=(405,) if undeclared else (200, 422))
