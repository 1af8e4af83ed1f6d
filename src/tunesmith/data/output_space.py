"""The output space of a dataset: what its outputs may be, learned from the training split.

Three kinds, tried in this order:
- `labels`: the outputs are class labels (data/label_shape.py decides, the same rule the
  label checks use); the space is the label set.
- `keys`: the outputs follow one "Key: value" template (`Category: …\\nPriority: …\\nAction: …`,
  the dominant signature of data/checks/format_drift.py); the space is the keys in order,
  each with its closed value set where the values repeat like labels (Category, Priority),
  else free text on one line (Action).
- `json`: the outputs are JSON objects with string, number or boolean values; each value is
  a closed set where it repeats like a label, else free by its type. A key that some objects
  leave out is optional (slot filling: Restaurant-8k's `{"date": …, "people": …}` beside
  `{"people": …}` and `{}`), and the keys keep the one order the data writes them in.

Everything else (free text) has no output space: None.

The space travels as a plain dict (`to_dict` / `from_dict`): in the prepared dataset's
manifest, in `output_space.json` beside a tuned model's weights and in the registry row,
so evaluation and serving find it for a registered model. Decoding is constrained to it
by models/constrain.py; managed models get it as a response schema (`response_schema`)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .checks.format_drift import _line_keys, _nonblank_lines, dominant_signature
from .label_shape import LABEL_LIKE_MAX_WORDS, MAX_CLASSES, REPEATED_SHARE, canonical_label, learn_label_shape

OUTPUT_SPACE_FILE = "output_space.json"
# A field is closed when its values repeat: at most this share of the outputs are distinct values ...
CLOSED_DISTINCT_SHARE = 0.2
# ... and a JSON key is optional when at least this share of the objects leave it out.
OPTIONAL_SHARE = 0.01
FREE, NUMBER, BOOLEAN = "text", "number", "boolean"


@dataclass(frozen=True)
class Field:
    name: str
    values: tuple[str, ...] | None = None  # the closed value set, or None: open
    type: str = FREE  # of an open value: text (one line / a JSON string), number, boolean
    required: bool = True  # json: False where some outputs leave the key out

    def to_dict(self) -> dict:
        out = {"name": self.name, "values": list(self.values) if self.values is not None else None, "type": self.type}
        if not self.required:
            out["required"] = False
        return out


@dataclass(frozen=True)
class OutputSpace:
    kind: str  # "labels" | "keys" | "json"
    labels: tuple[str, ...] = ()
    fields: tuple[Field, ...] = ()
    compact_json: bool = False  # json: written without spaces after ":" and ","

    @property
    def closed(self) -> bool:
        """Whether decoding can be held to it (every kind can; free fields stay free inside)."""
        return self.kind in ("labels", "keys", "json")

    def to_dict(self) -> dict:
        out: dict = {"kind": self.kind}
        if self.kind == "labels":
            out["labels"] = list(self.labels)
        else:
            out["fields"] = [f.to_dict() for f in self.fields]
        if self.kind == "json":
            out["compact_json"] = self.compact_json
        return out

    @classmethod
    def from_dict(cls, raw: dict) -> OutputSpace:
        fields = tuple(Field(f["name"], tuple(f["values"]) if f.get("values") is not None else None,
                             f.get("type", FREE), bool(f.get("required", True))) for f in raw.get("fields", ()))
        return cls(raw["kind"], tuple(raw.get("labels", ())), fields, bool(raw.get("compact_json", False)))

    def describe(self) -> str:
        if self.kind == "labels":
            return f"one of {len(self.labels)} labels"
        parts = [(f"{f.name} ({len(f.values)} values" if f.values is not None else f"{f.name} ({f.type}")
                 + ("" if f.required else ", optional") + ")" for f in self.fields]
        return ("a JSON object: " if self.kind == "json" else '"Key: value" lines: ') + ", ".join(parts)

    # --- reading an output ---------------------------------------------------------

    def field_values(self, text: str) -> dict[str, str] | None:
        """The output's value of each field (labels: {"label": text}); None when it is not in the space."""
        text = text.strip()
        if self.kind == "labels":
            return {"label": text} if text in self.labels else None
        if self.kind == "keys":
            pairs = _line_keys(_nonblank_lines(text))
            if pairs is None or [k for k, _ in pairs] != [f.name for f in self.fields]:
                return None
            values = dict(pairs)
        else:
            try:
                loaded = json.loads(text)
            except ValueError:
                return None
            if not isinstance(loaded, dict) or not set(loaded) <= {f.name for f in self.fields} \
                    or any(f.required and f.name not in loaded for f in self.fields):
                return None
            values = {k: _json_value_text(v) for k, v in loaded.items()}
            if any(f.name in loaded and not _fits_type(loaded[f.name], f) for f in self.fields):
                return None
        for f in self.fields:
            if f.name not in values:  # an optional JSON key left out
                continue
            if f.values is not None and values[f.name] not in f.values:
                return None
            if f.values is None and self.kind == "keys" and not values[f.name].strip():
                return None
        return values

    def contains(self, text: str) -> bool:
        return self.field_values(text) is not None

    # --- for services that take a response schema ---------------------------------

    def response_schema(self) -> dict:
        """A JSON schema of the space (OpenAPI subset, as Gemini's responseSchema takes it).
        Labels: a string enum (responseMimeType text/x.enum); keys and json: an object of the
        fields (application/json; a keys answer is rendered back into its lines by `render`)."""
        if self.kind == "labels":
            return {"type": "string", "enum": list(self.labels)}
        properties = {}
        for f in self.fields:
            if f.values is not None:
                properties[f.name] = {"type": "string", "enum": list(f.values)}
            else:
                properties[f.name] = {"type": {NUMBER: "number", BOOLEAN: "boolean"}.get(f.type, "string")}
        return {"type": "object", "properties": properties, "required": [f.name for f in self.fields if f.required],
                "propertyOrdering": [f.name for f in self.fields]}

    def response_mime_type(self) -> str:
        return "text/x.enum" if self.kind == "labels" else "application/json"

    def render(self, answer: str) -> str:
        """A service's answer to `response_schema` in the space's own form (keys: JSON -> lines)."""
        if self.kind != "keys":
            return answer
        try:
            values = json.loads(answer)
        except ValueError:
            return answer
        if not isinstance(values, dict):
            return answer
        return "\n".join(f"{f.name}: {values.get(f.name, '')}" for f in self.fields)


