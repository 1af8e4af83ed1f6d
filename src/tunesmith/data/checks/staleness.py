"""Outdated examples: examples older than --max-age, judged by their timestamp field.

Timestamps stay strings as found in the input (`Example.timestamp`); `parse_timestamp`
reads the usual ones: ISO 8601 dates and date-times (with or without a time zone or "Z",
basic "20240115" or extended "2024-01-15"), Unix epoch seconds or milliseconds written as
9 to 13 digits, and RFC 2822 dates ("Tue, 15 Nov 1994 08:12:31 GMT"). Anything else, such
as "01/02/2024" (January or February?), is left unread rather than guessed. A time without
a zone is taken as UTC."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from ..example import Example
from ..findings import Finding, about
from .messages import count_examples

if TYPE_CHECKING:
    from . import CheckContext

SECONDS_PER_DAY = 86_400
# Epoch numbers have 9 to 13 digits (1973 to 5138 in either unit), so that a "time" field
# holding "8" is not read as 1970. From 10^11 up they are milliseconds: 10^11 seconds is
# the year 5138, 10^11 milliseconds is 1973.
EPOCH_MILLISECONDS_FROM = 10**11
# Without --max-age the check still points out examples older than this, as advice.
OLD_AFTER_DAYS = 365

_ISO = re.compile(
    r"(?P<year>\d{4})-?(?P<month>\d{2})-?(?P<day>\d{2})"
    r"(?:[T ](?P<hour>\d{2}):?(?P<minute>\d{2})(?::?(?P<second>\d{2})(?:[.,](?P<fraction>\d+))?)?)?"
    r"\s*(?P<zone>[Zz]|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?",
    re.ASCII,
)
_EPOCH = re.compile(r"\d{9,13}(?:\.\d+)?", re.ASCII)


def parse_timestamp(value: str) -> datetime | None:
    """The moment `value` names, in UTC (a time without a zone is taken as UTC); None when
    it is not a timestamp this module reads."""
    value = value.strip()
    for parse in (_parse_iso, _parse_epoch, _parse_rfc2822):
        try:
            parsed = parse(value)
        except (ValueError, OverflowError, OSError):  # out-of-range dates and epochs
            parsed = None
        if parsed is not None:
            return parsed
    return None


def _parse_iso(value: str) -> datetime | None:
    m = _ISO.fullmatch(value)
    if m is None:
        return None
    year, month, day = int(m["year"]), int(m["month"]), int(m["day"])
    hour, minute, second = (int(m[part] or 0) for part in ("hour", "minute", "second"))
    microsecond = int((m["fraction"] or "")[:6].ljust(6, "0"))
    moment = datetime(year, month, day, hour, minute, second, microsecond, tzinfo=_zone(m["zone"]))
    return moment.astimezone(timezone.utc)


def _zone(text: str | None) -> timezone:
    if not text or text in ("Z", "z", "UTC", "GMT"):
        return timezone.utc
    digits = text[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
    return timezone(-offset if text[0] == "-" else offset)


def _parse_epoch(value: str) -> datetime | None:
    if not _EPOCH.fullmatch(value):
        return None
    number = float(value)
    seconds = number / 1000 if number >= EPOCH_MILLISECONDS_FROM else number
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def _parse_rfc2822(value: str) -> datetime | None:
    if not any(ch.isalpha() for ch in value):  # RFC 2822 names the month; saves the slow parser
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, IndexError):  # older Pythons raise these instead of ValueError
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def age_days(ts: datetime, now: datetime) -> float:
    """Days from `ts` to `now` (negative when `ts` is in the future)."""
    return (now - ts).total_seconds() / SECONDS_PER_DAY


def check_staleness(examples: list[Example], ctx: CheckContext) -> list[Finding]:
    """stale-example: examples older than --max-age (warning). Without --max-age,
    old-examples: those older than a year, as advice (info). bad-timestamp: timestamps
    that cannot be read (warning)."""
    dated: list[tuple[Example, datetime]] = []
    unreadable: list[Example] = []
    for ex in examples:
        if ex.timestamp is not None:
            ts = parse_timestamp(ex.timestamp)
            if ts is None:
                unreadable.append(ex)
            else:
                dated.append((ex, ts))
    findings = _bad_timestamps(unreadable, len(dated), ctx)
    if ctx.max_age_days is not None:
        findings += _stale(dated, ctx, ctx.max_age_days)
    else:
        findings += _old(dated, ctx)
    return findings


def _bad_timestamps(unreadable: list[Example], n_dated: int, ctx: CheckContext) -> list[Finding]:
    # Without --max-age, a field that is mostly not dates (a "time" field holding "6 pm") is
    # probably not a timestamp at all: say nothing. Otherwise the unreadable ones stand out.
    if not unreadable or (ctx.max_age_days is None and len(unreadable) > n_dated):
        return []
    shown = ", ".join(sorted({repr(ex.timestamp) for ex in unreadable})[:3])
    n = len(unreadable)
    message = f"{count_examples(n)} {'has' if n == 1 else 'have'} a timestamp that is not a date ({shown})"
    if ctx.max_age_days is not None:
        message += "; --max-age cannot judge their age"
    hint = "Write timestamps as ISO 8601 (2024-01-15 or 2024-01-15T10:30:00Z) or as Unix epoch seconds."
    return [about("bad-timestamp", "warning", message + ".", hint, unreadable)]


def _stale(dated: list[tuple[Example, datetime]], ctx: CheckContext, max_age_days: float) -> list[Finding]:
    old = _older_than(dated, ctx.now, max_age_days)
    if not old:
        return []
    message = _age_message(old, len(dated), max_age_days, ctx.now) + "; outdated examples teach outdated answers."
    hint = f"Drop them with tunesmith data prepare --max-age {max_age_days:g}, or bring their answers up to date."
    return [about("stale-example", "warning", message, hint, [ex for ex, _ in old])]


def _old(dated: list[tuple[Example, datetime]], ctx: CheckContext) -> list[Finding]:
    old = _older_than(dated, ctx.now, OLD_AFTER_DAYS)
    if not old:
        return []
    message = _age_message(old, len(dated), OLD_AFTER_DAYS, ctx.now) + "."
    hint = "If the right answers have changed since, drop old examples with tunesmith data prepare --max-age DAYS."
    return [about("old-examples", "info", message, hint, [ex for ex, _ in old])]


def _older_than(dated: list[tuple[Example, datetime]], now: datetime, days: float) -> list[tuple[Example, datetime]]:
    return [(ex, ts) for ex, ts in dated if age_days(ts, now) > days]


def _age_message(old: list[tuple[Example, datetime]], n_dated: int, days: float, now: datetime) -> str:
    oldest = min(ts for _, ts in old)
    return (
        f"{len(old):,} of {n_dated:,} examples with a timestamp are older than {days:,g} days "
        f"(the oldest is from {oldest:%Y-%m-%d}, {age_days(oldest, now):,.0f} days ago)"
    )


CHECKS = [check_staleness]
