from __future__ import annotations

import difflib
import hashlib
import re
from datetime import date, datetime, timedelta, timezone

import pytest

from tunesmith.data.formats import read_file
from tunesmith.examples.tickets import DEFAULT_ANCHOR, PITFALLS, generate_tickets, write_tickets

TEMPLATE = re.compile(
    r"Category: (Billing|Technical|Account|Shipping|Returns|Security)\n"
    r"Priority: (Low|Medium|High|Urgent)\n"
    r"Action: [A-Z][^\n]*[a-z0-9]"
)
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
PHONE = re.compile(r"(\+?\d[\d ()-]{8,}\d)")
DISCONTINUED = ("Hub v1", "Classic", "Brightly Desktop", "Gen 1", "Starter Bundle")
SEEDS = [0, 1, 42]

# The share (of n) each pitfall must have, as the generator's docstring promises.
SHARE_RANGES = {
    "duplicate": (0.02, 0.03),
    "near_duplicate": (0.01, 0.02),
    "conflict": (0.005, 0.015),
    "format_drift": (0.02, 0.04),
    "outdated": (0.04, 0.05),
}


@pytest.fixture(scope="module", params=SEEDS)
def tickets(request):
    return generate_tickets(seed=request.param)


def category(output: str) -> str | None:
    match = TEMPLATE.fullmatch(output)
    return match.group(1) if match else None


def parse_timestamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def test_the_same_seed_writes_the_same_bytes(tmp_path):
    write_tickets(tmp_path / "a.jsonl", seed=3)
    write_tickets(tmp_path / "b.jsonl", seed=3)
    write_tickets(tmp_path / "c.jsonl", seed=4)
    a, b, c = ((tmp_path / f"{name}.jsonl").read_bytes() for name in "abc")
    assert a == b
    assert a != c


def test_default_size_and_fields(tickets):
    assert len(tickets.records) == 1200
    for record in tickets.records:
        assert list(record) == ["input_text", "output_text", "timestamp", "ticket_id"]
        assert record["input_text"].startswith("Classify the following customer support ticket: '")
        assert record["input_text"].endswith("'")
        assert re.fullmatch(r"T-\d{6}", record["ticket_id"])


def test_every_record_reads_as_input_output(tmp_path):
    path = tmp_path / "tickets.jsonl"
    tickets = write_tickets(path)
    result = read_file(path)
    assert result.format == "input-output"
    assert result.unreadable == []
    assert len(result.examples) == len(tickets.records)
    assert [ex.output_text for ex in result.examples] == [r["output_text"] for r in tickets.records]
    assert result.examples[0].meta["timestamp"] == tickets.records[0]["timestamp"]


def test_pitfall_shares_are_within_the_stated_ranges(tickets):
    n = len(tickets.records)
    assert set(tickets.injected) == set(PITFALLS)
    for name, (low, high) in SHARE_RANGES.items():
        assert low <= len(tickets.injected[name]) / n <= high, name
    assert 6 <= len(tickets.injected["rare_class"]) <= 8
    assert 3 <= len(tickets.injected["pii"]) <= 7


def test_each_record_carries_at_most_one_pitfall(tickets):
    indices = [i for idx in tickets.injected.values() for i in idx]
    assert len(indices) == len(set(indices))
    assert all(0 <= i < len(tickets.records) for i in indices)


def test_clean_records_follow_the_template_and_drifted_ones_do_not(tickets):
    drift = set(tickets.injected["format_drift"])
    for i, record in enumerate(tickets.records):
        assert (category(record["output_text"]) is None) == (i in drift), record["output_text"]
    assert len(tickets.records) - len(drift) > 0.9 * len(tickets.records)


def test_the_rare_class_is_rare_and_recorded(tickets):
    security = [i for i, r in enumerate(tickets.records) if category(r["output_text"]) == "Security"]
    assert security == tickets.injected["rare_class"]
    assert 0 < len(security) < 10


def test_the_only_repeated_tickets_are_the_recorded_duplicates_and_conflicts(tickets):
    first_seen: dict[str, int] = {}
    repeats = []
    for i, record in enumerate(tickets.records):
        if record["input_text"] in first_seen:
            repeats.append(i)
        else:
            first_seen[record["input_text"]] = i
    assert repeats == sorted(tickets.injected["duplicate"] + tickets.injected["conflict"])
    for i in tickets.injected["duplicate"]:
        assert tickets.records[i] == tickets.records[first_seen[tickets.records[i]["input_text"]]]
    for i in tickets.injected["conflict"]:
        original = tickets.records[first_seen[tickets.records[i]["input_text"]]]
        assert category(original["output_text"]) != category(tickets.records[i]["output_text"]) is not None


