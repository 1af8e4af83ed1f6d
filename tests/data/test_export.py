from __future__ import annotations

import json

import pytest

from tunesmith.data.export import export, validate_gemini_record
from tunesmith.data.prepare import prepare
from tunesmith.errors import BadInputError, ExportError

from ._factory import ticket_records, write_jsonl


@pytest.fixture
def prepared(tmp_path):
    raw = write_jsonl(tmp_path / "raw.jsonl", ticket_records())
    prepare([raw], tmp_path / "prepared")
    return tmp_path / "prepared"


def test_gemini_export_passes_googles_validator_rules(prepared, tmp_path):
    summary = export(prepared, "gemini", tmp_path / "g", target="vertex/gemini-2.5-flash")
    manifest = json.loads((prepared / "manifest.json").read_text())
    assert summary["dataset_version"] == manifest["dataset_version"]
    for split in ("train", "validation"):
        records = [json.loads(line) for line in (tmp_path / "g" / f"{split}.jsonl").read_text().splitlines()]
        assert len(records) == manifest["counts"][split]
        assert all(validate_gemini_record(r) == [] for r in records)
        assert records[0]["contents"][0]["role"] == "user" and records[0]["contents"][1]["role"] == "model"
    assert not (tmp_path / "g" / "test.jsonl").exists()  # the test split stays sealed


@pytest.mark.parametrize("record, error", [
    ("x", "invalid_input"),
    ({}, "missing_contents_list"),
    ({"contents": []}, "invalid_contents_list"),
    ({"contents": [{"role": "user"}]}, "content_item_missing_key"),
    ({"contents": [{"role": "bot", "parts": [{"text": "a"}]}]}, "unrecognized_role"),
    ({"contents": [{"role": "user", "parts": [{"text": " "}]}]}, "missing_text"),
    ({"contents": [{"role": "user", "parts": [{"text": "a"}]}, {"role": "user", "parts": [{"text": "b"}]}]}, "consecutive_turns"),
    ({"contents": [{"role": "user", "parts": [{"text": "a"}]}], "systemInstruction": {"parts": []}}, "invalid_system_instruction"),
])
def test_validator_error_keys(record, error):
    assert error in validate_gemini_record(record)


def test_export_refuses_a_broken_seal(prepared, tmp_path):
    with open(prepared / "train.jsonl", "a") as f:
        f.write(json.dumps({"turns": [{"role": "user", "text": "new"}, {"role": "model", "text": "x"}]}) + "\n")
    with pytest.raises(ExportError, match="changed after it was sealed"):
        export(prepared, "gemini", tmp_path / "g")


def test_export_refuses_what_the_format_cannot_hold(tmp_path):
    raw = write_jsonl(tmp_path / "raw.jsonl", [
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"q{i}"},
                      {"role": "assistant", "content": "a"}]} for i in range(20)])
    prepare([raw], tmp_path / "p")
    with pytest.raises(ExportError, match="system instruction"):
        export(tmp_path / "p", "input-output", tmp_path / "out")
    export(tmp_path / "p", "openai", tmp_path / "out2")


def test_export_needs_a_prepared_folder(tmp_path):
    with pytest.raises(BadInputError, match="not a prepared dataset"):
        export(tmp_path, "gemini", tmp_path / "out")
