"""A generator of realistic customer-support tickets, labelled for fine-tuning.

Each record is the guide's input-output example::

    {"input_text": "Classify the following customer support ticket: '<ticket>'",
     "output_text": "Category: Billing\\nPriority: High\\nAction: Refund the duplicate charge and confirm by email",
     "timestamp": "2026-03-14T09:21:07Z", "ticket_id": "T-482913"}

The tickets are about one fictional company, Brightly: a web workspace, a mobile app, smart
home devices and subscription plans. Every ticket is written from an *issue* (charged
twice, device offline, parcel missing, …) that fixes its category, priority and action, so
the label follows from what the customer says and a small model can learn it; the tone,
length, typos, order numbers and dates around it are noise.

The data also carries the pitfalls a practitioner's guide warns about, planted on purpose
and recorded by record index in `TicketSet.injected`, so that checks can be measured
against them: exact and near duplicates, conflicting labels, format drift, a rare class,
outdated examples and personal data. Every other record is clean: a unique ticket whose
output follows `Category: …\\nPriority: …\\nAction: …` exactly.

Deterministic: the same n, seed and anchor give the same records, byte for byte. The phrase
tables (issues and their phrasings, names, greetings, …) are data, in tickets_phrases.json
beside this module; the code holds how they are combined.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Iterator

from ..fileio import atomic_write_text

DEFAULT_ANCHOR = date(2026, 10, 31)  # "today" for the data set: timestamps count back from it
PROMPT = "Classify the following customer support ticket: '{ticket}'"
OUTPUT_TEMPLATE = "Category: {category}\nPriority: {priority}\nAction: {action}"

# Clean tickets fall within the last ~18 months; outdated ones 3 to 5 years back.
RECENT_DAYS = 548
OUTDATED_DAYS = (3 * 365 + 1, 5 * 365 - 1)

# What share of the n records carries each pitfall (at n=1200: 30, 18, 12, 36, 54, 7, 5).
PITFALL_SHARES = {
    "duplicate": 0.025,
    "near_duplicate": 0.015,
    "conflict": 0.01,
    "format_drift": 0.03,
    "outdated": 0.045,
    "rare_class": 0.006,  # 7 Security tickets: below any sensible per-class floor
    "pii": 0.004,  # 5 tickets with an email address or a phone number
}
PITFALLS = tuple(PITFALL_SHARES)
MIN_TICKETS = 100  # below this some pitfalls would round to nothing


@dataclass(frozen=True)
class Issue:
    """What a ticket is about, and so its label. Phrasings are format strings over the
    slots of `_slots`; `terse` ones are what a customer types in a hurry."""

    category: str
    priority: str
    action: str
    phrasings: tuple[str, ...]
    terse: tuple[str, ...]
    weight: int = 1  # how often customers write about it, relative to the other issues
    details: tuple[str, ...] | None = None  # context sentences; None: the category's (DETAILS)


# The phrase tables (issues, names, greetings, …) live in tickets_phrases.json beside this file.
_PHRASES = json.loads(resources.files(__package__).joinpath("tickets_phrases.json").read_text(encoding="utf-8"))


def _issues(key: str) -> tuple[Issue, ...]:
    return tuple(
        Issue(d["category"], d["priority"], d["action"], tuple(d["phrasings"]), tuple(d["terse"]), d.get("weight", 1),
              tuple(d["details"]) if "details" in d else None)
        for d in _PHRASES[key]
    )


def _strings(key: str) -> tuple[str, ...]:
    return tuple(_PHRASES[key])


ISSUES = _issues("issues")
RARE_ISSUES = _issues("rare_issues")  # the rare class: few enough that a per-class floor flags it
# Outdated: products and plans Brightly no longer sells, with the policies of their time.
OUTDATED_ISSUES = _issues("outdated_issues")
# A second annotator's reading of a ticket: the neighbouring category and its default action.
CONFLICTING = {category: tuple(reading) for category, reading in _PHRASES["conflicting"].items()}

# ---- the world the tickets talk about -------------------------------------------------

PLANS = tuple((name, price) for name, price in _PHRASES["plans"])
DEVICES = tuple((name, price) for name, price in _PHRASES["devices"])
PLATFORMS = _strings("platforms")
FIRST_NAMES = _strings("first_names")
LAST_NAMES = _strings("last_names")
MONTHS = _strings("months")


def _usd(amount: float) -> str:
    return f"${amount:,.2f}"


def _spoken_date(rng: random.Random, day: datetime) -> str:
    """A date as customers write it: "March 3", "3 March", "3/14" or "the 14th"."""
    month = MONTHS[day.month - 1]
    suffix = "th" if 11 <= day.day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day.day % 10, "th")
    return rng.choice((f"{month} {day.day}", f"{day.day} {month}", f"{day.month}/{day.day}", f"the {day.day}{suffix}"))


def _slots(rng: random.Random, when: datetime) -> dict[str, str]:
    """Values for every slot a phrasing may use, consistent with each other and with `when`."""
    device, device_price = rng.choice(DEVICES)
    plan, plan_price = rng.choice(PLANS)
    return {
        "device": device,
        "a_device": ("an " if device[0] in "AEIOU" else "a ") + device,
        "amount": _usd(device_price * rng.choice((1, 1, 1, 2, 3))),
        "plan": plan,
        "price": _usd(plan_price),
        "order": f"BW-{rng.randrange(100_000, 1_000_000)}",
        "date": _spoken_date(rng, when - timedelta(days=rng.randint(1, 20))),
        "platform": rng.choice(PLATFORMS),
        "days": str(rng.randint(5, 21)),
        "months": str(rng.randint(2, 11)),
        "seats": str(rng.randint(5, 60)),
        "app": "Brightly app",
        "workspace": "Brightly Workspace",
    }


# ---- how customers write ---------------------------------------------------------------

DETAILS = {category: tuple(sentences) for category, sentences in _PHRASES["details"].items()}
GREETINGS = _strings("greetings")
SIGNOFFS = _strings("signoffs")
ANGRY_OPENERS = _strings("angry_openers")
ANGRY_CLOSERS = _strings("angry_closers")
RAMBLES = _strings("rambles")
NON_NATIVE_OPENERS = _strings("non_native_openers")
NON_NATIVE_CLOSERS = _strings("non_native_closers")
# Phrases a non-native writer renders word for word (the articles are dropped separately).
NON_NATIVE_SWAPS = tuple((said, written) for said, written in _PHRASES["non_native_swaps"])
TONE_WEIGHTS = {"neutral": 25, "polite": 22, "terse": 15, "angry": 13, "rambling": 13, "non_native": 12}
TYPO_RATE = 0.12


@dataclass(frozen=True)
class _Said:
    """What a customer has to say about an issue, before tone and length are chosen."""

    core: str  # the issue, in a sentence or two
    terse: str  # the issue as typed in a hurry
    detail: str  # one more sentence of context, or ""


def _write_neutral(rng: random.Random, said: _Said) -> str:
    return f"{said.core} {said.detail}" if said.detail and rng.random() < 0.5 else said.core


def _write_terse(rng: random.Random, said: _Said) -> str:
    return said.terse


def _write_polite(rng: random.Random, said: _Said) -> str:
    signoff = rng.choice(SIGNOFFS).format(name=rng.choice(FIRST_NAMES))
    return f"{rng.choice(GREETINGS)}\n{_write_neutral(rng, said)}\n{signoff}"


def _write_angry(rng: random.Random, said: _Said) -> str:
    core = said.core.rstrip(".") + "!!" if rng.random() < 0.4 else said.core
    return f"{rng.choice(ANGRY_OPENERS)} {core} {rng.choice(ANGRY_CLOSERS)}"


def _write_rambling(rng: random.Random, said: _Said) -> str:
    before, after = (line.format(year=rng.randint(2016, 2024)) for line in rng.sample(RAMBLES, 2))
    paragraph = " ".join(part for part in (before, said.core, said.detail, after) if part)
    signoff = rng.choice(SIGNOFFS).format(name=rng.choice(FIRST_NAMES))
    return f"{rng.choice(GREETINGS)}\n{paragraph}\n{signoff}"


def _write_non_native(rng: random.Random, said: _Said) -> str:
    body = _write_neutral(rng, said)
    for idiom, literal in NON_NATIVE_SWAPS:
        body = body.replace(idiom, literal)
    body = re.sub(r"\b(the|a) ", lambda m: "" if rng.random() < 0.6 else m.group(0), body)
    return f"{rng.choice(NON_NATIVE_OPENERS)} {body} {rng.choice(NON_NATIVE_CLOSERS)}"


WRITERS = {
    "neutral": _write_neutral,
    "polite": _write_polite,
    "terse": _write_terse,
    "angry": _write_angry,
    "rambling": _write_rambling,
    "non_native": _write_non_native,
}


def _then(text: str, sentence: str) -> str:
    """`sentence` after `text`, with a full stop between them where the customer left none."""
    return f"{text} {sentence}" if text.endswith((".", "!", "?")) else f"{text}. {sentence}"


def _add_typo(rng: random.Random, text: str) -> str:
    """Swap two inner letters of one lowercase word; names, amounts, ids and the parts of
    an email address stay intact."""
    words = list(re.finditer(r"(?<![\w@.])[a-z]{5,}(?![\w@]|\.\w)", text))
    if not words:
        return text
    word = rng.choice(words)
    i = rng.randrange(word.start() + 1, word.end() - 2)
    return text[:i] + text[i + 1] + text[i] + text[i + 2:]


def _write_ticket(rng: random.Random, issue: Issue, slots: dict[str, str], personal: str = "") -> str:
    """The ticket in a random tone; `personal` (a sentence with contact details) goes right
    after the issue, where customers put it."""
    details = DETAILS[issue.category] if issue.details is None else issue.details
    core = rng.choice(issue.phrasings).format_map(slots)
    terse = rng.choice(issue.terse).format_map(slots) if issue.terse else core
    said = _Said(
        core=f"{core} {personal}" if personal else core,
        terse=_then(terse, personal) if personal else terse,
        detail=rng.choice(details).format_map(slots) if details else "",
    )
    tone = rng.choices(list(TONE_WEIGHTS), weights=list(TONE_WEIGHTS.values()))[0]
    text = WRITERS[tone](rng, said)
    return _add_typo(rng, text) if rng.random() < TYPO_RATE else text


# ---- outputs: the template and the ways it drifts ----------------------------------------


def _template(category: str, priority: str, action: str) -> str:
    return OUTPUT_TEMPLATE.format(category=category, priority=priority, action=action)


def _drift_pipes(category: str, priority: str, action: str) -> str:
    return f"category: {category.lower()} | priority: {priority.lower()} | action: {action.lower()}"


def _drift_no_action(category: str, priority: str, action: str) -> str:
    return f"Category: {category}\nPriority: {priority}"


def _drift_json(category: str, priority: str, action: str) -> str:
    return json.dumps({"category": category, "priority": priority, "action": action})


def _drift_lowercase_keys(category: str, priority: str, action: str) -> str:
    return f"category: {category}\npriority: {priority}\naction: {action}"


def _drift_preamble(category: str, priority: str, action: str) -> str:
    return "Sure! Here is the classification of this ticket:\n" + _template(category, priority, action)


def _drift_one_line(category: str, priority: str, action: str) -> str:
    return f"Category: {category}, Priority: {priority}, Action: {action}"


DRIFTS = (_drift_pipes, _drift_no_action, _drift_json, _drift_lowercase_keys, _drift_preamble, _drift_one_line)


# ---- the other pitfalls ------------------------------------------------------------------


def _normalized(text: str) -> str:
    """The text as a duplicate check sees it: lowercase words, punctuation ignored."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


