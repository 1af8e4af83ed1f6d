"""`sharegpt`: {"conversations": [{"from": "human"|"gpt"|"system", "value": …}]}, with an
optional top-level "system" as LLaMA-Factory writes it."""

from __future__ import annotations

from ..example import MODEL, USER, Example, Turn
from ._common import RecordError, known_roles_only, list_field, rest, split_system, take_common, text_field

NAME = "sharegpt"
_ROLE_IN = {"human": USER, "user": USER, "gpt": MODEL, "assistant": MODEL, "model": MODEL, "system": "system"}
_ROLE_OUT = {USER: "human", MODEL: "gpt"}


def detect(record: dict) -> bool:
    return "conversations" in record


def parse(record: dict) -> Example:
    turns = []
    for i, msg in enumerate(list_field(record, "conversations")):
        where = f"conversations[{i}]"
        if not isinstance(msg, dict):
            raise RecordError(f"{where} must be an object")
        role = msg.get("from")
        if not isinstance(role, str):
            raise RecordError(f'{where} is missing "from"')
        value = msg.get("value")
        if not isinstance(value, str):
            raise RecordError(f'{where}.value must be a string')
        turns.append(Turn(_ROLE_IN.get(role, role), value))
    system, turns = split_system(turns)
    top = text_field(record, "system", required=False)
    if top:
        system = top if not system else f"{top}\n\n{system}"
    return Example(turns=turns, system=system, meta=rest(record, ("conversations", "system")), **take_common(record))


def to_record(example: Example) -> dict:
    known_roles_only(example, NAME)
    record: dict = {}
    if example.system:
        record["system"] = example.system
    record["conversations"] = [{"from": _ROLE_OUT[t.role], "value": t.text} for t in example.turns]
    return record
