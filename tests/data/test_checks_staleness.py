from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tunesmith.data.checks import CheckContext
from tunesmith.data.checks.staleness import age_days, check_staleness, parse_timestamp
from tunesmith.data.example import Example, Turn
from tunesmith.data.tokens import count_tokens, estimate_counter
from tunesmith.targets import load_target

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)
UTC = timezone.utc


def ctx_for(examples: list[Example], **options) -> CheckContext:
    return CheckContext(
        target=load_target("vertex/gemini-2.5-flash"),
        tokens=count_tokens(examples, estimate_counter()),
        now=NOW,
        **options,
    )


def dated(line: int, timestamp: str | None) -> Example:
    return Example(
        turns=[Turn("user", f"question {line}"), Turn("model", "answer")],
        timestamp=timestamp,
        source="log.jsonl",
        line=line,
    )


def lines_of(finding) -> list[int]:
    return [loc.line for loc in finding.locations]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-15", datetime(2024, 1, 15, tzinfo=UTC)),
        (" 2024-01-15 ", datetime(2024, 1, 15, tzinfo=UTC)),
        ("20240115", datetime(2024, 1, 15, tzinfo=UTC)),
        ("2024-01-15T10:30:00Z", datetime(2024, 1, 15, 10, 30, tzinfo=UTC)),
        ("2024-01-15T10:30:00", datetime(2024, 1, 15, 10, 30, tzinfo=UTC)),
        ("2024-01-15 10:30", datetime(2024, 1, 15, 10, 30, tzinfo=UTC)),
        ("2024-01-15T10:30:00.250+05:30", datetime(2024, 1, 15, 5, 0, 0, 250000, tzinfo=UTC)),
        ("2024-01-15T10:30:00-0800", datetime(2024, 1, 15, 18, 30, tzinfo=UTC)),
        ("2024-01-15 10:30:00 UTC", datetime(2024, 1, 15, 10, 30, tzinfo=UTC)),
        ("1700000000", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        ("1700000000.5", datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=UTC)),
        ("1700000000123", datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)),
        ("Tue, 15 Nov 1994 08:12:31 GMT", datetime(1994, 11, 15, 8, 12, 31, tzinfo=UTC)),
        ("01/02/2024", None),  # January or February? not guessed
        ("yesterday", None),
        ("6 pm", None),
        ("8", None),  # a slot value, not 1970
        ("2024-02-30", None),
        ("2024-13-01", None),
        ("99999999999999", None),
        ("", None),
    ],
)
def test_parse_timestamp(value, expected):
    assert parse_timestamp(value) == expected


def test_age_days():
    assert age_days(datetime(2026, 10, 31, 12, tzinfo=UTC), NOW) == 0.5
    assert age_days(NOW + timedelta(days=2), NOW) == -2


@given(st.text(max_size=40))
def test_parse_timestamp_never_raises_and_answers_in_utc(value):
    parsed = parse_timestamp(value)
    assert parsed is None or parsed.utcoffset() == timedelta(0)


@given(st.datetimes(min_value=datetime(1980, 1, 1), max_value=datetime(2999, 12, 31), timezones=st.just(UTC)))
def test_parse_timestamp_reads_what_isoformat_and_epoch_write(moment):
    assert parse_timestamp(moment.isoformat()) == moment
    assert parse_timestamp(moment.isoformat().replace("+00:00", "Z")) == moment
    # Whole seconds since the epoch, counted exactly: moment.timestamp() is a float, which rounds
    # 2515-01-01 00:00:00.999999 up to the next second.
    seconds = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(seconds=1)
    assert parse_timestamp(str(seconds)) == moment.replace(microsecond=0)


def test_examples_older_than_max_age_are_stale():
    examples = [
        dated(1, "2026-10-01"),
        dated(2, "2024-01-15T10:30:00Z"),
        dated(3, None),
        dated(4, "1500000000"),  # 2017
        dated(5, "2025-11-02"),  # 364 days old
    ]
    [finding] = check_staleness(examples, ctx_for(examples, max_age_days=365))
    assert (finding.code, finding.severity) == ("stale-example", "warning")
    assert lines_of(finding) == [2, 4]
    assert "2 of 4 examples with a timestamp are older than 365 days" in finding.message
    assert "2017-07-14" in finding.message
    assert "--max-age 365" in finding.hint


def test_unreadable_timestamps_cannot_be_judged():
    examples = [dated(1, "2026-10-20"), dated(2, "last week"), dated(3, "2019-01-01"), dated(4, "13/13/13")]
    findings = check_staleness(examples, ctx_for(examples, max_age_days=30))
    bad = next(f for f in findings if f.code == "bad-timestamp")
    assert bad.severity == "warning" and lines_of(bad) == [2, 4]
    assert "'last week'" in bad.message and "--max-age cannot judge" in bad.message
    assert [lines_of(f) for f in findings if f.code == "stale-example"] == [[3]]


def test_without_max_age_old_examples_are_advice_and_fresh_ones_pass():
    fresh = [dated(i, f"2026-10-{i:02d}") for i in range(1, 11)]
    assert check_staleness(fresh, ctx_for(fresh)) == []
    examples = fresh + [dated(11, "2023-05-01")]
    [finding] = check_staleness(examples, ctx_for(examples))
    assert (finding.code, finding.severity) == ("old-examples", "info")
    assert lines_of(finding) == [11]
    assert "--max-age" in finding.hint


def test_a_field_that_is_mostly_not_dates_is_not_a_timestamp():
    # A "time" slot ("6 pm", "seven") picked up as the timestamp field: no finding without --max-age.
    examples = [dated(1, "6 pm"), dated(2, "seven"), dated(3, "2026-10-01")]
    assert check_staleness(examples, ctx_for(examples)) == []
    assert check_staleness([dated(1, None)], ctx_for([dated(1, None)], max_age_days=1)) == []
