"""Reading and writing every supported format.

`read_file` turns one file into examples plus the lines it could not read, each with a
reason: count in = examples + unreadable, always. `write_file` writes examples in a
format, atomically, and refuses (naming the example) rather than drop what the format
cannot hold."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import BadInputError, ExportError
from ...fileio import atomic_write_text
from ..example import Example
from . import alpaca, canonical, csv_format, gemini, input_output, openai, prompt_completion, sharegpt
from ._common import CannotRepresent, RecordError

# Detection tries these in order; the canonical form first because its "turns" key is unambiguous.
JSON_FORMATS = {
    m.NAME: m for m in (canonical, gemini, openai, sharegpt, alpaca, input_output, prompt_completion)
}
FORMAT_NAMES = (*JSON_FORMATS, csv_format.NAME)
READABLE_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv")
_DETECT_SAMPLE = 50


@dataclass(slots=True, frozen=True)
class Unreadable:
    file: str
    line: int
    reason: str
    raw: str = ""  # the line as read, so that `prepare` can quarantine it whole


@dataclass
class ReadResult:
    path: str
    format: str
    examples: list[Example] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)

    @property
    def records(self) -> int:
        """Records in the file (blank lines are not records)."""
        return len(self.examples) + len(self.unreadable)


def read_file(path: str | Path, format: str | None = None, columns: dict[str, str] | None = None) -> ReadResult:
    path = str(path)
    if format is not None and format not in FORMAT_NAMES:
        raise BadInputError(f"unknown format {format!r}", f"choose one of {', '.join(FORMAT_NAMES)}")
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    text_or_lines = _decode(raw)
    is_csv = format == csv_format.NAME or (format is None and path.lower().endswith((".csv", ".tsv", ".tab")))
    if is_csv:
        return _read_csv(path, text_or_lines, columns)
    return _read_json_records(path, text_or_lines, format)


def _decode(raw: bytes) -> list[str]:
    """Lines of text. Invalid UTF-8 is kept as surrogate escapes so the line can be
    reported, not guessed at; UTF-16 files (with a byte-order mark) are decoded as such."""
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return raw.decode("utf-16").splitlines()
        except UnicodeDecodeError:
            pass
    if raw[:3] == b"\xef\xbb\xbf":
        raw = raw[3:]
    return raw.decode("utf-8", errors="surrogateescape").split("\n")


def _has_bad_bytes(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _has_lone_surrogate(value: object, text: str) -> bool:
    """Whether a parsed JSON value holds a `\\ud800`-style escape of half a character: not
    Unicode text, so it could neither be trained on nor written as UTF-8. Only lines that
    spell such an escape are looked at closely."""
    if "\\ud" not in text.lower():
        return False
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


_LONE_SURROGATE = "a string holds an unpaired surrogate escape (\\ud800-\\udfff), which is not text"


def _read_csv(path: str, lines: list[str], columns: dict[str, str] | None) -> ReadResult:
    result = ReadResult(path, csv_format.NAME)
    for line, item, end in csv_format.read_rows("\n".join(lines), path, columns):
        if isinstance(item, str):
            result.unreadable.append(Unreadable(path, line, item, "\n".join(lines[line - 1 : end])))
        else:
            item.source, item.line = path, line
            result.examples.append(item)
    return result


def _parse_lines(path: str, lines: list[str]) -> list[tuple[int, object, str, str | None]]:
    """(line, parsed JSON value or Unreadable, the record as read, the list it came from) for
    every record: a JSONL file's non-blank lines, or the records of a .json file holding one
    JSON document (see _document_records)."""
    whole = "\n".join(lines)
    if path.lower().endswith(".json") and whole.strip()[:1] in ("[", "{"):
        document = _json_document(path, whole)
        if document is not None:
            return _document_records(whole, document)
    parsed: list[tuple[int, object, str, str | None]] = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        if _has_bad_bytes(text):
            parsed.append((number, Unreadable(path, number, "invalid UTF-8", text), text, None))
            continue
        try:
            parsed.append((number, json.loads(text), text, None))
        except (json.JSONDecodeError, RecursionError) as exc:
            reason = f"invalid JSON ({exc.msg} at column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else "invalid JSON (nested too deeply)"
            parsed.append((number, Unreadable(path, number, reason, text), text, None))
    return parsed


def _json_document(path: str, text: str) -> object | None:
    """The .json file's content as one JSON value; None for an object that does not parse
    whole, which is JSON Lines named .json (read line by line). A file that opens with "["
    must be one array."""
    is_array = text.lstrip().startswith("[")
    if _has_bad_bytes(text):
        if is_array:
            raise BadInputError(f"{path}: the file is not valid UTF-8")
        return None
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        if not is_array:
            return None
        reason = f"{exc.lineno}: invalid JSON ({exc.msg})" if isinstance(exc, json.JSONDecodeError) \
            else " invalid JSON (nested too deeply)"
        raise BadInputError(f"{path}:{reason}", "fix the file, or write it as JSONL") from None


def _document_records(text: str, document: object) -> list[tuple[int, object, str, str | None]]:
    """The records of one JSON document: an array's elements; an object that is itself a record
    (of a format detect_format knows); or an object of named lists, such as {"train": [...],
    "val": [...]}, whose lists are read in order, each record remembering its list's name (the
    dataset makes it the record's split). A value beside the lists that is not a list is
    reported, not skipped. Each record is numbered by the line it starts on; in a document
    written on one line, by its place in the document (1..n)."""
    start = _SPACE.match(text).end()
    if isinstance(document, list):
        parts: list[tuple[int, str | None, object]] = [(at, None, value) for at, value in _elements(text, start)]
    elif not isinstance(document, dict) or detect_format([document]) is not None \
            or not any(isinstance(value, list) for value in document.values()):
        parts = [(start, None, document)]
    else:
        parts = []
        for key, at, value in _members(text, start):
            if text[at] == "[":
                parts += [(element_at, key, element) for element_at, element in _elements(text, at)]
            else:
                parts.append((at, key, _NotAList(value)))
    one_line = "\n" not in text.strip()
    records, line, counted = [], 1, 0
    for number, (at, key, value) in enumerate(parts, start=1):
        line, counted = line + text.count("\n", counted, at), at
        raw = json.dumps(value.value if isinstance(value, _NotAList) else value, ensure_ascii=True)
        records.append((number if one_line else line, value, raw, key))
    return records


# Walking a document that json.loads has accepted, to find where each record starts.
_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def _elements(text: str, at: int) -> list[tuple[int, object]]:
    """The array opening at text[at]: each element's start and value."""
    out: list[tuple[int, object]] = []
    at = _SPACE.match(text, at + 1).end()
    while text[at] != "]":
        value, end = _DECODER.raw_decode(text, at)
        out.append((at, value))
        at = _SPACE.match(text, end).end()
        if text[at] == ",":
            at = _SPACE.match(text, at + 1).end()
    return out


