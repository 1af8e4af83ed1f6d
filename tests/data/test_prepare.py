from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from tunesmith.data.check import check
from tunesmith.data.dataset import load_dataset
from tunesmith.data.prepare import PrepareOptions, prepare
from tunesmith.errors import BadInputError

from ._factory import CATEGORIES, ticket_records, write_jsonl

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)


def read_split(folder, name):
    return [json.loads(line) for line in (folder / f"{name}.jsonl").read_text().splitlines()]


@pytest.fixture
def raw(tmp_path):
    records = ticket_records()
    records.append(dict(records[0]))  # an exact duplicate
    records.append({**records[1], "output_text": "Category: Shipping\nPriority: Low\nAction: Reply"})  # a conflict
    records.append({**records[2], "output_text": "billing, I think"})  # format drift
    records.append({**records[3], "timestamp": "2019-01-01T00:00:00Z"})  # stale (and a conflict-free near copy)
    records.append({"input_text": "Mail me at jane.doe@example.com", "output_text": "Category: Account\nPriority: Low\nAction: Reply",
                    "timestamp": "2026-05-05"})
    path = write_jsonl(tmp_path / "raw.jsonl", records)
    with open(path, "a") as f:
        f.write("{broken json\n")
    return path


def test_same_input_and_seed_give_byte_identical_output(raw, tmp_path):
    a = prepare([raw], tmp_path / "a", PrepareOptions(seed=3))
    b = prepare([raw], tmp_path / "b", PrepareOptions(seed=3))
    c = prepare([raw], tmp_path / "c", PrepareOptions(seed=4))
    for name in ("train.jsonl", "validation.jsonl", "test.jsonl", "quarantine.jsonl", "manifest.json"):
        assert (a.out_dir / name).read_bytes() == (b.out_dir / name).read_bytes(), name
    assert (a.out_dir / "test.jsonl").read_bytes() != (c.out_dir / "test.jsonl").read_bytes()


def test_nothing_is_lost(raw, tmp_path):
    result = prepare([raw], tmp_path / "p", PrepareOptions(dedupe=True, drop_conflicts=True, enforce_template=True,
                                                           max_age_days=365, redact_pii=True, oversample=True), now=NOW)
    c = result.counts
    lines = {n: len((tmp_path / "p" / f"{n}.jsonl").read_text().splitlines()) for n in ("train", "validation", "test", "quarantine")}
    assert lines == {n: c[n] for n in lines}
    assert c["input_records"] == len(raw.read_text().splitlines())
    assert c["input_records"] == c["train"] + c["validation"] + c["test"] + c["quarantine"] - c["oversampled_copies"]
    quarantine = read_split(tmp_path / "p", "quarantine")
    assert {q["fix"] for q in quarantine} >= {"unreadable", "dedupe", "drop-conflicts", "enforce-template", "max-age"}
    unreadable = next(q for q in quarantine if q["fix"] == "unreadable")
    assert unreadable["raw"] == "{broken json" and unreadable["line"] == c["input_records"]
    fixes = {f["fix"]: f for f in result.manifest["fixes"]}
    assert fixes["redact-pii"]["count"] == 1
    assert "[EMAIL]" in json.dumps([read_split(tmp_path / "p", s) for s in ("train", "validation", "test")])


def test_fixes_are_opt_in(raw, tmp_path):
    result = prepare([raw], tmp_path / "p")
    assert result.manifest["fixes"] == []
    assert result.counts["quarantine"] == 1  # only the unreadable line


def test_split_is_stratified_and_shares_are_close(raw, tmp_path):
    result = prepare([raw], tmp_path / "p", PrepareOptions(validation=0.15, test=0.10))
    dist = result.manifest["label_distribution"]
    for label, total in CATEGORIES.items():
        assert dist["test"].get(label, 0) == pytest.approx(0.10 * total, abs=1.5), label
        assert dist["validation"].get(label, 0) == pytest.approx(0.15 * total, abs=1.5), label
    assert dist["test"]["Security"] >= 1  # the rare class is still evaluated


def test_near_duplicates_land_in_the_same_split(tmp_path):
    records = ticket_records()
    base = "Classify the following customer support ticket: 'The mobile app crashes every time I open the settings page after the latest update on my phone'"
    for i in range(12):  # twelve paraphrases of one ticket
        records.append({"input_text": base + ("!" * i) + (" please" if i % 2 else ""),
                        "output_text": "Category: Technical\nPriority: High\nAction: Reply"})
    raw = write_jsonl(tmp_path / "raw.jsonl", records)
    prepare([raw], tmp_path / "p", PrepareOptions(test=0.3, validation=0.3))
    homes = {s for s in ("train", "validation", "test") for r in read_split(tmp_path / "p", s)
             if "settings page" in r["turns"][0]["text"]}
    assert len(homes) == 1


def test_oversample_only_touches_train_with_unique_ids(raw, tmp_path):
    result = prepare([raw], tmp_path / "p", PrepareOptions(oversample=True))
    train = read_split(tmp_path / "p", "train")
    ids = [r["id"] for r in train]
    assert len(ids) == len(set(ids))
    security = sum(1 for r in train if r["label"] == "Security")
    assert security > CATEGORIES["Security"]
    assert result.manifest["label_distribution"]["test"]["Security"] <= 2


def test_prepared_folder_checks_clean_and_detects_a_broken_seal(raw, tmp_path):
    folder = tmp_path / "p"
    prepare([raw], folder, PrepareOptions(dedupe=True, drop_conflicts=True, enforce_template=True))
    report = check([folder], now=NOW)
    codes = {f.code for f in report.findings}
    assert "seal-broken" not in codes and "split-leak" not in codes
    test_file = folder / "test.jsonl"
    lines = test_file.read_text().splitlines()
    record = json.loads(lines[1])
    record["turns"][1]["text"] = "Category: Billing\nPriority: Low\nAction: Reply"
    lines[1] = json.dumps(record)
    test_file.write_text("\n".join(lines) + "\n")
    broken = [f for f in check([folder], now=NOW).findings if f.code == "seal-broken"]
    assert len(broken) == 1 and broken[0].severity == "error"
    assert [(loc.file, loc.line) for loc in broken[0].locations] == [(str(test_file), 2)]


def test_refuses_to_overwrite_and_rejects_bad_shares(raw, tmp_path):
    prepare([raw], tmp_path / "p")
    with pytest.raises(BadInputError, match="already holds a prepared dataset"):
        prepare([raw], tmp_path / "p")
    prepare([raw], tmp_path / "p", PrepareOptions(seed=1), force=True)
    with pytest.raises(ValidationError):
        PrepareOptions(validation=0.6, test=0.5)


def test_split_files_are_readable_canonical_jsonl(raw, tmp_path):
    prepare([raw], tmp_path / "p")
    dataset = load_dataset([tmp_path / "p"])
    assert dataset.splits == ["train", "validation", "test"]
    assert not dataset.unreadable
    assert all(ex.meta.get("origin", "").startswith(str(raw)) for ex in dataset.examples)
