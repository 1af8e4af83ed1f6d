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

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

# This module is imported only when a server is built, so FastAPI loads here, at the top:
# FastAPI reads the route functions' annotations by name from the module's globals.
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.responses import Response

from ..errors import TunesmithError
from ..models.llama_server import choose_engine, find_llama_server
from . import gemini_api, openai_api
from .auth import OPEN_PATHS, check_key
from .chat import ChatCall, Limits
from .deployments import DeploymentRouter, Route
from .engine import Engine, Generation, Result, Skipped
from .errors import ApiError, api_of_path, error_body
from .llamacpp import LlamaCppEngine, gguf_file
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
    engine: Engine | LlamaCppEngine
    proxy: Proxy
    log: RequestLog
    metrics: Metrics
    api_key: str | None
    router: DeploymentRouter
    shadow_tasks: set[asyncio.Task] = field(default_factory=set)  # shadow calls in flight (kept from the GC)

    def lookup(self, name: str) -> ServedModel:
        if name not in self.by_name:
            served = ", ".join(m.name for m in self.models)
            raise ApiError(404, f"the model {name!r} is not served here (served: {served})", param="model",
                           code="model_not_found")
        return self.by_name[name]


def engine_for(config: ServeConfig) -> str:
    """The engine `config.engine` means here: "auto" made concrete, and the built-in engine
    for mixed-adapter batches, which only it decodes."""
    engine = choose_engine(config.engine, config.llama_server, config.weights)
    return "local" if engine == "llama.cpp" and config.engine == "auto" and config.mixed_adapters else engine


def create_app(config: ServeConfig, models: list[ServedModel] | None = None) -> FastAPI:
    """The app serving `models` (default: `config.models`, resolved against the registry)."""
    from .models import resolve_models

    if models is None:
        models, _ = resolve_models(config.models)
    metrics = Metrics()
    if engine_for(config) == "llama.cpp":
        engine: Engine | LlamaCppEngine = LlamaCppEngine(models, gguf_file, find_llama_server(config.llama_server),
                                                         parallel=config.max_batch_size, threads=config.threads)
    else:
        pool = ModelPool(config.max_adapters, config.memory_budget_gb, config.device, config.dtype, metrics,
                         weights=config.weights)
        engine = Engine(pool, batch_wait_ms=config.batch_wait_ms, max_batch_size=config.max_batch_size,
                        metrics=metrics, threads=config.threads, mixed_adapters=config.mixed_adapters)
    state = ServerState(
        config=config, models=models, by_name={n: m for m in models for n in m.names}, engine=engine,
        proxy=Proxy(), log=RequestLog(log_text=config.log_requests), metrics=metrics, api_key=config.resolved_api_key(),
        router=DeploymentRouter(config.deployments_refresh_s, config.auto_gate_s),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.log.start()
        state.engine.start()
        state.router.start()
        try:
            yield
        finally:
            state.router.stop()
            for task in list(state.shadow_tasks):  # a shadow answer still generating is not waited for
                task.cancel()
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
        listing = openai_api.model_list(state.models)
        listing["data"] += state.router.model_entries()
        return listing

    @app.post("/v1/feedback")
    async def feedback(request: Request) -> Response:
        return await _feedback(state, request)

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
    route: Route | None = None
    try:
        body = await _read_json(request, state.config.max_body_bytes)
        call = api.parse(body, Limits(state.config.default_max_tokens, state.config.max_tokens_cap), path_model)
        route = state.router.route(call.model, _subject(request, body), request_id)
        served = route.served if route else state.lookup(call.model)
        headers = {"X-Tunesmith-Request-Id": request_id, "X-Tunesmith-Served-By": served.model_id or served.name}
        streaming = sse if sse is not None else call.stream
        if served.remote is not None:
            generation = state.proxy.submit(served.remote, call.system, call.turns, call.sampling, streaming)
        else:
            generation = state.engine.submit(served, call.system, call.turns, call.sampling)
        first = await _first_event(generation)  # an error before the first token still gets its status
        if streaming:
            return StreamingResponse(_stream(state, api, call, served, generation, first, started, request_id, route),
                                     media_type="text/event-stream", headers={"Cache-Control": "no-cache", **headers})
        result = first if isinstance(first, Result) else await generation.result()
        _done(state, api, call, served, started, result, route=route, request_id=request_id)
        answer = api.response(call, result, request_id)
        return JSONResponse([answer] if array else answer, headers=headers)
    except ApiError as exc:
        _done(state, api, call, served, started, None, exc, route=route, request_id=request_id)
        return JSONResponse(error_body(api.API, exc), status_code=exc.status)


async def _first_event(generation: Generation) -> str | Result:
    kind, value = await generation.next_event()
    if kind == "error":
        raise _as_api_error(value)
    return value


async def _stream(state: ServerState, api: ModuleType, call: ChatCall, served: ServedModel, generation: Generation,
                  first: str | Result, started: float, request_id: str, route: Route | None) -> AsyncIterator[bytes]:
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
        _done(state, api, call, served, started, result, route=route, request_id=request_id)
        logged = True
    except ApiError as exc:  # the status line is sent already: report it in the stream
        _done(state, api, call, served, started, None, exc, route=route, request_id=request_id)
        logged = True
        yield api.stream_error(exc)
    finally:
        if result is None:  # the client left (or the engine failed): stop generating for it
            generation.cancelled = True
        if not logged:
            _done(state, api, call, served, started, None, ApiError(CLIENT_CLOSED, "the client closed the stream"),
                  route=route, request_id=request_id)


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
          result: Result | None, error: ApiError | None = None, *, route: Route | None = None,
          request_id: str | None = None) -> None:
    """Log and count a finished request, answered (`result`) or refused (`error`); a shadowed
    request's copy goes to the candidate now that the caller has its answer."""
    latency_s = time.monotonic() - started
    status = error.status if error else 200
    shadowed = route is not None and route.shadow is not None and call is not None
    state.log.record(
        request_id=request_id, deployment=route.deployment if route else None,
        rollout_id=route.rollout_id if route else None, subject=route.subject if route else None,
        route=route.arm if route and route.rollout_id else None, pair_id=request_id if shadowed else None,
        api=api.API, model=call.model if call else "", status_code=status,
        model_id=(served.model_id or (served.name if route else None)) if served else None,
        latency_s=latency_s, prompt_tokens=result.prompt_tokens if result else None,
        completion_tokens=result.completion_tokens if result else None,
        system=call.system if call else None, turns=call.turns if call else None,
        output=result.text if result else None, error=error.message if error else None,
    )
    if shadowed:
        _start_shadow(state, api, call, route, request_id)
    model = served.name if served else ""  # metric labels: served names only, never what a client made up
    _count(state, api.API, model, status)
    if result is not None:
        state.metrics.observe("tunesmith_request_latency_seconds", "Time from request to last token.", latency_s,
                              LATENCY_BUCKETS_S, api=api.API, model=model)
        state.metrics.inc("tunesmith_prompt_tokens_total", "Prompt tokens read.", result.prompt_tokens, model=model)


