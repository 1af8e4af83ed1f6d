"""Nothing crashes, nothing is lost: arbitrary bytes and arbitrary JSON through the whole
chain `data check FILE -> data prepare -> data check DIR -> data export`, in process."""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tunesmith.cli import app
from tunesmith.data.prepare import raw_record
from tunesmith.errors import TunesmithError

runner = CliRunner()

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
_text = st.text(max_size=40)  # any code point, surrogates included
_record = st.fixed_dictionaries({"input_text": _text, "output_text": _text},
                                optional={"id": _json, "timestamp": _json, "extra": _json})


def _line(value) -> bytes:
    # ensure_ascii: lone surrogates are written as \ud800 escapes, as another tool would
    return json.dumps(value, ensure_ascii=True).encode("ascii")


_lines = st.one_of(
    _record.map(_line),
    _json.map(_line),
    st.binary(min_size=1, max_size=40).map(lambda b: b.replace(b"\n", b" ")),
    _text.map(lambda t: t.replace("\n", " ").encode("utf-8", "surrogatepass")),
)
_csv_rows = st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b" ")), max_size=12)


def _run(*args: str) -> int:
    """The exit code the `tunesmith` command would give (its entry point maps our errors)."""
    result = runner.invoke(app, list(args))
    if isinstance(result.exception, TunesmithError):
        return result.exception.exit_code
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code


def _records_in(data: bytes) -> int:
    return sum(1 for line in data.split(b"\n") if line.decode("utf-8", "surrogateescape").strip())


def _chain(name: str, data: bytes, expect_records: int | None) -> None:
    tmp = Path(tempfile.mkdtemp())
    try:
        source = tmp / name
        source.write_bytes(data)
        assert _run("data", "check", str(source)) in (0, 1, 2)
        out = tmp / "prepared"
        code = _run("data", "prepare", str(source), "--out", str(out), "--validation", "0.2", "--test", "0.2",
                    "--dedupe")
        assert code in (0, 1, 2)
        if code != 0:
            assert not out.exists()  # no half-prepared folder
            return
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        lines = {s: len((out / f"{s}.jsonl").read_bytes().split(b"\n")) - 1
                 for s in ("train", "validation", "test", "quarantine")}
        assert lines == {s: manifest["counts"][s] for s in lines}
        if expect_records is not None:
            assert manifest["counts"]["input_records"] == expect_records == sum(lines.values())
        for line in (out / "quarantine.jsonl").read_bytes().split(b"\n")[:-1]:
            q = json.loads(line)
            if "raw_base64" in q:  # undecodable bytes are kept as they were
                assert base64.b64decode(q["raw_base64"]) in data  # a line, or a CSV row over several
        assert _run("data", "check", str(out)) in (0, 1)  # a prepared folder is always readable
        assert _run("data", "export", str(out), "--to", "input-output", "--out", str(tmp / "export")) in (0, 1, 2)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(_lines, max_size=12))
def test_arbitrary_jsonl_lines_go_through_the_chain(lines):
    anchor = _line({"input_text": "where is my card", "output_text": "card_arrival"})  # so the format is known
    data = b"\n".join([anchor, *lines]) + b"\n"
    expect = None if data[:2] in (b"\xff\xfe", b"\xfe\xff") else _records_in(data)
    _chain("train.jsonl", data, expect)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.dictionaries(st.text("abdxyz_", max_size=8),  # no format's keys: the object is not one record
                       st.lists(_record | _json | st.tuples(_text, _text).map(list), max_size=5) | _json, max_size=4),
       st.sampled_from([None, 2]))
def test_a_json_document_of_named_lists_goes_through_the_chain(lists, indent):
    # CLINC150's shape: {"train": [[text, intent], ...], ...}; a value beside the lists is one reported record.
    document = {"anchor_list": [{"input_text": "where is my card", "output_text": "card_arrival"}], **lists}
    data = json.dumps(document, ensure_ascii=True, indent=indent).encode("ascii")
    _chain("data.json", data, sum(len(v) if isinstance(v, list) else 1 for v in document.values()))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_csv_rows)
def test_arbitrary_csv_rows_go_through_the_chain(rows):
    data = b"text,category\n" + b"".join(row + b"\n" for row in rows)
    _chain("train.csv", data, None)  # a quoted field may hold several lines: records are not lines


def test_an_undecodable_line_is_quarantined_with_its_bytes(tmp_path):
    bad = b'{"input_text": "caf\xe9 ol\xe9", "output_text": "a"}'
    good = b'{"input_text": "hello", "output_text": "a"}'
    source = tmp_path / "train.jsonl"
    source.write_bytes(b"\n".join([good, bad, good.replace(b"hello", b"hi")]) + b"\n")
    assert _run("data", "check", str(source)) == 1  # an unreadable line is an error finding
    assert _run("data", "prepare", str(source), "--out", str(tmp_path / "p")) == 0
    [q] = [json.loads(line) for line in (tmp_path / "p" / "quarantine.jsonl").read_text().splitlines()]
    assert base64.b64decode(q["raw_base64"]) == bad
    assert q["raw"] == bad.decode("utf-8", "replace") and q["reason"] == "invalid UTF-8"


@given(st.binary(max_size=60))
def test_raw_record_keeps_any_line_losslessly(line):
    text = line.decode("utf-8", "surrogateescape")
    record = raw_record(text)
    json.dumps(record, ensure_ascii=False).encode("utf-8")  # writable as UTF-8
    original = base64.b64decode(record["raw_base64"]) if "raw_base64" in record else record["raw"].encode("utf-8")
    assert original == line