def score_answers(space: OutputSpace, outputs: list[str], references: list[str]) -> dict:
    """The task's real metric over index-aligned answers: {"examples", "valid_rate" (inside the
    space), "exact_match", "invalid", and for templates "fields" (accuracy per field) and
    "field_accuracy" (their mean)}; "accuracy" is exact_match for labels, field_accuracy otherwise.
    A field is right when the answer is in the space and has the reference's value, or leaves
    out an optional key the reference leaves out too."""
    n = len(references)
    valid = [space.contains(o) for o in outputs]
    exact = [o.strip() == r.strip() for o, r in zip(outputs, references)]
    out: dict = {"examples": n, "valid_rate": sum(valid) / n if n else None,
                 "exact_match": sum(exact) / n if n else None, "invalid": n - sum(valid)}
    out["accuracy"] = out["exact_match"]
    if space.kind != "labels" and n:
        fields = {}
        for f in space.fields:
            right = 0
            for o, r in zip(outputs, references):
                got, want = space.field_values(o), space.field_values(r) or {}
                if got is not None and (f.name in want or not f.required):
                    right += (got.get(f.name) or "").strip() == (want.get(f.name) or "").strip() \
                        and (f.name in got) == (f.name in want)
            fields[f.name] = right / n
        out["fields"] = fields
        out["field_accuracy"] = out["accuracy"] = sum(fields.values()) / len(fields)
    return out


def _json_value_text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _fits_type(value: object, field: Field) -> bool:
    if field.values is not None:
        return isinstance(value, str)
    if field.type == NUMBER:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if field.type == BOOLEAN:
        return isinstance(value, bool)
    return isinstance(value, str)


# ----------------------------------------------------------------------------- learning


def learn_output_space(outputs: list[str]) -> OutputSpace | None:
    """The output space of these (training) outputs, or None for free text."""
    outputs = [o.strip() for o in outputs]
    learned = learn_label_shape(outputs)
    if learned is not None:
        # The label shape's classes, and every other value that repeats and names none of them: a
        # class spelt its own way (Banking77's "Refund_not_showing_up", 9 times in a 10-shot train
        # split) is a class here; an off-shape one-off ("Intent: card_arrival") is drift.
        classes = list(learned[1])
        for value, n in Counter(outputs).items():
            if n > 1 and value not in classes and canonical_label(value, classes) is None:
                classes.append(value)
        return OutputSpace("labels", labels=tuple(sorted(classes)))
    found = dominant_signature(outputs)
    if found is None:
        return None
    signature = found[0]
    if signature.startswith("keys:"):
        return _keys_space(outputs, tuple(signature[5:].split(",")))
    if signature == "json" or (signature.startswith("json:") and signature != "json:"):
        return _json_space(outputs)
    return None


