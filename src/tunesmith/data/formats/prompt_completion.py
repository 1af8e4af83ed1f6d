"""`prompt-completion`: {"prompt": …, "completion": …}, TRL's standard prompt-completion form."""

from __future__ import annotations

from ..example import MODEL, USER, Example, Turn
from ._common import RecordError, no_system, rest, single_turn, take_common, text_field

NAME = "prompt-completion"


def detect(record: dict) -> bool:
    return "prompt" in record and "completion" in record


def parse(record: dict) -> Example:
    if not detect(record):
        raise RecordError('expected fields "prompt" and "completion"')
    turns = [Turn(USER, text_field(record, "prompt")), Turn(MODEL, text_field(record, "completion"))]
    return Example(turns=turns, meta=rest(record, ("prompt", "completion")), **take_common(record))


def to_record(example: Example) -> dict:
    no_system(example, NAME)
    user, model = single_turn(example, NAME)
    return {"prompt": user, "completion": model}
