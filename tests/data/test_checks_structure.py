from __future__ import annotations

from datetime import datetime, timezone

from tunesmith.data.checks import CheckContext
from tunesmith.data.checks.structure import check_structure, check_unreadable
from tunesmith.data.example import Example, Turn
from tunesmith.data.findings import Location
from tunesmith.data.formats import Unreadable
from tunesmith.data.tokens import count_tokens, estimate_counter
from tunesmith.targets import load_target

FILE = "data.jsonl"


def ctx_for(examples: list[Example], **options) -> CheckContext:
    return CheckContext(
        target=load_target("vertex/gemini-2.5-flash"),
        tokens=count_tokens(examples, estimate_counter()),
        now=datetime(2026, 11, 1, tzinfo=timezone.utc),
        **options,
    )


def conversation(line: int, *turns: tuple[str, str], system: str | None = None) -> Example:
    return Example(turns=[Turn(role, text) for role, text in turns], system=system, source=FILE, line=line)


def qa(line: int, question: str = "Where is my card?", answer: str = "card_arrival") -> Example:
    return conversation(line, ("user", question), ("model", answer))


def by_message(findings, words: str):
    matching = [f for f in findings if words in f.message]
    assert len(matching) == 1, [f.message for f in findings]
    return matching[0]


def lines_of(finding) -> list[int]:
    return [loc.line for loc in finding.locations]


def test_unreadable_lines_are_grouped_by_kind_with_every_line_and_its_reason():
    unreadable = [
        Unreadable(FILE, 3, "invalid JSON (Expecting value at column 1)"),
        Unreadable(FILE, 7, "invalid JSON (Unterminated string at column 12)"),
        Unreadable(FILE, 9, "invalid UTF-8"),
        Unreadable(FILE, 11, "invalid JSON (Expecting value at column 1)"),
    ]
    findings = check_unreadable([], ctx_for([], unreadable=unreadable))
    assert {f.code for f in findings} == {"unreadable-line"}
    assert all(f.severity == "error" and f.examples == [] for f in findings)
    json_errors = by_message(findings, "invalid JSON")
    assert json_errors.locations == [Location(FILE, 3), Location(FILE, 7), Location(FILE, 11)]
    assert "Expecting value at column 1) on 2 lines" in json_errors.message
    assert "Unterminated string at column 12" in json_errors.message
    utf8 = by_message(findings, "invalid UTF-8")
    assert utf8.locations == [Location(FILE, 9)] and utf8.count == 1


def test_many_distinct_reasons_are_counted_not_all_spelled_out():
    unreadable = [Unreadable("t.csv", n, f"row has {n} fields, the header has 2") for n in range(3, 9)]
    [finding] = check_unreadable([], ctx_for([], unreadable=unreadable))
    assert lines_of(finding) == list(range(3, 9))
    assert "row has 3 fields, the header has 2" in finding.message
    assert "3 other details" in finding.message


def test_each_kind_of_bad_structure_is_one_error_listing_every_example():
    examples = [
        qa(1),
        conversation(2, ("user", "hi"), ("tool", "{}"), ("model", "ok")),  # unknown role
        conversation(3, ("user", "a"), ("user", "b"), ("model", "c")),  # not alternating
        conversation(4, ("model", "hello"), ("user", "hi"), ("model", "ok")),  # starts with model
        conversation(5, ("user", "only a question")),  # no model turn
        conversation(6, ("user", "   "), ("model", "ok")),  # whitespace-only text
        conversation(7, ("user", "q"), ("model", "a"), system=""),  # empty system instruction
        conversation(8, ("user", "q"), ("system", "be brief"), ("model", "a")),  # system inside
        conversation(9, ("user", "q"), ("function", "x"), ("model", "a")),  # unknown role
        conversation(10),  # no turns at all
    ]
    findings = check_structure(examples, ctx_for(examples))
    assert {(f.code, f.severity) for f in findings} == {("bad-structure", "error")}
    assert lines_of(by_message(findings, "neither")) == [2, 9]
    assert "'function', 'tool'" in by_message(findings, "neither").message
    assert lines_of(by_message(findings, "do not alternate")) == [3, 4]
    assert lines_of(by_message(findings, "no model turn")) == [5, 10]
    assert lines_of(by_message(findings, "empty or only whitespace")) == [6, 7]
    assert lines_of(by_message(findings, "system turn inside")) == [8]
    assert by_message(findings, "no model turn").examples == [examples[4].id, examples[9].id]


def test_a_trailing_user_turn_is_a_warning_not_an_error():
    examples = [qa(1), conversation(2, ("user", "q"), ("model", "a"), ("user", "thanks!"))]
    [finding] = check_structure(examples, ctx_for(examples))
    assert (finding.code, finding.severity) == ("bad-structure", "warning")
    assert lines_of(finding) == [2]
    assert "1 example has a user turn last: nothing after the last model turn is trained on" in finding.message


def test_well_formed_conversations_pass():
    examples = [
        qa(1),
        conversation(2, ("user", "hi"), ("model", "hello"), ("user", "bye"), ("model", "ciao"), system="Be terse."),
        conversation(3, ("user", "Category?"), ("model", "Category: Billing\nPriority: High")),
    ]
    ctx = ctx_for(examples)
    assert check_structure(examples, ctx) == []
    assert check_unreadable(examples, ctx) == []