def _closed_values(values: list[str]) -> tuple[str, ...] | None:
    """The value set when values repeat like labels, else None (free)."""
    counts = Counter(values)
    repeated = sum(n for n in counts.values() if n > 1)
    if not 1 <= len(counts) <= max(2, min(MAX_CLASSES, int(CLOSED_DISTINCT_SHARE * len(values)))):
        return None
    if repeated < REPEATED_SHARE * len(values) or any(len(v.split()) > LABEL_LIKE_MAX_WORDS for v in counts):
        return None
    # Drift (a value used once) is left out of the set: decoding holds the model to the classes.
    return tuple(sorted(v for v, n in counts.items() if n > 1))


def _keys_space(outputs: list[str], keys: tuple[str, ...]) -> OutputSpace:
    columns: dict[str, list[str]] = {k: [] for k in keys}
    for output in outputs:
        pairs = _line_keys(_nonblank_lines(output))
        if pairs is not None and tuple(k for k, _ in pairs) == keys:
            for k, v in pairs:
                columns[k].append(v)
    return OutputSpace("keys", fields=tuple(Field(k, _closed_values(columns[k])) for k in keys))


def _json_space(outputs: list[str]) -> OutputSpace | None:
    """The space of the outputs that are JSON objects: every key that two or more of them use
    (a key used once is drift, as a value used once is), optional where more than a stray few
    leave it out (OPTIONAL_SHARE of the objects, and at least two)."""
    objects: list[dict] = []
    compact = None
    for output in outputs:
        try:
            value = json.loads(output)
        except ValueError:
            continue
        if isinstance(value, dict):
            objects.append(value)
            if compact is None and value:  # the spacing the data writes, from its first object that shows it
                compact = '": ' not in output
    uses = Counter(k for value in objects for k in value)
    keys = _key_order([[k for k in value if uses[k] > 1] for value in objects])
    if not keys:
        return None
    fields = []
    for k in keys:
        values = [value[k] for value in objects if k in value]
        left_out = len(objects) - len(values)
        required = left_out < max(2, OPTIONAL_SHARE * len(objects))
        if all(isinstance(v, bool) for v in values):
            fields.append(Field(k, None, BOOLEAN, required))
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            fields.append(Field(k, None, NUMBER, required))
        elif all(isinstance(v, str) for v in values):
            fields.append(Field(k, _closed_values([str(v) for v in values]), FREE, required))
        else:
            return None  # nested values: no space the decoder can hold (the check still reports the format)
    return OutputSpace("json", fields=tuple(fields), compact_json=bool(compact))


def _key_order(orders: list[list[str]]) -> list[str]:
    """One order for keys written in several: a key goes before another when the objects that
    hold both put it first more often (ties: the order keys first appear in)."""
    first_seen = list(dict.fromkeys(k for order in orders for k in order))
    before: Counter[tuple[str, str]] = Counter()
    for order in orders:
        for i, a in enumerate(order):
            for b in order[i + 1:]:
                before[a, b] += 1
    wins = {k: sum(before[k, other] > before[other, k] for other in first_seen) for k in first_seen}
    return sorted(first_seen, key=lambda k: (-wins[k], first_seen.index(k)))


def dataset_output_space(prepared_dir: str | Path) -> OutputSpace | None:
    """The output space of a prepared dataset: from its manifest (`output_space`, written by
    `prepare`), else learned from its train split (a folder prepared before there was one)."""
    from .dataset import load_dataset  # dataset reads formats that read checks: import when used

    prepared_dir = Path(prepared_dir)
    manifest_path = prepared_dir / "manifest.json"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if "output_space" in manifest:
            return OutputSpace.from_dict(manifest["output_space"]) if manifest["output_space"] else None
    dataset = load_dataset([prepared_dir])
    split = "train" if "train" in dataset.splits else (dataset.splits[0] if dataset.splits else None)
    if split is None:
        return None
    return learn_output_space([ex.output_text for ex in dataset.split(split)])
