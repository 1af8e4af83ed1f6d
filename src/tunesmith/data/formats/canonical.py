"""`tunesmith`: the canonical JSONL of prepared splits, one `Example` per line.

{"id": "…", "system": null, "turns": [{"role": "user", "text": "…"}, {"role": "model", "text": "…"}],
 "label": "…", "timestamp": "…", "meta": {…}, "origin": "raw.jsonl:12"}

`origin` is the file and line the example was first read from; ids are kept as given."""

from __future__ import annotations

from ..example import Example, Turn
from ._common import RecordError, list_field, text_field

NAME = "tunesmith"


def detect(record: dict) -> bool:
    return "turns" in record


def parse(record: dict) -> Example:
    turns = []
    for i, turn in enumerate(list_field(record, "turns")):
        if not isinstance(turn, dict):
            raise RecordError(f"turns[{i}] must be an object")
        turns.append(Turn(text_field(turn, "role"), text_field(turn, "text")))
    meta = record.get("meta") or {}
    if not isinstance(meta, dict):
        raise RecordError('"meta" must be an object')
    if "origin" in record:
        meta = {**meta, "origin": record["origin"]}
    label = record.get("label")
    return Example(
        turns=turns,
        system=text_field(record, "system", required=False),
        id=str(record.get("id") or ""),
        label=None if label is None else str(label),
        timestamp=None if record.get("timestamp") is None else str(record["timestamp"]),
        meta=meta,
    )


def to_record(example: Example) -> dict:
    meta = dict(example.meta)
    origin = meta.pop("origin", None) or (f"{example.source}:{example.line}" if example.source else None)
    return {
        "id": example.id,
        "system": example.system,
        "turns": [{"role": t.role, "text": t.text} for t in example.turns],
        "label": example.label,
        "timestamp": example.timestamp,
        "meta": meta,
        "origin": origin,
    }
