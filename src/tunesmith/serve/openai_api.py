"""OpenAI's chat completions API: `POST /v1/chat/completions`, streamed as server-sent
events or not, and `GET /v1/models`. Roles: system (and developer) -> the system
instruction, user -> user, assistant -> model."""

from __future__ import annotations

import json
import time
from typing import Any

from ..data.example import MODEL, USER, Turn
from .chat import ChatCall, Limits, check_conversation, integer, max_tokens, number, required, stop_sequences
from .engine import Result, Sampling
from .errors import ApiError, openai_error_body
from .models import ServedModel
from .structured import openai_structured

API = "openai"
_ROLES = {"user": USER, "assistant": MODEL}
_SYSTEM_ROLES = ("system", "developer")


def parse(body: dict[str, Any], limits: Limits, path_model: str | None = None) -> ChatCall:
    model = required(body, "model", str, "a model name")
    messages = required(body, "messages", list, "a non-empty list of messages")
    system_parts, turns = [], []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ApiError(400, f"messages[{i}] must be an object", param="messages")
        role = message.get("role")
        text = _content_text(message.get("content"), i)
        if role in _SYSTEM_ROLES:
            system_parts.append(text)
        elif role in _ROLES:
            turns.append(Turn(_ROLES[role], text))
        else:
            raise ApiError(400, f"messages[{i}].role must be system, developer, user or assistant (got {role!r})",
                           param="messages")
    check_conversation(turns)
    if body.get("n") not in (None, 1):
        raise ApiError(400, "n must be 1: one choice per request", param="n")
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    name = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
    constraint, free = openai_structured(body)
    sampling = Sampling(
        max_tokens=max_tokens(integer({name: limit}, name), limits, name),
        temperature=number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=number(body, "top_p", 1.0, 0.0, 1.0),
        seed=integer(body, "seed"),
        stop=stop_sequences(body.get("stop"), "stop", most=4),
        constraint=constraint, free=free,
    )
    stream = body.get("stream") is True
    options = body.get("stream_options") or {}
    return ChatCall(model, "\n\n".join(system_parts) or None, turns, sampling, stream=stream,
                    include_usage=isinstance(options, dict) and options.get("include_usage") is True)


def _content_text(content: Any, i: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return "".join(str(p.get("text", "")) for p in content)
    raise ApiError(400, f"messages[{i}].content must be a string or a list of text parts", param="messages")


def _usage(result: Result) -> dict[str, int]:
    return {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
            "total_tokens": result.prompt_tokens + result.completion_tokens}


def response(call: ChatCall, result: Result, request_id: str) -> dict[str, Any]:
    return {
        "id": request_id, "object": "chat.completion", "created": int(time.time()), "model": call.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": result.text},
                     "finish_reason": result.finish_reason, "logprobs": None}],
        "usage": _usage(result),
    }


def _chunk(call: ChatCall, request_id: str, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    return {"id": request_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": call.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]}


def stream_start(call: ChatCall, request_id: str) -> bytes:
    return _event(_chunk(call, request_id, {"role": "assistant", "content": ""}, None))


def stream_delta(call: ChatCall, text: str, request_id: str) -> bytes:
    return _event(_chunk(call, request_id, {"content": text}, None))


def stream_end(call: ChatCall, result: Result, request_id: str) -> bytes:
    events = _event(_chunk(call, request_id, {}, result.finish_reason))
    if call.include_usage:
        events += _event({**_chunk(call, request_id, {}, None), "choices": [], "usage": _usage(result)})
    return events + b"data: [DONE]\n\n"


def stream_error(error: ApiError) -> bytes:
    return _event(openai_error_body(error))


def _event(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode("utf-8")


def model_list(models: list[ServedModel]) -> dict[str, Any]:
    data = []
    for model in models:
        entry = {"id": model.name, "object": "model", "created": model.created_at,
                 "owned_by": "vertex" if model.remote else "tunesmith"}
        if model.base_model:  # vLLM's lineage fields: the base model as root, and parent
            entry.update(root=model.base_model, parent=model.base_model)
        data.append(entry)
    return {"object": "list", "data": data}