def test_near_duplicates_are_small_rewordings_of_an_earlier_ticket(tickets):
    for i in tickets.injected["near_duplicate"]:
        record = tickets.records[i]
        same_label = [r["input_text"] for r in tickets.records[:i] if r["output_text"] == record["output_text"]]
        closest = max(difflib.SequenceMatcher(None, text, record["input_text"], autojunk=False).ratio() for text in same_label)
        assert record["input_text"] not in same_label
        assert closest > 0.9


def test_timestamps_parse_and_outdated_ones_are_old(tickets):
    now = datetime(2026, 10, 31, tzinfo=timezone.utc)
    outdated = set(tickets.injected["outdated"])
    for i, record in enumerate(tickets.records):
        age = now - parse_timestamp(record["timestamp"])
        if i in outdated:
            assert timedelta(days=3 * 365) <= age <= timedelta(days=5 * 365)
            assert any(name in record["input_text"] for name in DISCONTINUED)
        else:
            assert timedelta(0) < age <= timedelta(days=550)


def test_the_anchor_moves_the_timestamps():
    later = generate_tickets(anchor=DEFAULT_ANCHOR + timedelta(days=365))
    newest = max(parse_timestamp(r["timestamp"]) for r in later.records)
    assert newest.date() > DEFAULT_ANCHOR
    assert newest.date() <= date(2027, 10, 31)


def test_personal_data_appears_only_where_recorded(tickets):
    with_contact = [
        i for i, r in enumerate(tickets.records) if EMAIL.search(r["input_text"]) or PHONE.search(r["input_text"])
    ]
    assert with_contact == tickets.injected["pii"]


def test_wording_varies(tickets):
    texts = [r["input_text"] for r in tickets.records]
    lengths = sorted(len(t) for t in texts)
    assert lengths[len(lengths) // 10] < 110 and lengths[-len(lengths) // 10] > 250  # one-liners and paragraphs
    assert sum("\n" in t for t in texts) > 100  # greetings and sign-offs on their own lines
    assert any(re.search(r"BW-\d{6}", t) for t in texts) and any("$" in t for t in texts)


def test_too_few_tickets_is_refused():
    with pytest.raises(ValueError, match="at least"):
        generate_tickets(n=50)


@pytest.mark.parametrize("n", [100, 437, 3000])
def test_other_sizes_keep_the_invariants(n):
    tickets = generate_tickets(n=n, seed=5)
    assert len(tickets.records) == n
    assert all(tickets.injected[name] for name in PITFALLS)
    drift = set(tickets.injected["format_drift"])
    assert all(category(r["output_text"]) for i, r in enumerate(tickets.records) if i not in drift)


# The phrase tables moved from the code to tickets_phrases.json; the data they generate did
# not change. These hashes were taken from the generator before the move.
GENERATED_SHA256 = {
    (1200, 0, DEFAULT_ANCHOR): "3dcae00105a05e26388c4157bac6be23f493eb5fe5e6608c021bf282096ee05b",
    (1200, 1, DEFAULT_ANCHOR): "f012e0c9afb3ec9cec748de915df3f0a24c68723b1ecdd9d66debf18e74ec040",
    (300, 42, DEFAULT_ANCHOR): "552539484a21298594d9ca21acfd82e852a19ddc391f7b737ff3041739a46b0c",
    (100, 7, DEFAULT_ANCHOR): "ded2e663d69d2fa2b4c58c8838b252d2e3440511ef82b75345eae6e064c4669b",
    (500, 3, date(2025, 1, 15)): "db311623033d5a164edc9ab612de984c5d887189a16d97335e40bb0b133af4e7",
}


@pytest.mark.parametrize("n, seed, anchor", list(GENERATED_SHA256))
def test_the_generated_data_is_byte_for_byte_what_it_was(n, seed, anchor):
    tickets = generate_tickets(n, seed, anchor=anchor)
    payload = tickets.to_jsonl() + repr(sorted(tickets.injected.items()))
    assert hashlib.sha256(payload.encode()).hexdigest() == GENERATED_SHA256[(n, seed, anchor)]

