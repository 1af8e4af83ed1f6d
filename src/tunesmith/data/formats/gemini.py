"""`gemini`: Vertex AI's supervised tuning format.

{"systemInstruction": {"role": …, "parts": [{"text"}]},
 "contents": [{"role": "user"|"model", "parts": [{"text"}]}]}

Several text parts in one turn are joined. Parts that are not text (`fileData`: images,
audio, PDF) cannot be represented and make the record unreadable, with the reason."""

from __future__ import annotations

from ..example import Example, Turn
from ._common import RecordError, known_roles_only, list_field, rest, take_common

NAME = "gemini"
_SYSTEM_KEYS = ("systemInstruction", "system_instruction")


def detect(record: dict) -> bool:
    return "contents" in record


def _parts_text(parts, where: str) -> str:
    if not isinstance(parts, list) or not parts:
        raise RecordError(f'{where}.parts must be a non-empty list')
    texts = []
    for j, part in enumerate(parts):
        if not isinstance(part, dict):
            raise RecordError(f"{where}.parts[{j}] must be an object")
        if "text" not in part:
            kinds = ", ".join(sorted(part)) or "nothing"
            raise RecordError(f"{where}.parts[{j}] has no text ({kinds}); only text parts are supported")
        if not isinstance(part["text"], str):
            raise RecordError(f"{where}.parts[{j}].text must be a string")
        texts.append(part["text"])
    return "".join(texts)


def parse(record: dict) -> Example:
    turns = []
    for i, content in enumerate(list_field(record, "contents")):
        where = f"contents[{i}]"
        if not isinstance(content, dict):
            raise RecordError(f"{where} must be an object")
        role = content.get("role")
        if not isinstance(role, str):
            raise RecordError(f'{where} is missing "role"')
        turns.append(Turn(role, _parts_text(content.get("parts"), where)))
    system = None
    key = next((k for k in _SYSTEM_KEYS if k in record), None)
    if key is not None and record[key] is not None:
        if not isinstance(record[key], dict):
            raise RecordError(f'"{key}" must be an object with "parts"')
        system = _parts_text(record[key].get("parts"), key)
    return Example(turns=turns, system=system, meta=rest(record, ("contents", *_SYSTEM_KEYS)), **take_common(record))


def to_record(example: Example) -> dict:
    known_roles_only(example, NAME)
    record: dict = {}
    if example.system:
        record["systemInstruction"] = {"role": "system", "parts": [{"text": example.system}]}
    record["contents"] = [{"role": t.role, "parts": [{"text": t.text}]} for t in example.turns]
    return record
