"""Structure: lines that could not be read, and conversations a tuning service rejects.

Google's official validator enforces what these checks enforce: roles are "user" and
"model", they alternate starting with "user", there is at least one model turn, and no
text is empty. A system instruction belongs before the conversation, not inside it.
The docs do not say a conversation must end with a model turn, so a trailing user turn
is a warning: nothing after the last model turn is trained on."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import TYPE_CHECKING

from ..example import MODEL, ROLES, USER, Example
from ..findings import Finding, Location, about
from .messages import count, count_examples
from ..formats import Unreadable

if TYPE_CHECKING:
    from . import CheckContext

SYSTEM = "system"
_DIGITS = re.compile(r"\d+")
_REASONS_SHOWN = 3  # distinct reasons spelled out in one message; the rest are counted


def check_unreadable(examples: list[Example], ctx: CheckContext) -> list[Finding]:
    """One error per kind of reason ("invalid JSON", "invalid UTF-8", ...), with every line."""
    by_kind: dict[str, list[Unreadable]] = defaultdict(list)
    for item in ctx.unreadable:
        by_kind[_reason_kind(item.reason)].append(item)
    return [_unreadable_finding(items) for items in by_kind.values()]


def _reason_kind(reason: str) -> str:
    # "invalid JSON (Expecting value at column 3)", "not a valid openai record: missing field
    # ..." and "row has 3 fields, the header has 2" are one kind each, whatever the detail.
    return _DIGITS.sub("N", reason.split(" (", 1)[0].split(":", 1)[0])


def _unreadable_finding(items: list[Unreadable]) -> Finding:
    reasons = Counter(item.reason for item in items).most_common()
    shown = "; ".join(f"{reason} on {_lines(n)}" for reason, n in reasons[:_REASONS_SHOWN])
    if len(reasons) == 1:
        shown = reasons[0][0]
    elif len(reasons) > _REASONS_SHOWN:
        shown += f"; and {len(reasons) - _REASONS_SHOWN} other details"
    return Finding(
        code="unreadable-line",
        severity="error",
        message=f"{_lines(len(items))} could not be read: {shown}. They are left out of everything else.",
        hint="Fix or remove these lines; if the format was guessed wrong, name it with --format.",
        locations=[Location(item.file, item.line) for item in items],
    )


def _lines(n: int) -> str:
    return count(n, "line")


# problem -> (severity, message, hint); in the message {n} is "3 examples", {has} agrees with
# it, {roles} lists the unknown roles.
_PROBLEMS = {
    "unknown-role": (
        "error",
        '{n} {has} turns whose role is neither "user" nor "model" (found: {roles}); tuning rejects such examples.',
        'Map these roles to "user" or "model", or remove the turns.',
    ),
    "system-inside": (
        "error",
        "{n} {has} a system turn inside the conversation; a system instruction can only come before the first turn.",
        "Move the system text to the example's system instruction, or fold it into a user turn.",
    ),
    "not-alternating": (
        "error",
        '{n} {has} turns that do not alternate "user", "model", "user", ... starting with "user"; '
        "Gemini's validator rejects such examples.",
        "Merge consecutive turns of the same role, and start each conversation with a user turn.",
    ),
    "no-model-turn": (
        "error",
        "{n} {has} no model turn, so there is nothing to train on.",
        "Add the expected answer as a model turn, or remove these examples.",
    ),
    "empty-text": (
        "error",
        "{n} {has} a turn or a system instruction whose text is empty or only whitespace; "
        "tuning rejects such examples.",
        "Fill in the missing text or remove the empty turns (leave out an unused system instruction).",
    ),
    "ends-without-model": (
        "warning",
        "{n} {has} a user turn last: nothing after the last model turn is trained on.",
        "Drop the trailing user turns, or add the model's answer to them.",
    ),
}


def check_structure(examples: list[Example], ctx: CheckContext) -> list[Finding]:
    """One finding per kind of problem, each with every example that has it."""
    problems: dict[str, list[Example]] = defaultdict(list)
    unknown_roles: set[str] = set()
    for ex in examples:
        unknown_roles.update(t.role for t in ex.turns if t.role not in ROLES and t.role != SYSTEM)
        for problem in _problems(ex):
            problems[problem].append(ex)
    roles = ", ".join(repr(r) for r in sorted(unknown_roles))
    findings = []
    for problem, (severity, message, hint) in _PROBLEMS.items():
        affected = problems.get(problem)
        if affected:
            has = "has" if len(affected) == 1 else "have"
            text = message.format(n=count_examples(len(affected)), has=has, roles=roles)
            findings.append(about("bad-structure", severity, text, hint, affected))
    return findings


def _problems(ex: Example) -> list[str]:
    """The kinds of problem one example has (keys of `_PROBLEMS`)."""
    roles = [t.role for t in ex.turns]
    found = []
    if any(r not in ROLES and r != SYSTEM for r in roles):
        found.append("unknown-role")
    if SYSTEM in roles:
        found.append("system-inside")
    conversation = [r for r in roles if r in ROLES]
    if any(role != (USER if i % 2 == 0 else MODEL) for i, role in enumerate(conversation)):
        found.append("not-alternating")
    if MODEL not in roles:
        found.append("no-model-turn")
    if any(not t.text.strip() for t in ex.turns) or (ex.system is not None and not ex.system.strip()):
        found.append("empty-text")
    if MODEL in roles and roles[-1] != MODEL:
        found.append("ends-without-model")
    return found


CHECKS = [check_unreadable, check_structure]
