from __future__ import annotations

from datetime import datetime, timezone

from tunesmith.data.checks import CheckContext
from tunesmith.data.checks.duplicates import (
    CHECKS,
    check_duplicate_examples,
    check_near_duplicates,
    check_split_leaks,
)
from tunesmith.data.dataset import load_dataset
from tunesmith.data.example import Example, Turn
from tunesmith.data.findings import Location
from tunesmith.data.tokens import count_tokens, estimate_counter
from tunesmith.targets import load_target

# Distinct short queries, like Banking77's: no two are near-duplicates.
QUERIES = [
    "How do I reset my password?",
    "My card was charged twice for one coffee",
    "Where is my parcel? It was due on Monday",
    "Can I change the delivery address after ordering?",
    "The app crashes when I open the settings page",
    "Why was my transfer to a friend declined?",
    "I want to close my account and get a refund",
    "Is there a fee for paying in euros abroad?",
    "How long does a bank transfer usually take?",
    "My new card has not arrived after two weeks",
    "Can I order a second card for my partner?",
    "What is the daily limit for cash withdrawals?",
]


def _example(line: int, user: str, model: str = "Thanks, we are on it.", split: str = "train",
             source: str = "f.jsonl") -> Example:
    return Example(turns=[Turn("user", user), Turn("model", model)], source=source, line=line, split=split)


def _context(examples: list[Example]) -> CheckContext:
    return CheckContext(
        target=load_target("vertex/gemini-2.5-flash"),
        tokens=count_tokens(examples, estimate_counter()),
        now=datetime.now(timezone.utc),
        splits=list(dict.fromkeys(ex.split for ex in examples if ex.split)),
    )


def _run(check, examples: list[Example]):
    return check(examples, _context(examples))


def _lines(finding) -> set[tuple[str, int]]:
    return {(loc.file, loc.line) for loc in finding.locations}


def _clean_examples() -> list[Example]:
    return [_example(i + 1, q, model=f"Answer {i}") for i, q in enumerate(QUERIES)]


# duplicate-example ------------------------------------------------------------------------


def test_duplicate_examples_lists_every_copy():
    examples = _clean_examples()
    examples += [
        _example(20, QUERIES[0], model="Answer 0"),
        _example(21, "How do I  reset my password?\n", model="Answer 0"),  # whitespace only
        _example(22, QUERIES[5], model="Answer 5"),
        _example(23, QUERIES[5], model="A different answer"),  # not a copy: the output differs
    ]
    [finding] = _run(check_duplicate_examples, examples)
    assert finding.code == "duplicate-example"
    assert finding.severity == "warning"
    assert finding.count == 3  # redundant copies
    assert _lines(finding) == {("f.jsonl", 1), ("f.jsonl", 20), ("f.jsonl", 21), ("f.jsonl", 6), ("f.jsonl", 22)}
    assert "3 examples are exact copies" in finding.message and "2 groups" in finding.message
    assert "--dedupe" in finding.hint


def test_duplicate_examples_none_in_distinct_data():
    assert _run(check_duplicate_examples, _clean_examples()) == []


# near-duplicate ---------------------------------------------------------------------------


def test_near_duplicates_lists_every_member_but_not_pure_copies():
    examples = _clean_examples()
    examples += [
        _example(30, "How do I reset my passwords?", model="Answer 0"),
        _example(31, "Where is my parcel? It was due on Monday!!", model="Answer 2"),
        _example(32, QUERIES[7], model="Answer 7"),  # an exact copy only: duplicate-example's
    ]
    [finding] = _run(check_near_duplicates, examples)
    assert finding.code == "near-duplicate"
    assert finding.severity == "info"
    assert _lines(finding) == {("f.jsonl", 1), ("f.jsonl", 30), ("f.jsonl", 3), ("f.jsonl", 31)}


def test_near_duplicates_none_in_distinct_data():
    assert _run(check_near_duplicates, _clean_examples()) == []


# split-leak -------------------------------------------------------------------------------


