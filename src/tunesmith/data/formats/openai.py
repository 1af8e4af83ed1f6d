"""`openai`: {"messages": [{"role": "system"|"user"|"assistant", "content": …}]}.

"assistant" maps to "model" and back; leading system messages become the system
instruction. Content may be a string or a list of {"type": "text", "text"} parts. Message
fields other than role and content (`weight`, `name`) are kept in meta and written back."""

from __future__ import annotations

from ..example import MODEL, USER, Example, Turn
from ._common import RecordError, known_roles_only, list_field, rest, split_system, take_common

NAME = "openai"
_ROLE_IN = {"assistant": MODEL, "user": USER, "system": "system"}
_ROLE_OUT = {MODEL: "assistant", USER: "user"}
_EXTRA_KEY = "message_fields"  # meta key for per-message extras, so a round trip keeps them


def detect(record: dict) -> bool:
    return "messages" in record


def content_text(content, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
                raise RecordError(f"{where}.content[{j}] is not a text part (only text is supported)")
            texts.append(part["text"])
        return "".join(texts)
    raise RecordError(f"{where}.content must be a string or a list of text parts")


def parse_messages(messages: list, field: str = "messages") -> tuple[list[Turn], list[dict | None]]:
    turns, extras = [], []
    for i, msg in enumerate(messages):
        where = f"{field}[{i}]"
        if not isinstance(msg, dict):
            raise RecordError(f"{where} must be an object")
        if "tool_calls" in msg or "function_call" in msg:
            raise RecordError(f"{where} has tool calls, which are not supported")
        role = msg.get("role")
        if not isinstance(role, str):
            raise RecordError(f'{where} is missing "role"')
        if "content" not in msg:
            raise RecordError(f'{where} is missing "content"')
        turns.append(Turn(_ROLE_IN.get(role, role), content_text(msg["content"], where)))
        other = {k: v for k, v in msg.items() if k not in ("role", "content")}
        extras.append(other or None)
    return turns, extras


def parse(record: dict) -> Example:
    turns, extras = parse_messages(list_field(record, "messages"))
    system, turns = split_system(turns)
    meta = rest(record, ("messages",))
    if any(extras):
        meta[_EXTRA_KEY] = extras
    return Example(turns=turns, system=system, meta=meta, **take_common(record))


def to_record(example: Example) -> dict:
    known_roles_only(example, NAME)
    messages = [{"role": "system", "content": example.system}] if example.system else []
    messages += [{"role": _ROLE_OUT[t.role], "content": t.text} for t in example.turns]
    extras = example.meta.get(_EXTRA_KEY)
    if isinstance(extras, list) and len(extras) == len(messages):
        for msg, extra in zip(messages, extras):
            if isinstance(extra, dict):
                msg.update({k: v for k, v in extra.items() if k not in msg})
    return {"messages": messages}