def _members(text: str, at: int) -> list[tuple[str, int, object]]:
    """The object opening at text[at]: each member's key, value start and value, in order (a
    repeated key too)."""
    out: list[tuple[str, int, object]] = []
    at = _SPACE.match(text, at + 1).end()
    while text[at] != "}":
        key, end = _DECODER.raw_decode(text, at)
        at = _SPACE.match(text, _SPACE.match(text, end).end() + 1).end()  # past the ":"
        value, end = _DECODER.raw_decode(text, at)
        out.append((key, at, value))
        at = _SPACE.match(text, end).end()
        if text[at] == ",":
            at = _SPACE.match(text, at + 1).end()
    return out


@dataclass(slots=True, frozen=True)
class _NotAList:
    """A value beside the lists of a JSON object of lists (a "version" field, say)."""
    value: object


def _as_record(value: object) -> object:
    """A [input, output] pair of strings (CLINC150's [text, intent]) as an input-output record."""
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return {"input_text": value[0], "output_text": value[1]}
    return value


def detect_format(records: list[dict]) -> str | None:
    """The format most of the first records look like, or None."""
    sample = records[:_DETECT_SAMPLE]
    votes = {name: sum(1 for r in sample if module.detect(r)) for name, module in JSON_FORMATS.items()}
    best = max(votes, key=lambda name: votes[name])
    return best if votes[best] else None


def _read_json_records(path: str, lines: list[str], format: str | None) -> ReadResult:
    parsed = _parse_lines(path, lines)
    if format in (None, input_output.NAME):  # pairs are input-output records
        parsed = [(number, _as_record(value), text, part) for number, value, text, part in parsed]
    objects = [value for _, value, _, _ in parsed if isinstance(value, dict)]
    if format is None:
        format = detect_format(objects)
        if format is None and objects:
            keys = ", ".join(sorted(objects[0])[:8]) or "none"
            raise BadInputError(
                f"{path}: cannot tell the format (the first record's fields: {keys})",
                f"name it with --format ({', '.join(FORMAT_NAMES)})",
            )
        format = format or input_output.NAME  # an empty file: any format reads it
    module = JSON_FORMATS[format]
    result = ReadResult(path, format)
    for number, value, text, part in parsed:
        if isinstance(value, Unreadable):
            result.unreadable.append(value)
            continue
        if isinstance(value, _NotAList):
            reason = f'expected a list of records under "{part}", found {_json_type(value.value)}'
            result.unreadable.append(Unreadable(path, number, reason, text))
            continue
        if not isinstance(value, dict):
            reason = f"expected a JSON object, found {_json_type(value)}"
            result.unreadable.append(Unreadable(path, number, reason, text))
            continue
        if _has_lone_surrogate(value, text):
            result.unreadable.append(Unreadable(path, number, _LONE_SURROGATE, text))
            continue
        try:
            example = module.parse(value)
        except (RecordError, RecursionError) as exc:
            reason = f"not a valid {format} record: {exc if isinstance(exc, RecordError) else 'nested too deeply'}"
            result.unreadable.append(Unreadable(path, number, reason, text))
            continue
        example.source, example.line, example.split = path, number, part
        result.examples.append(example)
    return result


def _json_type(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")


def to_record(example: Example, format: str, include_meta: bool = False) -> dict:
    """One example as a record of `format` (CannotRepresent if it does not fit)."""
    module = csv_format if format == csv_format.NAME else JSON_FORMATS[format]
    record = module.to_record(example)
    if include_meta and format != canonical.NAME:
        record = {**{k: v for k, v in example.meta.items() if k not in record}, **record}
    return record


def write_file(examples: list[Example], path: str | Path, format: str, include_meta: bool = False) -> None:
    """Write all examples or nothing: the first one the format cannot hold stops the write."""
    path = str(path)
    if format not in FORMAT_NAMES:
        raise BadInputError(f"unknown format {format!r}", f"choose one of {', '.join(FORMAT_NAMES)}")
    records = []
    for ex in examples:
        try:
            records.append(to_record(ex, format, include_meta))
        except CannotRepresent as exc:
            raise ExportError(
                f"cannot write example {ex.id} ({ex.where}) as {format}: {exc}",
                "choose a format that can hold it (gemini, openai and sharegpt hold system instructions and many turns)",
            ) from None
    if format == csv_format.NAME:
        text = csv_format.write_rows(records, path)
    else:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    atomic_write_text(path, text)
