from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tunesmith.data.checks import CheckContext
from tunesmith.data.checks.pii import PLACEHOLDERS, check_pii, redact_pii
from tunesmith.data.example import Example, Turn
from tunesmith.data.tokens import count_tokens, estimate_counter
from tunesmith.targets import load_target


def ctx_for(examples: list[Example]) -> CheckContext:
    return CheckContext(
        target=load_target("vertex/gemini-2.5-flash"),
        tokens=count_tokens(examples, estimate_counter()),
        now=datetime(2026, 11, 1, tzinfo=timezone.utc),
    )


def qa(line: int, question: str, answer: str = "card_arrival", system: str | None = None) -> Example:
    return Example(turns=[Turn("user", question), Turn("model", answer)], system=system, source="chats.jsonl", line=line)


@pytest.mark.parametrize(
    ("text", "redacted", "kind"),
    [
        ("Mail me at jane.doe+work@example.co.uk.", "Mail me at [EMAIL].", "email"),
        ("Call +44 20 7946 0958 today", "Call [PHONE] today", "phone"),
        ("Call +1 (415) 555-0100", "Call [PHONE]", "phone"),
        ("my number is +91 98765 43210", "my number is [PHONE]", "phone"),
        ("+4930123456", "[PHONE]", "phone"),
        ("(415) 555-0100", "[PHONE]", "phone"),
        ("reach me on 415-555-0100 or", "reach me on [PHONE] or", "phone"),
        ("415.555.0100", "[PHONE]", "phone"),
        ("1-800-555-0100", "[PHONE]", "phone"),
        ("020 7946 0958", "[PHONE]", "phone"),
        ("07700 900123", "[PHONE]", "phone"),
        ("01 23 45 67 89", "[PHONE]", "phone"),
        ("card 4111 1111 1111 1111, exp 12/27", "card [CARD], exp 12/27", "card"),
        ("4111-1111-1111-1111", "[CARD]", "card"),
        ("5555555555554444", "[CARD]", "card"),
        ("amex 3782 822463 10005", "amex [CARD]", "card"),
    ],
)
def test_redact_pii_finds_each_kind(text, redacted, kind):
    assert redact_pii(text) == (redacted, {kind: 1})


@pytest.mark.parametrize(
    "text",
    [
        "I was charged 3 times for 25.99",
        "how can I cancel purchase 113542617735902?",  # Luhn-valid, but no card network starts with 1
        "my order 113542617735902 has not arrived",
        "Transferred 1,250.00 EUR on 2024-01-15 10:30",
        "the date was 05.01.2024 at 12.30",
        "between 2019-2020 and 2021-2022",
        "reference ORD-415-555-0100",
        "reference 2023-0001-4567",
        "4111 1111 1111 1112",  # fails the Luhn check
        "1234 5678 9012 3456",
        "IP address 192.168.100.200",
        "tracking number 1Z999AA10123456784",
        "ISBN 978-3-16-148410-0",
        "IBAN GB29 NWBK 6016 1331 9268 19",
        "account 12345678, sort code 12-34-56",
        "call 911, or +5 points",
        "top up 20 30 40 50 60 70",
        "rates 0.25 0.50 0.75 1.00",
        "@john says the limit is 10000",
        "write to admin@localhost",
    ],
)
def test_redact_pii_leaves_numbers_that_are_not_personal_data_alone(text):
    assert redact_pii(text) == (text, {})


def test_redact_pii_counts_several_of_each_kind():
    text = "a@b.io, c@d.org; +44 20 7946 0958; 4111111111111111"
    assert redact_pii(text) == ("[EMAIL], [EMAIL]; [PHONE]; [CARD]", {"email": 2, "phone": 1, "card": 1})


def test_check_pii_reports_every_example_with_counts_by_kind():
    examples = [
        qa(1, "Where is my card?"),
        qa(2, "Email me at sam@example.com or call (415) 555-0100"),
        qa(3, "Why was I charged 3 times for 25.99?"),
        qa(4, "hi", answer="Sure, your card 4111 1111 1111 1111 is blocked."),
        qa(5, "hi", system="The agent's email is help@bank.example"),
    ]
    [finding] = check_pii(examples, ctx_for(examples))
    assert (finding.code, finding.severity) == ("pii", "warning")
    assert [loc.line for loc in finding.locations] == [2, 4, 5]
    assert finding.examples == [examples[i].id for i in (1, 3, 4)]
    assert "3 examples contain personal data: 2 email addresses, 1 phone number, 1 payment card number" in finding.message
    assert "--redact-pii" in finding.hint


def test_banking_style_texts_are_clean():
    texts = [
        "I am still waiting on my card?",
        "What can I do if my card still hasn't arrived after 2 weeks?",
        "I was charged 3 times for 25.99, why?",
        "My top-up of £40 on 12/03 hasn't shown up",
        "how can I cancel purchase 113542617735902?",
        "Is there a fee for exchanging 1000 USD to EUR?",
        "I got 2 payments of $25.00 and 1 of $12,50 this week",
    ]
    examples = [qa(i, text) for i, text in enumerate(texts, start=1)]
    assert check_pii(examples, ctx_for(examples)) == []


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from("0123456789 -.()+@"), max_size=80))
def test_redact_pii_never_raises_and_counts_what_it_replaced(text):
    redacted, counts = redact_pii(text)
    for kind, n in counts.items():
        assert n > 0
        assert redacted.count(PLACEHOLDERS[kind]) - text.count(PLACEHOLDERS[kind]) == n
    if not counts:
        assert redacted == text
