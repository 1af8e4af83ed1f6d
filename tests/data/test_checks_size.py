from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest

from tunesmith.data.checks import CheckContext
from tunesmith.data.checks.size import (
    check_example_count,
    check_file_size,
    check_length_outliers,
    check_near_empty_inputs,
    check_token_limit,
)
from tunesmith.data.example import Example, Turn
from tunesmith.data.tokens import count_tokens, estimate_counter
from tunesmith.targets import Target, load_target

VERTEX = load_target("vertex/gemini-2.5-flash")
TINY = Target(
    name="test/tiny",
    kind="vertex",
    base_model="tiny",
    format="gemini",
    tokenizer="estimate",
    max_tokens_per_example=100,
    max_train_examples=10,
    max_validation_examples=3,
    max_file_bytes=100,
    min_examples=1,
    recommended_examples=1,
)


def ctx_for(examples: list[Example], target: Target = VERTEX, **options) -> CheckContext:
    return CheckContext(
        target=target,
        tokens=count_tokens(examples, estimate_counter()),
        now=datetime(2026, 11, 1, tzinfo=timezone.utc),
        **options,
    )


def qa(line: int, question: str = "Why was I charged 3 times for 25.99?", answer: str = "card_fee_charged", **fields) -> Example:
    return Example(turns=[Turn("user", question), Turn("model", answer)], source="data.jsonl", line=line, **fields)


def many(n: int, split: str | None = None, start: int = 1) -> list[Example]:
    return [qa(start + i, question=f"Question number {start + i} about my card?", split=split) for i in range(n)]


def lines_of(finding) -> list[int]:
    return [loc.line for loc in finding.locations]


@pytest.mark.parametrize(
    ("n", "severity"),
    [(0, "error"), (99, "error"), (100, "info"), (999, "info")],
)
def test_too_few_examples(n, severity):
    examples = many(n)
    [finding] = check_example_count(examples, ctx_for(examples))
    assert (finding.code, finding.severity, finding.count) == ("too-few-examples", severity, n)
    assert "at least 100" in finding.message + finding.hint
    assert "1,000 or more" in finding.message + finding.hint


def test_enough_examples_give_no_finding():
    examples = many(1000)
    assert check_example_count(examples, ctx_for(examples)) == []


def test_the_train_split_is_counted_when_there_is_one():
    examples = many(50, "train") + many(2000, "test", start=51)
    [finding] = check_example_count(examples, ctx_for(examples, splits=["train", "test"]))
    assert (finding.code, finding.severity, finding.count) == ("too-few-examples", "error", 50)
    assert finding.message.startswith("The training split has 50 examples")


def test_without_a_train_split_the_whole_dataset_is_counted():
    examples = many(60, "tickets") + many(60, "more_tickets", start=61)
    [finding] = check_example_count(examples, ctx_for(examples, splits=["tickets", "more_tickets"]))
    assert (finding.severity, finding.count) == ("info", 120)


def test_too_many_train_and_validation_examples():
    examples = many(11, "train") + many(4, "validation", start=12)
    findings = check_example_count(examples, ctx_for(examples, TINY, splits=["train", "validation"]))
    assert [(f.code, f.severity, f.count) for f in findings] == [
        ("too-many-examples", "error", 11),
        ("too-many-examples", "error", 4),
    ]
    assert "at most 10" in findings[0].message
    assert "validation split has 4 examples" in findings[1].message and "at most 3" in findings[1].message


def test_a_file_over_the_size_limit_is_named(tmp_path):
    big, small = tmp_path / "big.jsonl", tmp_path / "small.jsonl"
    big.write_text("x" * 150)
    small.write_text("x" * 50)
    examples = [qa(1), qa(2), qa(1)]
    examples[0].source = examples[1].source = str(big)
    examples[2].source = str(small)
    [finding] = check_file_size(examples, ctx_for(examples, TINY))
    assert (finding.code, finding.severity, finding.count) == ("too-many-examples", "error", 2)
    assert str(big) in finding.message and "150 bytes" in finding.message
    assert check_file_size(examples, ctx_for(examples, load_target("local/smollm2-135m-instruct"))) == []


def test_examples_over_the_token_limit():
    examples = [qa(1), qa(2, answer="x" * 500), qa(3), qa(4, question="y" * 900)]
    ctx = ctx_for(examples, TINY)
    [finding] = check_token_limit(examples, ctx)
    assert (finding.code, finding.severity) == ("too-long", "error")
    assert lines_of(finding) == [2, 4]
    assert "100 tokens" in finding.message and f"longest has {ctx.tokens.total[3]}" in finding.message
    assert "truncates or drops" in finding.message
    assert check_token_limit(examples, ctx_for(examples)) == []  # far under Gemini's 131,072


def test_an_output_far_longer_than_the_rest_is_an_outlier():
    rng = random.Random(0)
    examples = [qa(i, answer="word " * rng.randint(20, 40)) for i in range(1, 41)]
    examples += [qa(41, answer="pasted log line\n" * 200), qa(42, answer="ok")]
    findings = check_length_outliers(examples, ctx_for(examples))
    assert [(f.code, f.severity) for f in findings] == [("length-outlier", "info")] * 2
    longer, shorter = findings
    assert lines_of(longer) == [41] and "far longer" in longer.message
    assert lines_of(shorter) == [42] and "far shorter" in shorter.message


def test_a_natural_long_tail_is_not_an_outlier():
    rng = random.Random(1)  # log-normal lengths, like real answers: skewed, but nothing pasted in
    examples = [qa(i, answer="w" * int(rng.lognormvariate(6, 0.5))) for i in range(1, 2001)]
    assert check_length_outliers(examples, ctx_for(examples)) == []


def test_label_outputs_of_different_lengths_are_not_outliers():
    labels = ["card_arrival", "age_limit", "transfer_not_received_by_recipient", "pin_blocked", "top_up_limits"]
    examples = [qa(i, answer=labels[i % len(labels)]) for i in range(1, 501)]
    assert check_length_outliers(examples, ctx_for(examples)) == []
    assert check_length_outliers(examples[:19], ctx_for(examples[:19])) == []  # too few to judge


def test_near_empty_inputs_among_longer_ones():
    examples = many(300) + [qa(301, question="?"), qa(302, question="ok"), qa(303, question="...")]
    [finding] = check_near_empty_inputs(examples, ctx_for(examples))
    assert (finding.code, finding.severity) == ("near-empty-input", "info")
    assert lines_of(finding) == [301, 302, 303]
    assert "'?'" in finding.message


def test_short_inputs_that_are_common_are_part_of_the_data():
    # A slot-filling dialogue: "6" answers "how many people?" in 10% of the examples.
    examples = many(270) + [qa(271 + i, question=str(i % 9 + 1)) for i in range(30)]
    assert check_near_empty_inputs(examples, ctx_for(examples)) == []


def test_short_inputs_are_fine_when_all_inputs_are_short():
    examples = [qa(i, question=f"top up {i}") for i in range(1, 200)] + [qa(200, question="hi")]
    assert check_near_empty_inputs(examples, ctx_for(examples)) == []
