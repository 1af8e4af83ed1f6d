import pytest

from tunesmith.data.json_lines import json_lines
from tunesmith.errors import BadInputError


def test_each_record_comes_with_its_file_and_line(tmp_path):
    path = tmp_path / "labels.jsonl"
    path.write_text('{"a": 1}\n\n  \n[2]\n', encoding="utf-8")
    assert list(json_lines(path)) == [(f"{path}:1", {"a": 1}), (f"{path}:4", [2])]


def test_a_bad_line_is_named(tmp_path):
    path = tmp_path / "labels.jsonl"
    path.write_text('{"a": 1}\n{"a": \n', encoding="utf-8")
    with pytest.raises(BadInputError, match=rf"{path}:2: not valid JSON"):
        list(json_lines(path))


@pytest.mark.parametrize("content", [None, b"\xff\xfe{}"])
def test_a_missing_or_undecodable_file_is_bad_input(tmp_path, content):
    path = tmp_path / "labels.jsonl"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(BadInputError, match=str(path)):
        list(json_lines(path))
