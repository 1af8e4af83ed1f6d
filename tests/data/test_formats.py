from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tunesmith.data.example import Example, Turn
from tunesmith.data.formats import FORMAT_NAMES, read_file, write_file
from tunesmith.errors import BadInputError, ExportError, TunesmithError

SINGLE = [
    Example(turns=[Turn("user", "Where is my order #123?"), Turn("model", "Category: Shipping")]),
    Example(turns=[Turn("user", 'Quotes " and\nnewlines, ünïcödé ✓'), Turn("model", "ok\ttab")]),
]
RICH = [
    Example(system="Be terse.", turns=[Turn("user", "hi"), Turn("model", "hello"), Turn("user", "bye"), Turn("model", "ciao")]),
    Example(system="Answer in JSON.", turns=[Turn("user", "x"), Turn("model", '{"a": 1}')]),
]


def suffix(fmt: str) -> str:
    return ".csv" if fmt == "csv" else ".jsonl"


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
def test_single_turn_round_trip_in_every_format(tmp_path, fmt):
    path = tmp_path / f"data{suffix(fmt)}"
    write_file(SINGLE, path, fmt)
    back = read_file(path)
    assert back.format == fmt
    assert not back.unreadable
    assert [ex.turns for ex in back.examples] == [ex.turns for ex in SINGLE]
    assert [ex.line for ex in back.examples] == ([2, 3] if fmt == "csv" else [1, 2])  # CSV: line 1 is the header; a row is numbered where it starts


@pytest.mark.parametrize("fmt", ["gemini", "openai", "sharegpt", "alpaca", "tunesmith"])
def test_system_and_multi_turn_survive_formats_that_hold_them(tmp_path, fmt):
    path = tmp_path / "rich.jsonl"
    write_file(RICH, path, fmt)
    back = read_file(path)
    assert [(ex.system, ex.turns) for ex in back.examples] == [(ex.system, ex.turns) for ex in RICH]


@pytest.mark.parametrize("fmt", ["input-output", "prompt-completion", "csv"])
def test_export_refuses_what_the_format_cannot_hold_and_names_the_example(tmp_path, fmt):
    path = tmp_path / f"out{suffix(fmt)}"
    with pytest.raises(ExportError) as err:
        write_file(SINGLE + RICH, path, fmt)
    assert RICH[0].id in err.value.message
    assert not path.exists()  # nothing half-written


def test_meta_and_ids_round_trip_when_asked(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "t-1", "input_text": "a", "output_text": "b", "timestamp": "2026-01-01"}) + "\n")
    ex = read_file(src).examples[0]
    assert ex.id == "t-1" and ex.meta["timestamp"] == "2026-01-01"
    out = tmp_path / "out.jsonl"
    write_file([ex], out, "openai", include_meta=True)
    record = json.loads(out.read_text())
    assert record["id"] == "t-1" and record["timestamp"] == "2026-01-01"
    assert record["messages"][1] == {"role": "assistant", "content": "b"}


def test_openai_roles_system_and_content_parts(tmp_path):
    path = tmp_path / "o.jsonl"
    record = {"messages": [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": [{"type": "text", "text": "he"}, {"type": "text", "text": "llo"}]},
        {"role": "assistant", "content": "yo", "weight": 0},
    ]}
    path.write_text(json.dumps(record) + "\n")
    ex = read_file(path).examples[0]
    assert ex.system == "sys"
    assert ex.turns == [Turn("user", "hello"), Turn("model", "yo")]
    write_file([ex], tmp_path / "back.jsonl", "openai")
    assert json.loads((tmp_path / "back.jsonl").read_text())["messages"][2]["weight"] == 0


def test_gemini_reads_system_instruction_and_rejects_file_parts(tmp_path):
    path = tmp_path / "g.jsonl"
    good = {"systemInstruction": {"role": "x", "parts": [{"text": "sys"}]},
            "contents": [{"role": "user", "parts": [{"text": "q"}]}, {"role": "model", "parts": [{"text": "a"}]}]}
    image = {"contents": [{"role": "user", "parts": [{"fileData": {"fileUri": "gs://b/i.png", "mimeType": "image/png"}}]}]}
    path.write_text(json.dumps(good) + "\n" + json.dumps(image) + "\n")
    result = read_file(path)
    assert result.examples[0].system == "sys"
    assert [(u.line, "fileData" in u.reason) for u in result.unreadable] == [(2, True)]


def test_sharegpt_and_alpaca_history(tmp_path):
    share = tmp_path / "s.jsonl"
    share.write_text(json.dumps({"conversations": [{"from": "system", "value": "s"}, {"from": "human", "value": "q"},
                                                   {"from": "gpt", "value": "a"}]}) + "\n")
    ex = read_file(share).examples[0]
    assert ex.system == "s" and ex.turns == [Turn("user", "q"), Turn("model", "a")]
    alp = tmp_path / "a.jsonl"
    alp.write_text(json.dumps({"instruction": "Sum", "input": "1 2", "output": "3", "history": [["hi", "hey"]]}) + "\n")
    ex = read_file(alp).examples[0]
    assert ex.turns == [Turn("user", "hi"), Turn("model", "hey"), Turn("user", "Sum\n\n1 2"), Turn("model", "3")]


