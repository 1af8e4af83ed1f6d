"""Gemini's generateContent API: `POST /v1beta/models/{model}:generateContent` and
`:streamGenerateContent` (server-sent events with `?alt=sse`, else one JSON array), as the
google-genai SDK calls it when its base URL points here."""

from __future__ import annotations

import json
from typing import Any

from ..data.example import MODEL, USER, Turn
from .chat import ChatCall, Limits, check_conversation, integer, max_tokens, number, required, stop_sequences
from .engine import Result, Sampling
from .errors import ApiError, gemini_error_body
from .structured import gemini_structured

API = "gemini"
_FINISH_REASONS = {"stop": "STOP", "length": "MAX_TOKENS"}


def parse(body: dict[str, Any], limits: Limits, path_model: str | None = None) -> ChatCall:
    contents = required(body, "contents", list, "a non-empty list of contents")
    turns = []
    for i, content in enumerate(contents):
        if not isinstance(content, dict):
            raise ApiError(400, f"contents[{i}] must be an object")
        role = content.get("role") or USER
        if role not in (USER, MODEL):
            raise ApiError(400, f"contents[{i}].role must be 'user' or 'model' (got {role!r})")
        turns.append(Turn(role, _parts_text(content.get("parts"), f"contents[{i}]")))
    check_conversation(turns)
    system = body.get("systemInstruction") or body.get("system_instruction")
    if system is not None and not isinstance(system, dict):
        raise ApiError(400, "systemInstruction must be a content object with parts")
    config = body.get("generationConfig") or {}
    if not isinstance(config, dict):
        raise ApiError(400, "generationConfig must be an object")
    if config.get("candidateCount") not in (None, 1):
        raise ApiError(400, "generationConfig.candidateCount must be 1")
    where = "generationConfig."
    constraint, free = gemini_structured(config)
    sampling = Sampling(
        max_tokens=max_tokens(integer(config, "maxOutputTokens", where), limits, where + "maxOutputTokens"),
        temperature=number(config, "temperature", 1.0, 0.0, 2.0, where),
        top_p=number(config, "topP", 1.0, 0.0, 1.0, where),
        seed=integer(config, "seed", where),
        stop=stop_sequences(config.get("stopSequences"), where + "stopSequences", most=5),
        constraint=constraint, free=free,
    )
    return ChatCall(path_model or "", _parts_text(system["parts"], "systemInstruction") if system else None,
                    turns, sampling)


def _parts_text(parts: Any, where: str) -> str:
    if not isinstance(parts, list) or not parts:
        raise ApiError(400, f"{where}.parts must be a non-empty list of parts")
    if not all(isinstance(p, dict) and isinstance(p.get("text"), str) for p in parts):
        raise ApiError(400, f"{where}.parts: only text parts are supported")
    return "".join(p["text"] for p in parts)


def _candidate(text: str, finish_reason: str | None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": MODEL, "parts": [{"text": text}]}, "index": 0}
    if finish_reason:
        candidate["finishReason"] = _FINISH_REASONS.get(finish_reason, "STOP")
    return candidate


def _usage(result: Result) -> dict[str, int]:
    return {"promptTokenCount": result.prompt_tokens, "candidatesTokenCount": result.completion_tokens,
            "totalTokenCount": result.prompt_tokens + result.completion_tokens}


def response(call: ChatCall, result: Result, request_id: str) -> dict[str, Any]:
    return {"candidates": [_candidate(result.text, result.finish_reason)], "usageMetadata": _usage(result),
            "modelVersion": call.model, "responseId": request_id}


def stream_start(call: ChatCall, request_id: str) -> bytes:
    return b""


def stream_delta(call: ChatCall, text: str, request_id: str) -> bytes:
    return _event({"candidates": [_candidate(text, None)], "modelVersion": call.model, "responseId": request_id})


def stream_end(call: ChatCall, result: Result, request_id: str) -> bytes:
    return _event({"candidates": [_candidate("", result.finish_reason)], "usageMetadata": _usage(result),
                   "modelVersion": call.model, "responseId": request_id})


def stream_error(error: ApiError) -> bytes:
    return _event(gemini_error_body(error))


def _event(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False)}\r\n\r\n".encode("utf-8")
