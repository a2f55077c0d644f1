"""The local web server: one page and a JSON API that mirrors the CLI.

Every ``/api`` reply is the document the CLI prints with ``--json`` for the same inputs (the catalog
endpoints run the CLI's own command functions, so the two cannot drift). A user mistake is a 422 naming
the field; nothing the user sends can produce a stack trace or stop the server.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import threading
from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

import rooflm
from rooflm import cli
from rooflm.errors import InvalidInputError, RooflmError, UnknownNameError
from rooflm.specs.quant import scheme_names
from rooflm.web.schemas import AnalyzeBody, CriticalBatchBody, ExplainBody, QuantBody, SweepBody

STATIC = Path(__file__).resolve().parent / "static"
log = logging.getLogger("rooflm.web")

# ---------------------------------------------------------------- errors

_FIELD_WORDS: list[tuple[str, str]] = [
    ("unknown quantization scheme", "schemes"), ("give at least one scheme", "schemes"),
    ("unknown quantization scheme", "quant"), ("unknown kv-cache dtype", "kv_dtype"), ("unknown dtype", "kv_dtype"),
    ("unknown model", "model"), ("unknown hardware", "hardware"), ("memory efficiency", "eta_memory"),
    ("compute efficiency", "eta_compute"), ("kernel overhead", "kernel_overhead"),
    ("prompt length + gen length", "gen_len"), ("prompt length", "prompt_len"), ("hardware file", "hardware"),
]


def field_of(exc: RooflmError, fields: list[str]) -> str | None:
    """The request field a RooflmError is about, read from the start of its message (the API's messages
    name the flag first: "batch must be …", "context 9000 exceeds …", "unknown model 'x' …")."""
    if exc.field:
        # A scheme name is a `schemes` entry in a quant comparison, and the `quant` field elsewhere.
        for name in ("schemes", "quant") if exc.field == "quant" else (exc.field,):
            if name in fields:
                return name
    text = str(exc).lower().lstrip("-")
    if " has no " in text and " compute roof" in text:
        return "quant"
    for words, field in _FIELD_WORDS:
        if text.startswith(words) and field in fields:
            return field
    for field in sorted(fields, key=len, reverse=True):
        for form in {field, field.replace("_", "-"), field.replace("_", " ")}:
            if re.match(rf"{re.escape(form)}\b", text):
                return field
    if isinstance(exc, UnknownNameError):
        return None
    return "model" if "config.json" in text or ("model" in fields and "architecture" in text) else None


def _unprocessable(field: str | None, message: str, kind: str, path: str) -> JSONResponse:
    # A name in the URL (/api/models/{name}, /api/figure/{kind}) is a path parameter, the rest the body.
    in_path = field == "kind" or path.startswith(("/api/models/", "/api/hardware/"))
    loc = ["path" if in_path else "body", field] if field else ["body"]
    return JSONResponse(status_code=422, content={
        "field": field, "message": message, "detail": [{"loc": loc, "msg": message, "type": kind}]})


# ---------------------------------------------------------------- the CLI's documents


_STDOUT_LOCK = threading.Lock()


def _cli_document(command: Callable[..., Any], *args: Any) -> Any:
    """Run a CLI command with --json and return what it prints. The command's undecorated function is
    called, so a user mistake raises its RooflmError here instead of exiting."""
    raw = getattr(command, "__wrapped__", command)
    buf = io.StringIO()
    with _STDOUT_LOCK, contextlib.redirect_stdout(buf):
        raw(*args, as_json=True)
    return json.loads(buf.getvalue())


@lru_cache(maxsize=1)
def models_document() -> Any:
    return _cli_document(cli.models_list)


@lru_cache(maxsize=1)
def hardware_document() -> Any:
    return _cli_document(cli.hardware_list)


@lru_cache(maxsize=128)
def model_document(name: str) -> Any:
    return _cli_document(cli.models_show, name)


@lru_cache(maxsize=128)
def device_document(name: str) -> Any:
    return _cli_document(cli.hardware_show, name)


def _int_list(value: str | list[int] | None, flag: str) -> list[int] | None:
    if value is None or isinstance(value, list):
        return value
    return cli.parse_int_list(value, flag)


# ---------------------------------------------------------------- the app


def create_app() -> FastAPI:
    app = FastAPI(title="rooflm", version=rooflm.__version__,
                  description="Where LLM inference time goes: every operator on a roofline. The JSON API mirrors "
                              "the `rooflm` command line: same field names as its flags, same documents as `--json`.")

    @app.exception_handler(RooflmError)
    async def _user_mistake(request: Request, exc: RooflmError) -> JSONResponse:
        path = request.url.path
        return _unprocessable(field_of(exc, fields_for(path)), str(exc), type(exc).__name__, path)

    @app.exception_handler(RequestValidationError)
    async def _bad_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = jsonable_encoder(exc.errors(), custom_encoder={Exception: str})
        first = errors[0] if errors else {"loc": ["body"], "msg": "invalid request"}
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
        return JSONResponse(status_code=422, content={"field": field, "message": message, "detail": errors})

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not a user mistake: log it for the person running the server, answer without internals.
        log.exception("error serving %s %s", request.method, request.url.path)
        return JSONResponse(status_code=500, content={
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

    @app.get("/api/models/{name}", summary="rooflm models show NAME --json")
    def model(name: str) -> Any:
        return model_document(name)

    @app.get("/api/hardware", summary="rooflm hardware list --json")
    def hardware() -> Any:
        return hardware_document()

    @app.get("/api/hardware/{name}", summary="rooflm hardware show NAME --json")
    def device(name: str) -> Any:
        return device_document(name)

    @app.get("/api/schemes", summary="the quantization schemes --quant accepts")
    def schemes() -> Any:
        return {"schemes": scheme_names()}

    @app.post("/api/analyze", summary="rooflm analyze --json")
    async def analyze(body: AnalyzeBody) -> Response:
        # On the event loop, not a worker thread: one analysis takes 1–20 ms of pure Python, so threads only
        # add hand-offs and fight over the GIL (the load test: about half the p99 latency this way). The
        # endpoints that can run long (sweep, quant, explain, figures) stay plain `def`, on worker threads.
        return _json(rooflm.analyze(**body.api_kwargs()).to_json_dict())

    @app.post("/api/sweep", summary="rooflm sweep --json")
    def sweep(body: SweepBody) -> Response:
        result = rooflm.sweep(body.model_arg(), body.hardware, phase=body.phase,
                              batch=_int_list(body.batch, "batch") or [], prompt_len=_int_list(
                                  body.prompt_len, "prompt-len") or [], context=_int_list(body.context, "context"),
                              gen_len=body.gen_len, lm_head_all_tokens=body.lm_head_all_tokens, **body.common())
        return _json(result.to_json_dict())

    @app.post("/api/critical-batch", summary="rooflm critical-batch --json")
    def critical_batch(body: CriticalBatchBody) -> Response:
        return _json(rooflm.critical_batch(body.model_arg(), body.hardware, context=body.context,
                                           **body.common()).to_json_dict())

    @app.post("/api/quant", summary="rooflm quant --json")
    def quant(body: QuantBody) -> Response:
        schemes = [v.strip() for v in body.schemes.split(",")] if isinstance(body.schemes, str) else body.schemes
        comparison = rooflm.compare_quant(
            body.model_arg(), body.hardware, schemes=[s for s in schemes if s], baseline=body.baseline,
            phase=body.phase, batch=_int_list(body.batch, "batch") or [],
            prompt_len=_int_list(body.prompt_len, "prompt-len") or [], context=_int_list(body.context, "context"),
            gen_len=body.gen_len, threshold=body.threshold, **body.common())
        return _json(comparison.to_json_dict())

    @app.post("/api/explain", summary="rooflm explain --json")
    def explain(body: ExplainBody) -> Response:
        explanation = rooflm.explain(body.model_arg(), body.hardware, phase=body.phase, batch=body.batch,
                                     prompt_len=body.prompt_len, context=body.context, gen_len=body.gen_len,
                                     **body.common())
        return _json(explanation.to_json_dict())

    @app.post("/api/figure/{kind}", summary="a plotly figure (JSON) of `rooflm plot KIND`, for the page")
    def figure(kind: str, body: AnalyzeBody) -> Response:
        from rooflm.plot import KINDS, figure_data
        from rooflm.plot import interactive as figures
        from rooflm.plot.data import Query

        if kind not in KINDS:
            raise InvalidInputError(f"kind: unknown figure {kind!r}; kinds: {', '.join(KINDS)}")
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
            "/api/quant": QuantBody, "/api/explain": ExplainBody}.get(path)
    return list(body.model_fields) if body else []
