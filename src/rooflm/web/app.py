"""The local web server: one page and a JSON API that mirrors the CLI.

Every ``/api`` reply is the document the CLI prints with ``--json`` for the same inputs (both call the same
document functions, so the two cannot drift). A user mistake is a 422 naming the field; nothing the user
sends can produce a stack trace or stop the server. The server opens no file a request names: a model is
a catalog name or a pasted config.json, a device a catalog name or a pasted TOML, a `rooflm fit` profile a
pasted TOML. Every request is bounded: its body, the points it asks for, and how many evaluations run at once.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar, cast

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException

import rooflm
from rooflm.analyses import documents
from rooflm.analyses.axes import count_int_list, parse_int_list
from rooflm.core.inputs import Deployment
from rooflm.errors import InvalidInputError, RooflmError, quoted
from rooflm.serving import launch as engine_launch
from rooflm.specs.hardware import catalog_hardware
from rooflm.specs.hf_config import catalog_model
from rooflm.specs.quant import scheme_names
from rooflm.web.guards import LOOPBACK_HOSTS, MAX_BODY_BYTES, RequestGuard
from rooflm.web.schemas import (
    MAX_API_POINTS,
    AnalyzeBody,
    CriticalBatchBody,
    ExplainBody,
    QuantBody,
    RegimesBody,
    ServingBody,
    SweepBody,
    body_field,
)
from rooflm.web.serving_limits import check_simulation, serving_loads

STATIC = Path(__file__).resolve().parent / "static"
log = logging.getLogger("rooflm.web")
T = TypeVar("T")

# ---------------------------------------------------------------- errors


def field_of(exc: RooflmError, fields: list[str]) -> str | None:
    """The request field a RooflmError is about: the one it names, if the request has it."""
    if exc.field is None:
        return None
    # A scheme name is a `schemes` entry in a quant comparison and the `quant` field elsewhere; a flag is
    # spelt with dashes in messages (prompt-len) and underscores in bodies.
    # A profile's own errors (a device it does not cover) are about the pasted profile_toml.
    for name in ("schemes" if exc.field == "quant" else "", "profile_toml" if exc.field == "profile" else "",
                 exc.field, body_field(exc.field), exc.field.replace("-", "_")):
        if name in fields:
            return name
    return None


def _unprocessable(field: str | None, message: str, kind: str, path: str) -> JSONResponse:
    # A name in the URL (/api/models/{name}, /api/figure/{kind}) is a path parameter, the rest the body.
    in_path = field == "kind" or path.startswith(("/api/models/", "/api/hardware/"))
    loc = ["path" if in_path else "body", field] if field else ["body"]
    return JSONResponse(status_code=422, content=_plain({
        "field": field, "message": message, "detail": [{"loc": loc, "msg": message, "type": kind}]}))


def _plain(value: Any) -> Any:
    """``value`` as strict JSON in UTF-8 can carry it. An error echoes what the client sent, and Python's JSON reader
    takes NaN, Infinity, 1e400 and lone surrogates ("\\ud800"), which the reply could not encode: a non-finite
    number becomes its repr, a lone surrogate its escape."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _short(value: Any) -> Any:
    """A validation error's echo of the input, cut so that a 1 MB field is not sent back whole."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value if len(str(value)) <= 100 else quoted(value, 100)
    return quoted(value, 100)


class _AnyText(Convertor[str]):
    """A path parameter that is any text. Starlette's ``path`` (regex ``.*``) stops at a newline, so a name with one
    ('/api/models/a%0Ab') matched no route and got a 404 instead of the 422 that names an unknown model."""

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anytext", _AnyText())


# ---------------------------------------------------------------- the catalog's documents


@lru_cache(maxsize=1)
def models_document() -> Any:
    return documents.models_document()


@lru_cache(maxsize=1)
def hardware_document() -> Any:
    return documents.hardware_list_document()


@lru_cache(maxsize=128)
def model_document(name: str) -> Any:
    return documents.model_document(catalog_model(name))


@lru_cache(maxsize=128)
def device_document(name: str) -> Any:
    return documents.hardware_document(catalog_hardware(name))


# ---------------------------------------------------------------- bounded work


def _axis(value: str | list[int] | None, flag: str) -> list[int] | None:
    if value is None or isinstance(value, list):
        return value
    return parse_int_list(value, flag, max_values=MAX_API_POINTS)


def _axis_size(value: str | list[int] | None, flag: str) -> int:
    if value is None:
        return 1
    return len(value) if isinstance(value, list) else count_int_list(value, flag)


def check_points(field: str, *axes: tuple[str | list[int] | None, str], factor: int = 1) -> None:
    """Refuse, before any work, a request whose points (an upper bound: the product of its axes) pass the API's
    limit; the CLI streams sweeps of any size."""
    points = factor
    for value, flag in axes:
        points *= _axis_size(value, flag)
    if points > MAX_API_POINTS:
        raise InvalidInputError(f"{field}: the request has up to {points:,} points; the API evaluates at most "
                                f"{MAX_API_POINTS:,} per request (`rooflm sweep` streams larger ones)", field=field)


class ComputeSlots:
    """At most ``n`` evaluations at once: each holds its arrays and its reply in memory, so the number running
    bounds the server's memory. Others wait their turn on their worker thread, off the event loop."""

    def __init__(self, n: int) -> None:
        self._slots = threading.BoundedSemaphore(n)

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._slots:
            yield

    def run(self, work: Callable[[], T]) -> T:
        with self.held():
            return work()