def test_unknown_roles_are_kept_for_the_structure_check(tmp_path):
    path = tmp_path / "o.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "tool", "content": "t"}]}) + "\n")
    assert [t.role for t in read_file(path).examples[0].turns] == ["user", "tool"]


def test_every_bad_line_is_reported_with_its_number(tmp_path):
    path = tmp_path / "mixed.jsonl"
    lines = [
        json.dumps({"input_text": "a", "output_text": "b"}),
        "{not json",
        "",
        json.dumps([1, 2]),
        json.dumps({"input_text": 5, "output_text": "b"}),
        json.dumps({"input_text": "c", "output_text": "d"}),
    ]
    path.write_bytes(("\n".join(lines) + "\n").encode() + b'{"input_text": "\xff", "output_text": "x"}\n')
    result = read_file(path)
    assert [ex.line for ex in result.examples] == [1, 6]
    assert [u.line for u in result.unreadable] == [2, 4, 5, 7]
    assert "invalid JSON" in result.unreadable[0].reason
    assert "an array" in result.unreadable[1].reason
    assert "must be a string" in result.unreadable[2].reason
    assert "UTF-8" in result.unreadable[3].reason
    assert result.records == 6  # the blank line is not a record


def test_csv_mapping_guessing_and_bad_rows(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('text,category,extra\nhello,greet,x\n"multi\nline",ask,y\nshort,row\n')
    result = read_file(path)
    assert [ex.turns[1].text for ex in result.examples] == ["greet", "ask"]
    assert result.examples[0].meta == {"extra": "x"}
    assert [(u.line, "fields" in u.reason) for u in result.unreadable] == [(5, True)]
    mapped = read_file(path, columns={"input": "extra", "output": "text", "label": "category"})
    assert mapped.examples[0].label == "greet" and mapped.examples[0].turns[0].text == "x"


def test_csv_without_guessable_columns_is_bad_input(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text("foo\tbar\n1\t2\n")
    with pytest.raises(BadInputError) as err:
        read_file(path)
    assert "foo, bar" in err.value.message and err.value.exit_code == 2


def test_undetectable_format_and_missing_file_are_bad_input(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({"question": "q", "reply": "r"}) + "\n")
    with pytest.raises(BadInputError, match="cannot tell the format"):
        read_file(path)
    with pytest.raises(BadInputError, match="cannot read"):
        read_file(tmp_path / "missing.jsonl")


def test_json_array_file(tmp_path):
    path = tmp_path / "arr.json"
    path.write_text(json.dumps([{"prompt": "p", "completion": "c"}, "oops"]))
    result = read_file(path)
    assert len(result.examples) == 1 and result.unreadable[0].line == 2


def test_a_json_object_of_named_lists_is_read_list_by_list_with_lines(tmp_path):
    # CLINC150's shape: {"split": [[text, intent], ...]}, pretty-printed; a value beside the lists is reported.
    path = tmp_path / "data_full.json"
    path.write_text("\n" + json.dumps({"train": [["hi", "greet"], {"input": "bye", "output": "part"}],
                                       "val": [["yo", "greet"], ["x"]], "version": "1.0"}, indent=2))
    result = read_file(path)
    assert result.format == "input-output" and result.records == 5
    assert [(ex.line, ex.split, ex.input_text, ex.output_text) for ex in result.examples] == [
        (4, "train", "hi", "greet"), (8, "train", "bye", "part"), (14, "val", "yo", "greet")]
    lines = path.read_text().splitlines()
    assert [lines[ex.line - 1].strip() for ex in result.examples] == ["[", "{", "["]  # where each record opens
    assert [(u.line, u.reason) for u in result.unreadable] == [
        (18, "expected a JSON object, found an array"),
        (22, 'expected a list of records under "version", found a string')]
    assert lines[17].strip() == "[" and lines[21].strip().startswith('"version"')


def test_a_json_document_on_one_line_numbers_its_records_in_order(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"test": [["a", "b"], ["c", "d"]], "dev": [["e", "f"]]}) + "\n")
    result = read_file(path)
    assert [(ex.line, ex.split) for ex in result.examples] == [(1, "test"), (2, "test"), (3, "dev")]


def test_a_json_file_of_one_record_or_of_json_lines(tmp_path):
    one = tmp_path / "one.json"
    one.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"},
                                            {"role": "assistant", "content": "yo"}]}, indent=2))
    result = read_file(one)  # an object with a list in it that is a record, not a list of records
    assert result.format == "openai" and [(ex.line, ex.split) for ex in result.examples] == [(1, None)]
    lines = tmp_path / "lines.json"
    lines.write_text('{"input": "a", "output": "b"}\n{"input": "c"\n')
    result = read_file(lines)  # JSON Lines named .json: line by line, the bad line reported
    assert [ex.line for ex in result.examples] == [1] and [u.line for u in result.unreadable] == [2]


