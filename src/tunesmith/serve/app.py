"""The FastAPI app: routes, keys, body limits, and the path every chat request takes.

`create_app(config)` builds the app; its lifespan starts the engine and the request-log
writer and stops both. A chat request, whichever API it came in on, goes:
read the body (413 over the limit, 400 if not JSON) -> parse it into a ChatCall (400) ->
find the model (404) -> queue it on the engine, or forward it to a Vertex AI endpoint for a
proxied model (proxy.py) -> answer whole or stream the deltas ->
log it and count it. Every refusal is answered in the caller's API's error shape, and
the server keeps serving.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

# This module is imported only when a server is built, so FastAPI loads here, at the top:
# FastAPI reads the route functions' annotations by name from the module's globals.
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.responses import Response

from ..errors import TunesmithError
from . import gemini_api, openai_api
from .auth import OPEN_PATHS, check_key
from .chat import ChatCall, Limits
from .engine import Engine, Generation, Result
from .errors import ApiError, api_of_path, error_body
from .log import RequestLog
from .metrics import LATENCY_BUCKETS_S, Metrics
from .models import ModelPool, ServedModel
from .proxy import Proxy

if TYPE_CHECKING:
    from .config import ServeConfig

CLIENT_CLOSED = 499  # nginx's status for a client that went away before the answer ended


@dataclass
class ServerState:
    config: ServeConfig
    models: list[ServedModel]
    by_name: dict[str, ServedModel]
    engine: Engine
    proxy: Proxy
    log: RequestLog
    metrics: Metrics
    api_key: str | None

    def lookup(self, name: str) -> ServedModel:
        if name not in self.by_name:
            served = ", ".join(m.name for m in self.models)
            raise ApiError(404, f"the model {name!r} is not served here (served: {served})", param="model",
                           code="model_not_found")
        return self.by_name[name]


def create_app(config: ServeConfig, models: list[ServedModel] | None = None) -> FastAPI:
    """The app serving `models` (default: `config.models`, resolved against the registry)."""
    from .models import resolve_models

    if models is None:
        models, _ = resolve_models(config.models)
    metrics = Metrics()
    pool = ModelPool(config.max_adapters, config.memory_budget_gb, config.device, config.dtype, metrics,
                     weights=config.weights)
    state = ServerState(
        config=config, models=models, by_name={n: m for m in models for n in m.names},
        engine=Engine(pool, batch_wait_ms=config.batch_wait_ms, max_batch_size=config.max_batch_size, metrics=metrics,
                      threads=config.threads),
        proxy=Proxy(), log=RequestLog(log_text=config.log_requests), metrics=metrics, api_key=config.resolved_api_key(),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.log.start()
        state.engine.start()
        try:
            yield
        finally:
            state.proxy.stop()
            state.engine.stop()
            state.log.stop()

    app = FastAPI(title="tunesmith", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.tunesmith = state

    @app.middleware("http")
    async def require_key(request: Request, call_next: Any) -> Response:
        if state.api_key and request.url.path not in OPEN_PATHS:
            try:
                check_key(state.api_key, request.headers, request.query_params)
            except ApiError as exc:
                api = api_of_path(request.url.path)
                state.log.record(api=api, model="", status_code=401, latency_s=0.0, error=exc.message)
                _count(state, api, "", 401)
                return JSONResponse(error_body(api, exc), status_code=401)
        return await call_next(request)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "models": [m.name for m in state.models]}

    @app.get("/metrics")
    async def metrics_text() -> PlainTextResponse:
        return PlainTextResponse(state.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        return openai_api.model_list(state.models)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await _chat(state, request, openai_api)

    # Gemini's paths put a colon inside the last segment: models/NAME:generateContent. The
    # API version is v1beta in Google's REST docs and v1 in google-genai 3's default.
    @app.post("/v1beta/models/{model_and_method:path}")
    @app.post("/v1/models/{model_and_method:path}")
    async def gemini(model_and_method: str, request: Request) -> Response:
        model, _, method = model_and_method.rpartition(":")
        if method not in ("generateContent", "streamGenerateContent") or not model:
            error = ApiError(404, f"unknown method {method!r}: use generateContent or streamGenerateContent")
            return JSONResponse(error_body("gemini", error), status_code=404)
        streaming = method == "streamGenerateContent"
        sse = streaming and request.query_params.get("alt") == "sse"
        return await _chat(state, request, gemini_api, path_model=model, sse=sse, array=streaming and not sse)

    return app


async def _chat(state: ServerState, request: Request, api: ModuleType, path_model: str | None = None,
                sse: bool | None = None, array: bool = False) -> Response:
    """One chat request, from body to response. `sse`: stream (None: as the body says);
    `array`: answer whole, as a one-element JSON array (Gemini's stream without alt=sse)."""
    started = time.monotonic()
    call: ChatCall | None = None
    served: ServedModel | None = None
    request_id = f"{'chatcmpl' if api is openai_api else 'resp'}-{secrets.token_hex(12)}"
    try:
        body = await _read_json(request, state.config.max_body_bytes)
        call = api.parse(body, Limits(state.config.default_max_tokens, state.config.max_tokens_cap), path_model)
        served = state.lookup(call.model)
        streaming = sse if sse is not None else call.stream
        if served.remote is not None:
            generation = state.proxy.submit(served.remote, call.system, call.turns, call.sampling, streaming)
        else:
            generation = state.engine.submit(served, call.system, call.turns, call.sampling)
        first = await _first_event(generation)  # an error before the first token still gets its status
        if streaming:
            return StreamingResponse(_stream(state, api, call, served, generation, first, started, request_id),
                                     media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        result = first if isinstance(first, Result) else await generation.result()
        _done(state, api, call, served, started, result)
        answer = api.response(call, result, request_id)
        return JSONResponse([answer] if array else answer)
    except ApiError as exc:
        _done(state, api, call, served, started, None, exc)
        return JSONResponse(error_body(api.API, exc), status_code=exc.status)


async def _first_event(generation: Generation) -> str | Result:
    kind, value = await generation.next_event()
    if kind == "error":
        raise _as_api_error(value)
    return value


async def _stream(state: ServerState, api: ModuleType, call: ChatCall, served: ServedModel, generation: Generation,
                  first: str | Result, started: float, request_id: str) -> AsyncIterator[bytes]:
    result: Result | None = None
    logged = False
    try:
        yield api.stream_start(call, request_id)
        item = first
        while True:
            if isinstance(item, Result):
                result = item
                yield api.stream_end(call, item, request_id)
                break
            yield api.stream_delta(call, item, request_id)
            kind, item = await generation.next_event()
            if kind == "error":
                raise _as_api_error(item)
        _done(state, api, call, served, started, result)
        logged = True
    except ApiError as exc:  # the status line is sent already: report it in the stream
        _done(state, api, call, served, started, None, exc)
        logged = True
        yield api.stream_error(exc)
    finally:
        if result is None:  # the client left (or the engine failed): stop generating for it
            generation.cancelled = True
        if not logged:
            _done(state, api, call, served, started, None, ApiError(CLIENT_CLOSED, "the client closed the stream"))


def _as_api_error(exc: BaseException) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    message = exc.message if isinstance(exc, TunesmithError) else f"{type(exc).__name__}: {exc}"
    return ApiError(500, f"generation failed: {message}")


async def _read_json(request: Request, limit: int) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the request body is over this server's limit of {limit:,} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the request body is over this server's limit of {limit:,} bytes")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


def _done(state: ServerState, api: ModuleType, call: ChatCall | None, served: ServedModel | None, started: float,
          result: Result | None, error: ApiError | None = None) -> None:
    """Log and count a finished request, answered (`result`) or refused (`error`)."""
    latency_s = time.monotonic() - started
    status = error.status if error else 200
    state.log.record(
        api=api.API, model=call.model if call else "", model_id=served.model_id if served else None, status_code=status,
        latency_s=latency_s, prompt_tokens=result.prompt_tokens if result else None,
        completion_tokens=result.completion_tokens if result else None,
        system=call.system if call else None, turns=call.turns if call else None,
        output=result.text if result else None, error=error.message if error else None,
    )
    model = served.name if served else ""  # metric labels: served names only, never what a client made up
    _count(state, api.API, model, status)
    if result is not None:
        state.metrics.observe("tunesmith_request_latency_seconds", "Time from request to last token.", latency_s,
                              LATENCY_BUCKETS_S, api=api.API, model=model)
        state.metrics.inc("tunesmith_prompt_tokens_total", "Prompt tokens read.", result.prompt_tokens, model=model)


def _count(state: ServerState, api: str, model: str, status: int) -> None:
    state.metrics.inc("tunesmith_requests_total", "Requests by API, model and HTTP status.", api=api, model=model,
                      status=str(status))
