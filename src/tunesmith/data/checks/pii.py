"""Personal data: email addresses, phone numbers and payment card numbers in any turn or
system instruction.

Precision matters more than recall here: a warning on every order number would teach
people to ignore the check. So phone numbers must look like phone numbers (an
international "+" number, or a national number written with the usual separators), card
numbers must carry a card network's prefix and pass the Luhn checksum, and digits that
run on into letters, dashes or more digits (order ids, dates, amounts) are left alone."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..example import Example
from ..findings import Finding, about
from .messages import count

if TYPE_CHECKING:
    from . import CheckContext

EMAIL, PHONE, CARD = "email", "phone", "card"
PLACEHOLDERS = {EMAIL: "[EMAIL]", PHONE: "[PHONE]", CARD: "[CARD]"}

_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}(?![\w-])")

# 13 to 19 digits, in groups separated by single spaces or dashes; not inside a longer number.
_CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
# The prefixes card networks issue from (Visa 4; Mastercard 51-55 and 2221-2720; Maestro 50;
# Amex 34, 37; JCB 35; Diners 36, 38, 300-305; Discover, UnionPay and Maestro 6): one id in
# ten passes the Luhn check by chance, so the prefix matters (order 113542617735902 passes).
_CARD_PREFIX = re.compile(r"4|5[0-5]|2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)|3[4-8]|30[0-5]|6")

_PHONE = re.compile(
    r"(?<![\w+-])(?:"
    # international: +CC then up to 5 more groups, e.g. +44 20 7946 0958, +1 (415) 555-0100, +4930123456
    r"\+\d{1,3}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d{1,5}){1,5}"
    # North American: (415) 555-0100, 415-555-0100, 415.555.0100, 1-800-555-0100
    r"|(?:1[ .-])?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}"
    # national numbers with a trunk 0: 020 7946 0958, 07700 900123, 01 23 45 67 89
    r"|0[1-9]\d{0,3}(?:[ .-]\d{2,6}){1,4}"
    r")(?![\w-]|[.,]\d)"
)
PHONE_DIGITS = {"+": (8, 15), "0": (10, 11)}  # digits a match must hold, by its first character
NANP_DIGITS = (10, 11)

# A cheap test that rules out most texts before the number regexes run.
_MAY_HAVE_NUMBER = re.compile(r"\d[\d ().-]{5,}\d")
_NON_DIGIT = re.compile(r"\D")


def redact_pii(text: str) -> tuple[str, dict[str, int]]:
    """`text` with email addresses, phone numbers and card numbers replaced by [EMAIL],
    [PHONE] and [CARD], and how many of each kind were replaced (kinds found only)."""
    counts: Counter[str] = Counter()
    if "@" in text:
        text = _EMAIL.sub(_replacer(EMAIL, counts, lambda m: True), text)
    if _MAY_HAVE_NUMBER.search(text):
        text = _CARD.sub(_replacer(CARD, counts, _is_card), text)
        text = _PHONE.sub(_replacer(PHONE, counts, _is_phone), text)
    return text, dict(counts)


def _replacer(kind: str, counts: Counter[str], accept: Callable[[re.Match], bool]) -> Callable[[re.Match], str]:
    def replace(m: re.Match) -> str:
        if not accept(m):
            return m.group()
        counts[kind] += 1
        return PLACEHOLDERS[kind]

    return replace


def _is_card(m: re.Match) -> bool:
    digits = _NON_DIGIT.sub("", m.group())
    return _CARD_PREFIX.match(digits) is not None and _luhn_valid(digits)


def _luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _is_phone(m: re.Match) -> bool:
    text = m.group()
    n_digits = sum(ch.isdigit() for ch in text)
    low, high = PHONE_DIGITS.get(text[0], NANP_DIGITS)
    return low <= n_digits <= high


def check_pii(examples: list[Example], ctx: CheckContext) -> list[Finding]:
    """pii: examples holding email addresses, phone numbers or payment card numbers."""
    totals: Counter[str] = Counter()
    affected = []
    for ex in examples:
        found = _pii_counts(ex)
        if found:
            totals.update(found)
            affected.append(ex)
    if not affected:
        return []
    kinds = ", ".join(_count(totals[kind], kind) for kind in (EMAIL, PHONE, CARD) if totals[kind])
    n = len(affected)
    message = (
        f"{n:,} example{'' if n == 1 else 's'} contain{'s' if n == 1 else ''} personal data: {kinds}. "
        "A tuned model can repeat what it was trained on."
    )
    hint = "Remove it, or replace it with [EMAIL], [PHONE] and [CARD] using tunesmith data prepare --redact-pii."
    return [about("pii", "warning", message, hint, affected)]


def _pii_counts(ex: Example) -> Counter[str]:
    found: Counter[str] = Counter()
    for text in ([ex.system] if ex.system else []) + [t.text for t in ex.turns]:
        found.update(redact_pii(text)[1])
    return found


_NAMES = {
    EMAIL: ("email address", "email addresses"),
    PHONE: ("phone number", "phone numbers"),
    CARD: ("payment card number", "payment card numbers"),
}


def _count(n: int, kind: str) -> str:
    return count(n, *_NAMES[kind])


CHECKS = [check_pii]