def test_the_lists_of_a_json_object_are_the_dataset_splits(tmp_path):
    from tunesmith.data.dataset import load_dataset

    path = tmp_path / "data.json"
    path.write_text(json.dumps({"train": [["a", "x"], ["b", "y"]], "val": [["c", "x"]], "oos_test": [["d", "z"]]}))
    dataset = load_dataset([path])
    assert dataset.splits == ["train", "validation", "oos_test"]
    assert [ex.split for ex in dataset.examples] == ["train", "train", "validation", "oos_test"]
    other = tmp_path / "more" / "data.json"
    other.parent.mkdir()
    other.write_text(json.dumps({"train": [["e", "x"]]}))
    dataset = load_dataset([path, other])  # two "train" lists: kept apart by file and list
    assert dataset.splits == ["data.json:train", "data.json:val", "data.json:oos_test"]
    assert len(dataset.split("data.json:train")) == 3 and len(dataset.examples) == 5


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=4),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                           max_leaves=6)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=st.dictionaries(st.text("abxyz", max_size=5), st.lists(json_values, max_size=4) | json_values,
                                 min_size=1, max_size=4)
       | st.lists(json_values, max_size=5),
       indent=st.sampled_from([None, 1, 4, "\t"]), lead=st.sampled_from(["", "\n", " \r\n "]))
@example(document=[["", ""]], indent=None, lead="")  # a pair is an example, not an unreadable record
def test_any_json_document_loses_no_record_and_points_at_its_lines(tmp_path, document, indent, lead):
    path = tmp_path / "doc.json"
    text = lead + json.dumps(document, indent=indent) + "\n"
    path.write_text(text)
    try:
        result = read_file(path)
    except TunesmithError:  # a format that cannot be told from the records
        return
    if isinstance(document, list):
        expected = len(document)
    elif any(isinstance(v, list) for v in document.values()):  # no format's keys are made of "abxyz"
        expected = sum(len(v) if isinstance(v, list) else 1 for v in document.values())
    else:
        expected = 1
    assert result.records == expected
    if "\n" in text.strip():  # each record opens on the line it is numbered by
        lines = text.splitlines()
        for u in result.unreadable:
            assert u.raw[0] in lines[u.line - 1], (u, lines)
    else:
        # numbered 1..n in order ([text, label] pairs are examples, the rest unreadable)
        assert sorted([ex.line for ex in result.examples] + [u.line for u in result.unreadable]) == \
            list(range(1, expected + 1))


def test_clinc150_as_it_ships(shared_data):
    from tunesmith.data.dataset import load_dataset

    dataset = load_dataset([shared_data / "clinc150" / "data_full.json"])
    assert not dataset.unreadable and len(dataset.examples) == 23_700
    sizes = {name: len(dataset.split(name)) for name in dataset.splits}
    assert sizes == {"train": 15_000, "validation": 3_000, "test": 4_500, "oos_train": 100, "oos_val": 100,
                     "oos_test": 1_000}
    first = dataset.split("train")[0]
    text = (shared_data / "clinc150" / "data_full.json").read_text().splitlines()
    assert text[first.line - 1].strip() == "[" and first.input_text in text[first.line]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".jsonl", ".json", ".csv", ".tsv"]))
def test_arbitrary_bytes_raise_only_our_errors_and_lose_no_line(tmp_path, data, suffix):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    try:
        result = read_file(path)
    except TunesmithError:
        return
    if suffix == ".jsonl":
        text = data.decode("utf-8", errors="surrogateescape")
        if data[:2] not in (b"\xff\xfe", b"\xfe\xff"):
            non_blank = sum(1 for line in text.removeprefix("\ufeff").split("\n") if line.strip())
            assert result.records == non_blank


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(st.dictionaries(st.sampled_from(["input_text", "output_text", "messages", "contents", "x"]),
                                        st.one_of(st.text(max_size=5), st.integers(), st.none(),
                                                  st.lists(st.text(max_size=3), max_size=2)), max_size=3),
                        min_size=1, max_size=8))
def test_arbitrary_records_are_read_or_reported(tmp_path, records):
    path = tmp_path / "fuzz.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    try:
        result = read_file(path)
    except TunesmithError:
        return
    assert result.records == len(records)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.tuples(st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=30)), min_size=1, max_size=5),
       fmt=st.sampled_from(FORMAT_NAMES))
def test_round_trip_property(tmp_path, texts, fmt):
    examples = [Example(turns=[Turn("user", a), Turn("model", b)]) for a, b in texts]
    path = tmp_path / f"p{suffix(fmt)}"
    write_file(examples, path, fmt)
    back = read_file(path, format=fmt)
    if fmt == "csv":  # CSV cannot tell "\r\n" from "\n" inside a quoted cell after universal newlines
        return
    assert [ex.turns for ex in back.examples] == [ex.turns for ex in examples]
