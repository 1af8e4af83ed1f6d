from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tunesmith.data.checks import CheckContext
from tunesmith.data.checks.format_drift import (
    check_format_drift,
    dominant_signature,
    output_signature,
    parse_template,
    template_from_signature,
)
from tunesmith.data.example import Example, Turn
from tunesmith.data.tokens import count_tokens, estimate_counter
from tunesmith.errors import BadInputError
from tunesmith.targets import load_target

TICKET = "Category: {}\nPriority: {}\nAction: {}"


def ctx_for(examples: list[Example], **options) -> CheckContext:
    return CheckContext(
        target=load_target("vertex/gemini-2.5-flash"),
        tokens=count_tokens(examples, estimate_counter()),
        now=datetime(2026, 11, 1, tzinfo=timezone.utc),
        **options,
    )


def qa(line: int, answer: str, question: str = "My card was charged twice, please help") -> Example:
    return Example(turns=[Turn("user", question), Turn("model", answer)], source="tickets.jsonl", line=line)


def ticket(category: str = "Billing", priority: str = "High", action: str = "Refund the duplicate charge") -> str:
    return TICKET.format(category, priority, action)


def lines_of(finding) -> list[int]:
    return [loc.line for loc in finding.locations]


@pytest.mark.parametrize(
    ("text", "signature"),
    [
        (ticket(), "keys:Category,Priority,Action"),
        ("  Category: Billing\n\nPriority: Low  \n", "keys:Category,Priority"),
        ('{"priority": "high", "category": "billing"}', "json:category,priority"),
        ("{}", "json:"),
        ('{"a, b": 1}', "json"),
        ("[1, 2]", "json-array"),
        ('{"category": "billing",}', "invalid-json"),
        ("```python\nprint('hi')\n```", "fence:python"),
        ("```\nplain\n```", "fence"),
        ("- one\n* two\n• three", "bullets"),
        ("1. first\n2) second", "numbered"),
        ("Sure! Your card should arrive in 3-5 days.", "text"),
        ("Visit https://example.com for details", "text"),
        ("Steps:\n1. Log in\n2. Open settings", "text"),
        ("   ", "empty"),
    ],
)
def test_output_signature(text, signature):
    assert output_signature(text) == signature


def test_a_signature_is_a_template_its_output_matches():
    for text in [ticket(), '{"b": 1, "a": 2}', "{}", "[1]", "```js\nx\n```", "- a\n- b", "1. a"]:
        assert template_from_signature(output_signature(text)).matches(text), text
    for no_template in ("text", "invalid-json", "empty"):
        with pytest.raises(ValueError):
            template_from_signature(no_template)


@pytest.mark.parametrize("spec", [TICKET, TICKET.replace("\n", "\\n")])
def test_literal_template_accepts_real_and_escaped_newlines(spec):
    template = parse_template(spec)
    assert template.matches(ticket())
    assert template.matches("\n" + ticket() + "\n")
    assert not template.matches("Category: Billing\nPriority: High")
    assert not template.matches("Category: Billing\nPriority:  \nAction: Refund")  # a blank value
    assert template.describe() == '"Category: {}\\nPriority: {}\\nAction: {}"'


def test_literal_template_takes_each_piece_where_it_first_fits():
    template = parse_template("A: {}\\nB: {}\\nC: {}\\nD: {}")
    assert template.matches("A: x\nB: y\nC: z\nD: w")
    assert template.matches("A: x\nB: \nB: y\nC: z\nD: w")  # a value may hold newlines
    assert not template.matches("A: x\nB:  \nC: z\nD: w")
    assert not template.matches("A: x" + "\nB: x\nC: x" * 5000)  # no D: fails fast, not in cubic time


def test_keys_template_wants_exactly_these_lines_in_order_with_values():
    template = parse_template("keys:Category,Priority,Action")
    assert template.matches(ticket())
    assert template.matches("Category: A\n\nPriority: B\nAction: C: then D")
    assert not template.matches("Priority: B\nCategory: A\nAction: C")
    assert not template.matches("Category: A\nPriority:\nAction: C")
    assert not template.matches(ticket() + "\nNote: extra")
    assert not template.matches("category: A\nPriority: B\nAction: C")  # keys are case-sensitive
    assert template.describe() == '"Category: …\\nPriority: …\\nAction: …"'


def test_json_templates_exact_and_at_least():
    exact = parse_template("json:category, priority")
    at_least = parse_template("json:category,...")
    any_object = parse_template("json")
    assert exact.matches('{"priority": 1, "category": 2}')
    assert not exact.matches('{"category": 2}')
    assert not exact.matches('{"category": 2, "priority": 1, "note": 3}')
    assert at_least.matches('{"category": 2, "note": 3}')
    assert not at_least.matches('{"note": 3}')
    assert any_object.matches("{}") and not any_object.matches("[]") and not any_object.matches("category: x")
    assert parse_template("json:").matches("{}") and not parse_template("json:").matches('{"a": 1}')
    assert "at least" in at_least.describe()


