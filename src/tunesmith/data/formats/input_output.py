"""`input-output`: {"input_text": …, "output_text": …}, the guide's single-turn example
(PaLM-era Vertex). {"input": …, "output": …} without an "instruction" reads the same way."""

from __future__ import annotations

from ..example import MODEL, USER, Example, Turn
from ._common import RecordError, no_system, rest, single_turn, take_common, text_field

NAME = "input-output"


def _keys(record: dict) -> tuple[str, str] | None:
    if "input_text" in record or "output_text" in record:
        return "input_text", "output_text"
    if "input" in record and "output" in record and "instruction" not in record:
        return "input", "output"
    return None


def detect(record: dict) -> bool:
    return _keys(record) is not None


def parse(record: dict) -> Example:
    keys = _keys(record)
    if keys is None:
        raise RecordError('expected fields "input_text" and "output_text"')
    inp, out = keys
    turns = [Turn(USER, text_field(record, inp)), Turn(MODEL, text_field(record, out))]
    return Example(turns=turns, meta=rest(record, (inp, out)), **take_common(record))


def to_record(example: Example) -> dict:
    no_system(example, NAME)
    user, model = single_turn(example, NAME)
    return {"input_text": user, "output_text": model}
