"""A chat request as both APIs describe it, and the checks their parsers share.

`openai_api` and `gemini_api` turn a request body into a `ChatCall`; everything after
that (model lookup, generation, logging) is the same for both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..data.example import Turn
from .engine import Sampling
from .errors import ApiError


@dataclass(frozen=True)
class Limits:
    default_max_tokens: int
    max_tokens_cap: int


@dataclass(frozen=True)
class ChatCall:
    model: str
    system: str | None
    turns: list[Turn]
    sampling: Sampling
    stream: bool = False
    include_usage: bool = False  # OpenAI's stream_options.include_usage


def number(body: dict[str, Any], name: str, default: float, low: float, high: float, path: str = "") -> float:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ApiError(400, f"{path}{name} must be a number from {low} to {high} (got {value!r})", param=name)
    return float(value)


def integer(body: dict[str, Any], name: str, path: str = "") -> int | None:
    value = body.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ApiError(400, f"{path}{name} must be an integer (got {value!r})", param=name)
    return value


def max_tokens(value: int | None, limits: Limits, name: str) -> int:
    if value is None:
        return min(limits.default_max_tokens, limits.max_tokens_cap)
    if value < 1:
        raise ApiError(400, f"{name} must be at least 1 (got {value})", param=name)
    if value > limits.max_tokens_cap:
        raise ApiError(400, f"{name} is {value}, over this server's cap of {limits.max_tokens_cap}", param=name)
    return value


def stop_sequences(value: Any, name: str, most: int = 16) -> tuple[str, ...]:
    if value is None:
        return ()
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values) or len(values) > most:
        raise ApiError(400, f"{name} must be a non-empty string or a list of at most {most} of them", param=name)
    return tuple(values)


def required(body: dict[str, Any], name: str, kind: type, what: str) -> Any:
    if name not in body or body[name] is None:
        raise ApiError(400, f"missing required field '{name}'", param=name)
    value = body[name]
    if not isinstance(value, kind) or (kind in (list, str) and not value):
        raise ApiError(400, f"'{name}' must be {what}", param=name)
    return value


def check_conversation(turns: list[Turn]) -> None:
    if not turns:
        raise ApiError(400, "the conversation has no user or model turn", param="messages")
    if turns[-1].role != "user":
        raise ApiError(400, "the last message must come from the user: it is what the model answers", param="messages")
