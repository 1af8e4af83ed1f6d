"""`csv`: comma- or tab-separated rows with a header; columns map to the example's fields.

The mapping names which column holds the input, the output and, optionally, the system
instruction, label and timestamp. Unmapped columns are kept in meta. Without a mapping,
the input and output columns are guessed from common names (text→category, instruction→
response, prompt→completion, …); a file where no guess fits is an error that lists them."""

from __future__ import annotations

import csv
import io

from ...errors import BadInputError
from ..example import MODEL, USER, Example, Turn
from ._common import single_turn

NAME = "csv"
FIELDS = ("input", "output", "system", "label", "timestamp", "id")
_GUESS = {
    "input": ("input_text", "input", "prompt", "instruction", "question", "query", "text", "utterance"),
    "output": ("output_text", "output", "completion", "response", "answer", "category", "label", "intent"),
}


def delimiter_for(path: str) -> str:
    return "\t" if path.lower().endswith((".tsv", ".tab")) else ","


def resolve_columns(header: list[str], columns: dict[str, str] | None, path: str) -> dict[str, str]:
    """field -> column name, checked against the header."""
    mapping = dict(columns or {})
    unknown = set(mapping) - set(FIELDS)
    if unknown:
        raise BadInputError(
            f"unknown column mapping field(s) {', '.join(sorted(unknown))}",
            f"map any of {', '.join(FIELDS)}, e.g. --columns input=text,output=category",
        )
    lowered = {h.lower(): h for h in header}
    for field in ("input", "output"):
        if field not in mapping:
            guess = next((lowered[c] for c in _GUESS[field] if c in lowered and lowered[c] not in mapping.values()), None)
            if guess is None:
                raise BadInputError(
                    f"{path}: cannot tell which column holds the {field} (columns: {', '.join(header)})",
                    "name it, e.g. --columns input=text,output=category",
                )
            mapping[field] = guess
    missing = [c for c in mapping.values() if c not in header]
    if missing:
        raise BadInputError(
            f"{path}: no column named {', '.join(missing)} (columns: {', '.join(header)})",
            "check --columns against the header line",
        )
    return mapping


def read_rows(text: str, path: str, columns: dict[str, str] | None):
    """Yield (line, Example | reason, last line) for every data row: the row's text is lines
    `line` to `last line` (1-based, inclusive)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter_for(path))
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise BadInputError(f"{path}:1: cannot read the header: {exc}") from None
    mapping = resolve_columns(header, columns, path)
    index = {h: i for i, h in enumerate(header)}
    by_field = {field: index[col] for field, col in mapping.items()}
    other = [(h, i) for h, i in index.items() if h not in mapping.values()]
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield line, f"malformed CSV: {exc}", reader.line_num
            continue
        if not row or row == [""]:
            continue  # a blank line is not a record
        if len(row) != len(header):
            yield line, f"row has {len(row)} fields, the header has {len(header)}", reader.line_num
            continue
        if any("\udc80" <= ch <= "\udcff" for cell in row for ch in cell):
            yield line, "invalid UTF-8", reader.line_num
            continue
        get = {field: row[i] for field, i in by_field.items()}
        yield line, Example(
            turns=[Turn(USER, get["input"]), Turn(MODEL, get["output"])],
            system=get.get("system") or None,
            label=get.get("label") or None,
            timestamp=get.get("timestamp") or None,
            id=get.get("id", ""),
            meta={h: row[i] for h, i in other},
        ), reader.line_num


def to_record(example: Example) -> dict:
    """A row as a dict; `write_rows` lays rows out under one header."""
    user, model = single_turn(example, NAME)
    row = {"input": user, "output": model}
    for field in ("system", "label", "timestamp"):
        if getattr(example, field):
            row[field] = getattr(example, field)
    return row


def write_rows(rows: list[dict], path: str) -> str:
    header: dict[str, None] = {"input": None, "output": None}
    for row in rows:
        header.update(dict.fromkeys(row))
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter_for(path), lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if row.get(h) is None else str(row[h]) for h in header])
    return out.getvalue()