PASSAGE = "the quarterly statement shows a pending charge from the airline that was refunded last week"


def _split_examples() -> list[Example]:
    train = [_example(i + 1, q, source="train.jsonl") for i, q in enumerate(QUERIES[:8])]
    test = [_example(i + 1, q, split="test", source="test.jsonl") for i, q in enumerate(QUERIES[8:])]
    return train + test


def test_split_leaks_finds_copies_near_copies_and_shared_passages_in_both_splits():
    examples = _split_examples()
    examples += [
        _example(20, "how do I reset my password??", split="test", source="test.jsonl"),  # train line 1
        _example(21, "My card was charged twice for one cofee", split="validation", source="validation.jsonl"),  # typo
        _example(9, f"Hello, I have a question: {PASSAGE}. Can you explain it to me?", source="train.jsonl"),
        _example(22, f"Why does {PASSAGE} and still not show up in my balance?", split="test", source="test.jsonl"),
    ]
    similar, passage = _run(check_split_leaks, examples)
    assert (similar.code, similar.severity) == ("split-leak", "error")
    assert _lines(similar) == {("train.jsonl", 1), ("test.jsonl", 20), ("train.jsonl", 2), ("validation.jsonl", 21)}
    assert "train+test: 1" in similar.message and "train+validation: 1" in similar.message
    assert (passage.code, passage.severity) == ("split-leak", "error")
    assert _lines(passage) == {("train.jsonl", 9), ("test.jsonl", 22)}


def test_split_leaks_none_across_distinct_splits_or_with_one_split():
    assert _run(check_split_leaks, _split_examples()) == []
    paraphrase = _example(30, "my card was charged twice for a coffee", split="test", source="test.jsonl")
    assert _run(check_split_leaks, _split_examples() + [paraphrase]) == []  # 0.8 alike: not beyond doubt
    same_split = _clean_examples() + [_example(40, QUERIES[0])]
    assert _run(check_split_leaks, same_split) == []


def test_split_leaks_ignore_an_instruction_every_input_shares():
    instruction = (
        "Read the customer message below and reply with the category only, "
        "choosing from billing shipping login or cancel"
    )
    examples = [
        _example(i + 1, f"{instruction}. Message: {q}", split="test" if i % 4 == 0 else "train")
        for i, q in enumerate(QUERIES)
    ]
    assert _run(check_split_leaks, examples) == []


# The module on real data ------------------------------------------------------------------


def test_banking77_train_has_four_copies_and_no_leak(shared_data):
    banking77 = shared_data / "banking77" / "train.csv"
    dataset = load_dataset([banking77])
    findings = {f.code: f for check in CHECKS for f in _run(check, dataset.examples)}
    assert set(findings) == {"duplicate-example", "near-duplicate"}
    assert findings["duplicate-example"].count == 4
    assert len(findings["duplicate-example"].locations) == 8
    assert Location(str(banking77), 1248) in findings["duplicate-example"].locations
    # Banking77 collects paraphrases of each question: many are near-copies, e.g. lines 63 and 93,
    # "I am still waiting for my card." / "I'm still waiting for my card.".
    near = findings["near-duplicate"]
    assert {Location(str(banking77), 63), Location(str(banking77), 93)} <= set(near.locations)
    # Short paraphrases with words added count too (the containment rule): about a third.
    assert near.count < 0.4 * len(dataset.examples)


def test_copies_of_short_replies_are_a_note():
    # Restaurant-8k repeats replies such as "yes" and "6" in many dialogues.
    examples = _clean_examples() + [_example(30, "yes", model="{}"), _example(31, "yes", model="{}"),
                                    _example(32, QUERIES[2], model="Answer 2")]
    warning, note = _run(check_duplicate_examples, examples)
    assert (warning.severity, warning.count, _lines(warning)) == ("warning", 1, {("f.jsonl", 3), ("f.jsonl", 32)})
    assert (note.severity, note.count, _lines(note)) == ("info", 1, {("f.jsonl", 30), ("f.jsonl", 31)})
