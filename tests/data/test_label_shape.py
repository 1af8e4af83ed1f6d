"""Label-shape drift: outputs of a classification set written in another shape than a label."""

from __future__ import annotations

import csv
import json
import random

import pytest

from tunesmith.data.check import check
from tunesmith.data.dataset import load_dataset
from tunesmith.data.label_shape import canonical_label, find_label_drift, learn_label_shape
from tunesmith.data.prepare import PrepareOptions, prepare

from ._factory import write_jsonl

CLASSES = ["card_arrival", "lost_or_stolen_card", "top_up_failed", "refund_not_showing_up", "exchange_rate"]


def _labels(n_each: int = 12) -> list[str]:
    return [label for label in CLASSES for _ in range(n_each)]


def test_clean_labels_have_one_shape_and_no_drift():
    drift = find_label_drift(_labels())
    assert drift is not None and drift.off_shape == {}
    assert drift.shape.describe() == 'lowercase, words joined by "_", letters and digits only'
    assert sorted(drift.classes) == sorted(CLASSES)


@pytest.mark.parametrize("written", [
    "Card Arrival", "CARD_ARRIVAL", "card-arrival", "Intent: card_arrival", "intent = card arrival",
    "The intent is card_arrival.", '"card_arrival"', "card_arrival!", "I think it's card arrival",
])
def test_each_drifted_shape_is_found_with_the_label_it_means(written):
    outputs = _labels() + [written]
    drift = find_label_drift(outputs)
    assert drift.off_shape == {len(outputs) - 1: "card_arrival"}


def test_a_class_only_written_off_shape_is_drift_with_a_suggested_spelling():
    outputs = _labels() + ["Balance Not Updated"] * 3
    drift = find_label_drift(outputs)
    assert set(drift.off_shape) == {60, 61, 62} and set(drift.off_shape.values()) == {None}
    assert drift.suggestion("Balance Not Updated") == "balance_not_updated"


def test_a_common_class_spelt_its_own_way_is_a_class():
    # Banking77 has "Refund_not_showing_up" and "reverted_card_payment?" with 160 examples each.
    outputs = _labels() + ["reverted_card_payment?"] * 12 + ["Intent: top_up_failed"]
    drift = find_label_drift(outputs)
    assert "reverted_card_payment?" in drift.classes
    assert drift.off_shape == {72: "top_up_failed"}


def test_two_classes_named_alike_are_ambiguous():
    assert canonical_label("either card_arrival or exchange_rate", CLASSES) is None
    assert canonical_label("card arrival", CLASSES) == "card_arrival"
    assert canonical_label("nothing like a label", CLASSES) is None


@pytest.mark.parametrize("outputs", [
    ["Sure, here is a long answer that changes every time " + str(i) for i in range(40)],  # free text
    ["Category: Billing\nPriority: Low"] * 20 + ["Category: Shipping\nPriority: High"] * 20,  # a template
    ["yes", "no"] * 3,  # too few
])
def test_outputs_that_are_not_labels_have_no_label_shape(outputs):
    assert learn_label_shape(outputs) is None


def test_mixed_case_labels_are_not_judged_on_case():
    outputs = ["Billing"] * 10 + ["technical"] * 10 + ["SHIPPING"] * 10
    drift = find_label_drift(outputs)
    assert drift.shape.case is None and drift.off_shape == {}


# The check and prepare ---------------------------------------------------------------------


@pytest.fixture
def drifted_csv(tmp_path):
    rng = random.Random(0)
    rows = [{"text": f"message {i} about {label.replace('_', ' ')} number {rng.randrange(10**6)}", "category": label}
            for i, label in enumerate(_labels(20))]
    planted = {3: "Intent: card_arrival", 25: "Lost Or Stolen Card", 47: "The intent is top_up_failed.",
               70: "Something Else"}
    for i, output in planted.items():
        rows[i]["category"] = output
    path = tmp_path / "train.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "category"])
        writer.writeheader()
        writer.writerows(rows)
    return path, {i + 2 for i in planted}  # CSV lines: the header is line 1


def test_format_drift_reports_every_off_shape_label_and_no_new_class(drifted_csv):
    path, lines = drifted_csv
    report = check([path])
    [drift] = [f for f in report.findings if f.code == "format-drift"]
    assert {loc.line for loc in drift.locations} == lines
    assert '"Intent: card_arrival" → card_arrival' in drift.message
    assert "→ something_else (no such class)" in drift.message
    assert not [f for f in report.findings if f.code in ("rare-class", "label-issue") and "Something" in f.message]
    labels = {ex.line: ex.label for ex in load_dataset([path]).examples}
    assert labels[5] == "card_arrival" and labels[72] is None


@pytest.mark.parametrize("mode", ["map", "quarantine"])
def test_prepare_maps_or_quarantines_off_shape_labels(drifted_csv, tmp_path, mode):
    path, _ = drifted_csv
    result = prepare([path], tmp_path / "out", PrepareOptions(enforce_template=True, label_drift=mode))
    quarantine = [json.loads(line) for line in (tmp_path / "out" / "quarantine.jsonl").read_text().splitlines()]
    fixes = {f["fix"]: f for f in result.manifest["fixes"]}
    if mode == "map":
        assert len(quarantine) == 1 and "names no class" in quarantine[0]["reason"]
        changes = {c["from"]: c["to"] for c in fixes["label-shape"]["changes"]}
        assert changes == {"Intent: card_arrival": "card_arrival", "Lost Or Stolen Card": "lost_or_stolen_card",
                           "The intent is top_up_failed.": "top_up_failed"}
    else:
        assert len(quarantine) == 4 and "label-shape" not in fixes
    after = check([tmp_path / "out"])
    assert not [f for f in after.findings if f.code == "format-drift"]
    assert result.counts["input_records"] == sum(result.counts[s] for s in ("train", "validation", "test", "quarantine"))


def test_banking77_train_has_no_label_drift_and_planted_drift_is_found(shared_data, tmp_path):
    rows = list(csv.DictReader(open(shared_data / "banking77" / "train.csv", newline="")))
    outputs = [r["category"] for r in rows]
    clean = find_label_drift(outputs)
    assert clean.off_shape == {} and len(clean.classes) == 77
    rng = random.Random(1)
    planted = {}
    for k, i in enumerate(rng.sample(range(len(outputs)), 60)):
        label = outputs[i]
        outputs[i] = [f"Intent: {label}", label.replace("_", " ").title(), f"The intent is {label}."][k % 3]
        planted[i] = label
    drift = find_label_drift(outputs)
    assert drift.off_shape == planted


def test_jsonl_outputs_are_read_the_same_way(tmp_path):
    records = [{"input_text": f"q {i} {label}", "output_text": label} for i, label in enumerate(_labels())]
    records.append({"input_text": "q x", "output_text": "Exchange Rate"})
    report = check([write_jsonl(tmp_path / "d.jsonl", records)])
    assert [f.count for f in report.findings if f.code == "format-drift"] == [1]