# Small edits a customer makes when sending the same ticket again; each changes at least one word.
REWORDINGS = (
    lambda t: None if re.match(r"(Hi|Hello|Hey|Good|Dear|Respected)\b", t) else "Hi, " + t,
    lambda t: None if "thank" in t.lower() or "\n" in t else _then(t, "Thanks."),
    lambda t: t.replace("I'm ", "I am ", 1) if "I'm " in t else None,
    lambda t: t.replace("can't", "cannot", 1) if "can't" in t else None,
    lambda t: t.replace("don't", "do not", 1) if "don't" in t else None,
    lambda t: t.replace(" my ", " our ", 1) if " my " in t else None,
)


def _reword(rng: random.Random, text: str) -> str:
    for edit in rng.sample(REWORDINGS, len(REWORDINGS)):
        changed = edit(text)
        if changed is not None and _normalized(changed) != _normalized(text):
            return changed
    return text + " Any update?"


def _personal_data(rng: random.Random) -> str:
    """A sentence with a fictional email address or phone number (555-01xx and 07700 900xxx
    are reserved for fiction in the US and the UK)."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    email = f"{first.lower()}.{last.lower()}{rng.randint(1, 99)}@{rng.choice(('gmail.com', 'outlook.com', 'yahoo.com'))}"
    phone = rng.choice((f"(415) 555-01{rng.randint(0, 99):02d}", f"+1 212-555-01{rng.randint(0, 99):02d}", f"07700 900{rng.randint(0, 999):03d}"))
    return rng.choice((
        f"You can reach me at {email}.",
        f"My email is {email} if you need it.",
        f"Please call me back on {phone}.",
        f"Call me at {phone}, I'm around all day.",
    ))


# ---- putting it together -------------------------------------------------------------------


@dataclass
class TicketSet:
    records: list[dict]
    injected: dict[str, list[int]]  # pitfall -> indices of the records that carry it

    def to_jsonl(self) -> str:
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self.records)


def pitfall_counts(n: int) -> dict[str, int]:
    """How many records carry each pitfall in a set of n."""
    return {name: max(1, round(n * share)) for name, share in PITFALL_SHARES.items()}


def generate_tickets(n: int = 1200, seed: int = 0, anchor: date = DEFAULT_ANCHOR) -> TicketSet:
    """n labelled tickets with the pitfalls planted; see the module docstring."""
    if n < MIN_TICKETS:
        raise ValueError(f"n must be at least {MIN_TICKETS} so that every pitfall appears (got {n})")
    rng = random.Random(seed)
    counts = pitfall_counts(n)
    now = datetime.combine(anchor, time(0), tzinfo=timezone.utc)
    # Copies (duplicates, near duplicates, conflicts) are made from originals written first.
    copies = counts["duplicate"] + counts["near_duplicate"] + counts["conflict"]
    ticket_ids = iter(rng.sample(range(100_000, 1_000_000), n - counts["duplicate"] - counts["conflict"]))
    originals = _originals(rng, n - copies, counts, now, ticket_ids)
    items = _with_copies(rng, originals, counts, now, ticket_ids)
    return TicketSet(
        records=[record for _, record in items],
        injected={name: [i for i, (kind, _) in enumerate(items) if kind == name] for name in PITFALLS},
    )


def _originals(
    rng: random.Random, size: int, counts: dict[str, int], now: datetime, ticket_ids: Iterator[int]
) -> list[tuple[str, dict]]:
    """(kind, record) for every record that is not a copy, in a random order; kind is
    "clean" or the pitfall the record carries."""
    kinds = [name for name in ("rare_class", "outdated", "pii", "format_drift") for _ in range(counts[name])]
    kinds += ["clean"] * (size - len(kinds))
    rng.shuffle(kinds)
    seen: set[str] = set()
    return [(kind, _original(rng, kind, now, next(ticket_ids), seen)) for kind in kinds]


def _original(rng: random.Random, kind: str, now: datetime, ticket_id: int, seen: set[str]) -> dict:
    issues = {"rare_class": RARE_ISSUES, "outdated": OUTDATED_ISSUES}.get(kind, ISSUES)
    if kind == "outdated":
        when = now - timedelta(days=rng.randint(*OUTDATED_DAYS), seconds=rng.randrange(86_400))
    else:
        when = now - timedelta(seconds=rng.randint(60, RECENT_DAYS * 86_400))
    issue = rng.choices(issues, weights=[i.weight for i in issues])[0]
    text = _unique_text(rng, issue, when, seen, _personal_data(rng) if kind == "pii" else "")
    shape = rng.choice(DRIFTS) if kind == "format_drift" else _template
    return _record(text, shape(issue.category, issue.priority, issue.action), when, ticket_id)


def _unique_text(rng: random.Random, issue: Issue, when: datetime, seen: set[str], personal: str) -> str:
    """A ticket no earlier ticket matches once normalized, so that the only duplicates and
    conflicts in the set are the recorded ones."""
    for _ in range(1000):
        text = _write_ticket(rng, issue, _slots(rng, when), personal)
        if _normalized(text) not in seen:
            seen.add(_normalized(text))
            return text
    raise RuntimeError("could not write a new ticket text; the phrasings are exhausted")


def _record(ticket: str, output: str, when: datetime, ticket_id: int) -> dict:
    return {
        "input_text": PROMPT.format(ticket=ticket),
        "output_text": output,
        "timestamp": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ticket_id": f"T-{ticket_id}",
    }


def _with_copies(
    rng: random.Random, originals: list[tuple[str, dict]], counts: dict[str, int], now: datetime, ticket_ids: Iterator[int]
) -> list[tuple[str, dict]]:
    """The originals with each copy inserted somewhere after the clean record it copies
    (every copy has its own source, so copy groups never overlap)."""
    items = list(originals)
    clean = [item for item in originals if item[0] == "clean"]
    kinds = [name for name in ("duplicate", "near_duplicate", "conflict") for _ in range(counts[name])]
    for kind, source in zip(kinds, rng.sample(clean, len(kinds))):
        copy = (kind, _copy(rng, kind, source[1], now, next(ticket_ids) if kind == "near_duplicate" else None))
        after = next(i for i, item in enumerate(items) if item is source)
        items.insert(rng.randint(after + 1, len(items)), copy)
    return items


def _copy(rng: random.Random, kind: str, source: dict, now: datetime, new_id: int | None) -> dict:
    """A copy of a clean record; `new_id` is the ticket id of a near duplicate (the others
    are the same ticket and keep its id)."""
    if kind == "duplicate":  # the same row exported twice
        return dict(source)
    if kind == "conflict":  # the same ticket, labelled again by someone who read it differently
        category, priority, _ = _fields(source["output_text"])
        other, other_action = CONFLICTING[category]
        return {**source, "output_text": _template(other, priority, other_action)}
    # A near duplicate: the customer sends the ticket again, slightly reworded, a little later.
    sent = datetime.strptime(source["timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    later = min(sent + timedelta(minutes=rng.randint(10, 72 * 60)), now - timedelta(minutes=1))
    return _record(_reword(rng, _ticket_of(source)), source["output_text"], later, new_id)


def _ticket_of(record: dict) -> str:
    prefix, suffix = PROMPT.split("{ticket}")
    return record["input_text"][len(prefix):-len(suffix)]


def _fields(output: str) -> list[str]:
    """Category, priority and action of a templated output."""
    return [line.split(": ", 1)[1] for line in output.split("\n")]


def write_tickets(path: str | Path, n: int = 1200, seed: int = 0, anchor: date = DEFAULT_ANCHOR) -> TicketSet:
    """Generate the tickets and write them as JSONL, atomically."""
    tickets = generate_tickets(n, seed, anchor)
    atomic_write_text(path, tickets.to_jsonl())
    return tickets