# ---------------------------------------------------------------- the app


def create_app(allowed_hosts: frozenset[str] | set[str] = LOOPBACK_HOSTS, max_body: int = MAX_BODY_BYTES,
               concurrent_evaluations: int = 4) -> FastAPI:
    """The page and the API. ``allowed_hosts``: the Host names answered (loopback by default; ``"*"`` any)."""
    app = FastAPI(title="rooflm", version=rooflm.__version__,
                  description="Where LLM inference time goes: every operator on a roofline. The JSON API mirrors "
                              "the `rooflm` command line: same field names as its flags, same documents as `--json`.")
    app.add_middleware(RequestGuard, allowed_hosts=frozenset(allowed_hosts), max_body=max_body)
    slots = ComputeSlots(concurrent_evaluations)

    @app.exception_handler(RooflmError)
    async def _user_mistake(request: Request, exc: RooflmError) -> JSONResponse:
        path = request.url.path
        return _unprocessable(field_of(exc, fields_for(path)), exc.spelled(body_field), type(exc).__name__, path)

    @app.exception_handler(RequestValidationError)
    async def _bad_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = jsonable_encoder(exc.errors(), custom_encoder={Exception: str})
        for error in errors:
            error["loc"] = [_short(p) for p in error.get("loc", [])]
            if "input" in error:
                error["input"] = _short(error["input"])
        first: dict[str, Any] = errors[0] if errors else {"loc": ["body"], "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", []) if p != "body"]
        field = loc[0] if loc and first.get("type") != "json_invalid" else None
        if first.get("type") == "json_invalid":
            message = f"the request body is not valid JSON ({first.get('ctx', {}).get('error', 'decode error')})"
        elif not loc:
            message = ("send a JSON object of inputs named like the CLI's flags, e.g. "
                       '{"model": "llama-3.1-8b", "batch": 8}')
        else:
            # loc continues past the field for unions (config: object or text); the field is what users know.
            message = f"{field}: {first.get('msg')}"
        return JSONResponse(status_code=422, content=_plain({"field": field, "message": message, "detail": errors}))

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        # A path or method the API does not have (404, 405): the usual status, with the API's error shape.
        message = f"{request.method} {quoted(request.url.path, 100)}: {exc.detail}"
        return JSONResponse(status_code=exc.status_code, headers=exc.headers, content={
            "field": None, "message": message, "detail": [{"loc": ["path"], "msg": message, "type": "http"}]})

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not a user mistake: log it for the person running the server, answer without internals. The
        # server drops the connection after a 500: say so, so that a keep-alive client opens a new one.
        log.exception("error serving %s %s", request.method, request.url.path)
        return JSONResponse(status_code=500, headers={"Connection": "close"}, content={
            "field": None, "message": f"internal error ({type(exc).__name__}); the server log has the details"})

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)  # browsers ask; answering keeps their consoles free of 404s

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_js() -> Response:
        # plotly.js from the installed plotly package: the page works offline and needs no CDN.
        path = resources.files("plotly") / "package_data" / "plotly.min.js"
        return Response(path.read_bytes(), media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/models", summary="rooflm models list --json")
    def models() -> Any:
        return models_document()

    @app.get("/api/models/{name:anytext}", summary="rooflm models show NAME --json (catalog models only)")
    def model(name: str) -> Any:
        return model_document(name[:200])

    @app.get("/api/hardware", summary="rooflm hardware list --json")
    def hardware() -> Any:
        return hardware_document()

    @app.get("/api/hardware/{name:anytext}", summary="rooflm hardware show NAME --json (catalog devices only)")
    def device(name: str) -> Any:
        return device_document(name[:200])

    @app.get("/api/schemes", summary="the quantization schemes --quant accepts")
    def schemes() -> Any:
        return {"schemes": scheme_names()}

    # Every evaluation runs on a worker thread (plain `def`), so a slow one never holds up the event loop and
    # the other clients; ComputeSlots bounds how many run at once.
    @app.post("/api/analyze", summary="rooflm analyze --json")
    def analyze(body: AnalyzeBody) -> Response:
        return slots.run(lambda: _json(rooflm.analyze(**body.api_kwargs()).to_json_dict()))

    @app.post("/api/sweep", summary="rooflm sweep --json (at most MAX_API_POINTS points)")
    def sweep(body: SweepBody) -> Response:
        check_points("batch", (body.batch, "batch"), (body.prompt_len, "prompt-len"), (body.context, "context"))
        model, device = body.model_arg(), body.hardware_arg()
        with slots.held():
            result = rooflm.sweep(model, device, phase=body.phase, batch=_axis(body.batch, "batch") or [],
                                  prompt_len=_axis(body.prompt_len, "prompt-len") or [],
                                  context=_axis(body.context, "context"), gen_len=body.gen_len,
                                  lm_head_all_tokens=body.lm_head_all_tokens, **body.common())
            return _json(result.to_json_dict())

    @app.post("/api/critical-batch", summary="rooflm critical-batch --json")
    def critical_batch(body: CriticalBatchBody) -> Response:
        model, device = body.model_arg(), body.hardware_arg()
        return slots.run(lambda: _json(rooflm.critical_batch(model, device, context=body.context,
                                                             **body.common()).to_json_dict()))

    @app.post("/api/quant", summary="rooflm quant --json (at most MAX_API_POINTS points × schemes)")
    def quant(body: QuantBody) -> Response:
        schemes = [v.strip() for v in body.schemes.split(",")] if isinstance(body.schemes, str) else body.schemes
        schemes = [s for s in schemes if s]
        check_points("batch", (body.batch, "batch"), (body.prompt_len, "prompt-len"), (body.context, "context"),
                     factor=max(1, len(schemes)))
        model, device = body.model_arg(), body.hardware_arg()
        with slots.held():
            comparison = rooflm.compare_quant(
                model, device, schemes=schemes, baseline=body.baseline, phase=body.phase,
                batch=_axis(body.batch, "batch") or [], prompt_len=_axis(body.prompt_len, "prompt-len") or [],
                context=_axis(body.context, "context"), gen_len=body.gen_len, threshold=body.threshold,
                **body.common())
            return _json(comparison.to_json_dict())

    @app.post("/api/explain", summary="rooflm explain --json")
    def explain(body: ExplainBody) -> Response:
        model, device = body.model_arg(), body.hardware_arg()
        return slots.run(lambda: _json(rooflm.explain(
            model, device, phase=body.phase, batch=body.batch, prompt_len=body.prompt_len, context=body.context,
            gen_len=body.gen_len, **body.common()).to_json_dict()))

    @app.post("/api/regimes", summary="rooflm regimes --json")
    def regimes(body: RegimesBody) -> Response:
        model, device = body.model_arg(), body.hardware_arg()
        return slots.run(lambda: _json(rooflm.regimes(
            model, device, context=body.context, small_prefill=body.small_prefill, moe_batch=body.moe_batch,
            **body.common()).to_json_dict()))

    @app.post("/api/serving", summary="rooflm serving --json (simulations bounded: web/serving_limits.py)")
    def serving(body: ServingBody) -> Response:
        concurrency, rates = serving_loads(body)
        model, device = body.model_arg(), body.hardware_arg()
        engine = None if body.emit is None else engine_launch.check_engine(body.emit)
        check_simulation(body, concurrency, rates, model)
        with slots.held():
            result = rooflm.serve_traffic(
                model, device, prompt_len=body.prompt_len, gen_len=body.gen_len, concurrency=concurrency,
                request_rate=rates, method=body.method, view=body.view, requests=body.requests, seed=body.seed,
                max_running=body.max_running, max_tokens_per_step=body.max_tokens_per_step, kv_blocks=body.kv_blocks,
                disaggregate=body.disaggregate, kv_link=body.kv_link, **body.common())
            doc = result.to_json_dict()
            if engine is not None:
                doc["launch"] = engine_launch.launch(engine, engine_launch.config(
                    model, prompt_len=body.prompt_len, gen_len=body.gen_len, concurrency=concurrency,
                    request_rate=rates, max_running=body.max_running, max_tokens_per_step=body.max_tokens_per_step,
                    disaggregate=body.disaggregate, deployment=cast(Deployment, body.common()))).to_json_dict()
            return _json(doc)

    @app.post("/api/figure/{kind}", summary="a plotly figure (JSON) of `rooflm plot KIND`, for the page")
    def figure(kind: str, body: AnalyzeBody) -> Response:
        from rooflm.plot import KINDS, figure_data
        from rooflm.plot import interactive as figures
        from rooflm.plot.data import Query

        if kind not in KINDS:
            raise InvalidInputError(f"kind: unknown figure {quoted(kind)}; kinds: {', '.join(KINDS)}", field="kind")
        if kind == "serving":  # its traffic and simulation bounds are /api/serving's body, not an analysis body
            raise InvalidInputError("kind: the serving figure is not drawn here; POST /api/serving gives its points",
                                    field="kind")
        with slots.held():
            fig = getattr(figures, kind)(figure_data(kind, Query.of(**body.api_kwargs())))
            fig.update_layout(uirevision=kind)  # keep the user's zoom across updates
            return Response(fig.to_json(), media_type="application/json")

    return app


def _json(doc: object) -> Response:
    """The document as the CLI prints it (json.dumps, NaN refused), without FastAPI's generic encoder."""
    return Response(json.dumps(doc, allow_nan=False), media_type="application/json")


def fields_for(path: str) -> list[str]:
    """The fields a request to ``path`` may carry, so that an error can name the one it is about."""
    if path.startswith("/api/models/"):
        return ["model"]
    if path.startswith("/api/hardware/"):
        return ["hardware"]
    if path.startswith("/api/figure/"):
        return ["kind", *AnalyzeBody.model_fields]
    body = {"/api/analyze": AnalyzeBody, "/api/sweep": SweepBody, "/api/critical-batch": CriticalBatchBody,
            "/api/quant": QuantBody, "/api/explain": ExplainBody, "/api/serving": ServingBody,
            "/api/regimes": RegimesBody}.get(path)
    return list(body.model_fields) if body else []