def test_other_templates():
    assert parse_template("fence:sql").matches("```sql\nSELECT 1\n```")
    assert not parse_template("fence:sql").matches("```python\nx\n```")
    assert parse_template("bullets").matches("- a\n- b") and not parse_template("bullets").matches("a\n- b")
    assert parse_template("json-array").matches("[]")
    assert parse_template(r"regex:(yes|no)\b.*").matches("yes, because\nreasons")
    assert not parse_template(r"regex:(yes|no)\b.*").matches("maybe")


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("", "not a template"),
        ("yaml", "not a template"),
        ("keys:", "cannot be the key"),
        ("keys:Category,,Action", "cannot be the key"),
        ("keys:1st", "cannot be the key"),
        ("json:a,,b", "every key must be named"),
        ("json:...,a", "every key must be named"),
        ("regex:(unclosed", "not a valid regular expression"),
    ],
)
def test_invalid_specs_say_what_is_wrong(spec, words):
    with pytest.raises(BadInputError) as err:
        parse_template(spec)
    assert words in err.value.message


def test_dominant_signature():
    outputs = [ticket()] * 47 + ["Billing", "Category: Billing\nAction: Refund", "Sure, I can help."]
    assert dominant_signature(outputs) == ("keys:Category,Priority,Action", 0.94)
    assert dominant_signature(outputs[:9]) is None  # too few to call it a pattern
    assert dominant_signature(["Sure, happy to help!", "Your card is on its way."] * 10) is None
    assert dominant_signature([ticket()] * 5 + ["free text"] * 5) is None  # no clear majority


def test_json_objects_with_varying_keys_make_json_the_template():
    outputs = ['{"people": "4"}', '{"time": "6 pm"}', '{"date": "Friday", "time": "7"}', "{}"] * 5
    assert dominant_signature(outputs) == ("json", 1.0)


def test_drift_from_the_dominant_format_lists_every_deviant():
    examples = [qa(i, ticket()) for i in range(1, 48)]
    examples[9] = qa(10, "Billing")
    examples[19] = qa(20, "Category: Billing\nAction: Refund")
    examples[29] = qa(30, "Category: Billing\nPriority:\nAction: Refund")
    examples += [qa(48, ticket()), qa(49, ticket()), qa(50, "I'll refund it right away.")]
    [finding] = check_format_drift(examples, ctx_for(examples))
    assert (finding.code, finding.severity) == ("format-drift", "warning")
    assert lines_of(finding) == [10, 20, 30, 50]
    assert finding.examples == [examples[i].id for i in (9, 19, 29, 49)]
    assert '92% (46 of 50) are "Category: …\\nPriority: …\\nAction: …"' in finding.message
    assert "2 free text" in finding.message
    assert '1 "Category: …\\nAction: …"' in finding.message
    assert "with an empty value" in finding.message
    assert "--enforce-template" in finding.hint


def test_a_given_template_makes_deviants_errors():
    examples = [qa(1, '{"category": "billing"}'), qa(2, '{"category": "billing", "priority": "high"}'), qa(3, "billing")]
    [finding] = check_format_drift(examples, ctx_for(examples, template="json:category,priority"))
    assert (finding.code, finding.severity) == ("format-drift", "error")
    assert lines_of(finding) == [1, 3]
    assert "--template" in finding.message and '"category", "priority"' in finding.message


def test_consistent_outputs_have_no_drift():
    examples = [qa(i, ticket(action=f"Action number {i}")) for i in range(1, 101)]
    assert check_format_drift(examples, ctx_for(examples)) == []
    assert check_format_drift(examples, ctx_for(examples, template=TICKET.replace("\n", "\\n"))) == []


def test_free_text_and_label_outputs_have_no_template():
    chat = [qa(i, f"Happy to help! Your card number {i} ships in 3-5 days.\n\n- Track it in the app") for i in range(60)]
    labels = [qa(i, ["card_arrival", "age_limit", "pin_blocked"][i % 3]) for i in range(60)]
    slots = [qa(i, json.dumps(value)) for i, value in enumerate([{"people": "4"}, {}, {"time": "7", "date": "Fri"}] * 20)]
    for examples in (chat, labels, slots):
        assert check_format_drift(examples, ctx_for(examples)) == []


OUTPUT_LIKE = st.one_of(
    st.text(),
    st.dictionaries(st.text(max_size=8), st.integers()).map(json.dumps),
    st.lists(st.tuples(st.text(max_size=12), st.text(max_size=12))).map(lambda kv: "\n".join(f"{k}: {v}" for k, v in kv)),
    st.lists(st.text(max_size=12)).map(lambda items: "\n".join(f"- {item}" for item in items)),
    st.text().map(lambda body: f"```py\n{body}\n```"),
)


@settings(max_examples=400, deadline=None)
@given(OUTPUT_LIKE)
def test_output_signature_never_raises_and_agrees_with_its_template(text):
    signature = output_signature(text)
    if signature not in ("text", "invalid-json", "empty"):
        template = template_from_signature(signature)
        has_empty_value = signature.startswith("keys:") and not parse_template("keys").matches(text)
        assert template.matches(text) or has_empty_value
        assert template.describe()