def _count(state: ServerState, api: str, model: str, status: int) -> None:
    state.metrics.inc("tunesmith_requests_total", "Requests by API, model and HTTP status.", api=api, model=model,
                      status=str(status))


def _subject(request: Request, body: dict[str, Any]) -> str | None:
    """Who is asking, for sticky A/B assignment: the X-Tunesmith-Subject header, else OpenAI's `user`."""
    subject = request.headers.get("x-tunesmith-subject") or body.get("user")
    return subject if isinstance(subject, str) and subject.strip() else None


def _start_shadow(state: ServerState, api: ModuleType, call: ChatCall, route: Route, request_id: str) -> None:
    task = asyncio.get_running_loop().create_task(_shadow(state, api, call, route, request_id))
    state.shadow_tasks.add(task)
    task.add_done_callback(state.shadow_tasks.discard)


async def _shadow(state: ServerState, api: ModuleType, call: ChatCall, route: Route, request_id: str) -> None:
    """The candidate answers a copy of the caller's request, once the caller has its answer;
    logged as the pair's other half, never returned. A failure is logged as such and goes
    nowhere else. In the built-in engine the copy yields to callers (a background request): its
    latency leaves out the time it yielded, and a copy skipped under unbroken load is counted by
    the engine, not logged (the pair stays one-sided)."""
    candidate = route.shadow
    started = time.monotonic()
    result, error = None, None
    try:
        if candidate.remote is not None:
            generation = state.proxy.submit(candidate.remote, call.system, call.turns, call.sampling, False)
        else:
            generation = state.engine.submit(candidate, call.system, call.turns, call.sampling, background=True)
        result = await generation.result()
    except Skipped:
        return
    except asyncio.CancelledError:
        error = ApiError(CLIENT_CLOSED, "the server stopped before the shadow answer ended")
    except Exception as exc:  # noqa: BLE001 - whatever the candidate does, the caller never sees it
        error = _as_api_error(exc)
    state.log.record(
        api=api.API, model=call.model, model_id=candidate.model_id or candidate.name, route="shadow",
        status_code=error.status if error else 200,
        latency_s=time.monotonic() - started - (result.yielded_s if result else 0.0),
        prompt_tokens=result.prompt_tokens if result else None,
        completion_tokens=result.completion_tokens if result else None, system=call.system, turns=call.turns,
        output=result.text if result else None, error=error.message if error else None,
        request_id=f"{request_id}.shadow", deployment=route.deployment, rollout_id=route.rollout_id,
        subject=route.subject, pair_id=request_id,
    )
    _count(state, api.API, route.deployment + ":shadow", error.status if error else 200)


async def _feedback(state: ServerState, request: Request) -> Response:
    """POST /v1/feedback: a score, thumbs or the correct answer for a request this server answered."""
    from ..rollout.feedback import record_feedback
    from ..store.deployments import UnknownRequestError

    try:
        body = await _read_json(request, state.config.max_body_bytes)
        await asyncio.to_thread(state.log.flush)  # the request being rated may still be on its way to the store
        row = await asyncio.to_thread(record_feedback, body)
    except ApiError as exc:
        return JSONResponse(error_body("openai", exc), status_code=exc.status)
    except UnknownRequestError as exc:
        return JSONResponse(error_body("openai", ApiError(404, exc.message, param="request_id")), status_code=404)
    except TunesmithError as exc:
        return JSONResponse(error_body("openai", ApiError(400, exc.message)), status_code=400)
    return JSONResponse({"object": "feedback", **row})
