"""`alpaca`: {"instruction", "input", "output"}, with the optional "system" and "history"
([[user, model], …] earlier exchanges) that LLaMA-Factory's variant adds."""

from __future__ import annotations

from ..example import MODEL, USER, Example, Turn
from ._common import CannotRepresent, RecordError, rest, take_common, text_field

NAME = "alpaca"
_CONSUMED = ("instruction", "input", "output", "system", "history")


def detect(record: dict) -> bool:
    return "instruction" in record and "output" in record


def parse(record: dict) -> Example:
    instruction = text_field(record, "instruction")
    extra = text_field(record, "input", required=False)
    output = text_field(record, "output")
    turns: list[Turn] = []
    history = record.get("history") or []
    if not isinstance(history, list):
        raise RecordError('field "history" must be a list of [user, model] pairs')
    for i, pair in enumerate(history):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(s, str) for s in pair)):
            raise RecordError(f'history[{i}] must be a pair of strings [user, model]')
        turns += [Turn(USER, pair[0]), Turn(MODEL, pair[1])]
    user = instruction if not extra else f"{instruction}\n\n{extra}"
    turns += [Turn(USER, user), Turn(MODEL, output)]
    return Example(
        turns=turns,
        system=text_field(record, "system", required=False),
        meta=rest(record, _CONSUMED),
        **take_common(record),
    )


def to_record(example: Example) -> dict:
    roles = [t.role for t in example.turns]
    if len(roles) < 2 or len(roles) % 2 or any(
        r != (USER if i % 2 == 0 else MODEL) for i, r in enumerate(roles)
    ):
        raise CannotRepresent(f"alpaca needs alternating user/model pairs; this example has roles {roles}")
    pairs = [[example.turns[i].text, example.turns[i + 1].text] for i in range(0, len(roles), 2)]
    record: dict = {}
    if example.system:
        record["system"] = example.system
    record.update({"instruction": pairs[-1][0], "input": "", "output": pairs[-1][1]})
    if len(pairs) > 1:
        record["history"] = pairs[:-1]
    return record
