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

Deterministic: the same n, seed and anchor give the same records, byte for byte.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
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


ISSUES = (
    # Billing
    Issue("Billing", "High", "Refund the duplicate charge and confirm by email", (
        "I was charged twice for my {plan} this month, two payments of {price} on {date}.",
        "My card got billed {price} two times for the {plan} renewal.",
        "There are two identical charges of {price} on my statement from {date} for the {plan}.",
        "You took the {plan} payment twice. I only have one subscription.",
    ), ("charged twice for {plan}, {price} x2", "double charge on {date}, pls refund", "billed twice this month ({price})"), weight=5),
    Issue("Billing", "High", "Refund the charge made after cancellation and confirm the cancellation", (
        "I cancelled my {plan} on {date} but you still charged me {price}.",
        "Why was I billed {price} for the {plan}? I cancelled it weeks ago.",
        "Got a {price} renewal charge even though my subscription was cancelled on {date}.",
    ), ("cancelled {plan} but still charged {price}", "charged {price} after i cancelled??"), weight=4),
    Issue("Billing", "Low", "Send a copy of the invoice", (
        "Could you send me an invoice for the {plan} payment from {date}? I need it for my expense report.",
        "I need a VAT invoice for order {order} ({amount}).",
        "Where can I download receipts for my {plan}? Accounting is asking for the last three.",
    ), ("need invoice for order {order}", "receipt for the {date} payment pls"), weight=4),
    Issue("Billing", "Low", "Explain the charges on the account", (
        "My {plan} went up to {price} this month and I didn't see any announcement. What changed?",
        "I don't understand the {price} line on my last bill, what is it for?",
        "Can you explain what the {price} charge from {date} is for? I thought my {plan} was cheaper.",
    ), ("what is the {price} charge on {date}?", "why did my {plan} price go up to {price}"), weight=4),
    Issue("Billing", "Medium", "Send instructions to update the payment method", (
        "My payment for the {plan} keeps getting declined but the card works everywhere else.",
        "I got a message that my {plan} will be paused because the payment failed. I want to use a different card.",
        "I can't update my credit card on the billing page, it just spins forever.",
    ), ("payment declined for {plan}", "how do i change my card for the {plan}"), weight=4),
    Issue("Billing", "Low", "Change the plan and explain the prorated credit", (
        "I'd like to switch from the {plan} to something cheaper, do I get the rest of the month back?",
        "Please downgrade my account from the {plan} to the free tier starting next cycle.",
        "Is it possible to move down from {plan} to a smaller plan without losing my data?",
    ), ("downgrade my {plan} please", "switch me from {plan} to a cheaper plan"), weight=3),
    # Technical
    Issue("Technical", "Urgent", "Escalate to tier-2 engineering", (
        "{workspace} has been down for our whole team since this morning, nobody can load any documents.",
        "We are getting a 502 error on {workspace} for every user in the company. This is blocking all our work.",
        "Total outage here: none of our {seats} users can log in to {workspace} and we have a client deadline today.",
        "All of my devices show offline and the {app} says the service is unavailable. Is there an outage?",
    ), ("{workspace} down for everyone", "whole team ({seats} people) getting 502 errors", "service down?? nothing loads for any of our {seats} users"), weight=3),
    Issue("Technical", "High", "Collect the crash logs and escalate to tier-2 engineering", (
        "The {app} crashes as soon as I open it on my {platform} since the last update.",
        "Every time I tap on the device list the {app} closes itself. Reinstalling didn't help.",
        "After updating my {platform} the {app} freezes on the splash screen and then crashes.",
    ), ("app crashes on launch ({platform})", "{app} keeps crashing after update on {platform}"), weight=5),
    Issue("Technical", "Medium", "Walk the customer through resetting the device", (
        "My {device} keeps going offline and won't reconnect to the wifi.",
        "I set up the new {device} yesterday but it never shows up in the {app}.",
        "The {device} blinks red and says it can't reach the network, my router is fine.",
    ), ("{device} offline again", "{device} won't connect to wifi"), weight=6),
    Issue("Technical", "Medium", "Send the sync troubleshooting steps", (
        "Changes I make on my laptop in {workspace} don't show up on my {platform} anymore.",
        "My notes haven't synced between devices since {date}.",
        "The {app} shows old data, sync seems stuck on 'pending' since {date}.",
    ), ("sync stuck since {date}", "data not syncing to my {platform}"), weight=4),
    Issue("Technical", "Low", "Send the help-center article", (
        "How do I set up a schedule so my {device} turns on at sunset?",
        "Is there a way to export my {workspace} projects to PDF?",
        "Can I control the {device} with a voice assistant?",
    ), ("how to set a schedule on {device}?", "can i export {workspace} pages to pdf?"), weight=5,
        details=("I couldn't find it in the settings.", "I'm on the {plan}.")),
    Issue("Technical", "Low", "Send the notification settings guide", (
        "I stopped getting notifications from the {app} on my {platform}.",
        "The alerts from my {device} arrive hours late on my {platform}.",
        "How do I turn off the daily summary emails? They're too much.",
    ), ("no notifications on my {platform}", "{device} alerts arrive late"), weight=3),
    # Account
    Issue("Account", "High", "Verify identity and restore account access", (
        "I'm locked out of my account after too many login attempts and I need it for work today.",
        "I lost my phone with the two-factor app and now I can't log in at all.",
        "My account says it's disabled and I can't get in. I haven't done anything wrong.",
    ), ("locked out of my account since {date}", "lost 2fa phone, can't log in"), weight=5),
    Issue("Account", "Medium", "Resend the password reset link", (
        "I requested a password reset three times but the email never arrives, not even in spam.",
        "The password reset link says it has expired as soon as I click it.",
        "I asked for a new password on {date} and still haven't received the reset email.",
    ), ("reset email never arrives", "password reset link expired, requested on {date}"), weight=4),
    Issue("Account", "Low", "Update the account details after verification", (
        "I got married and need to change the name on my account.",
        "How can I change the email address I use to sign in? I'm moving to a new work address.",
        "Please update the company name on our {workspace} account to our new legal name.",
    ), ("change name on account", "update my login email please"), weight=3),
    Issue("Account", "Medium", "Confirm the request and start account deletion", (
        "Please delete my account and all my data, I don't use the service anymore.",
        "I want to close my account permanently. How long does deletion take?",
        "I'm cancelling the {plan} and want every bit of my data removed from your systems.",
    ), ("delete my account pls", "close my account and erase my data"), weight=3),
    Issue("Account", "Low", "Explain how to invite team members", (
        "How do I add two more people to our {workspace} team?",
        "We bought {seats} seats but I can't figure out how to invite my colleagues.",
        "Where do I send invites so my coworkers can join our {workspace}?",
    ), ("how to add users to {workspace}?", "invite {seats} colleagues to workspace?"), weight=3),
    # Shipping
    Issue("Shipping", "Medium", "Contact the carrier and send the tracking status", (
        "My order {order} was supposed to arrive on {date} and it still hasn't come.",
        "It's been {days} days since I ordered the {device} and the tracking hasn't updated.",
        "Order {order} has been stuck 'in transit' for over a week now.",
    ), ("order {order} late", "tracking not updating for {order}"), weight=6),
    Issue("Shipping", "High", "Open a carrier investigation and ship a replacement", (
        "Tracking says order {order} was delivered on {date} but there was nothing at my door.",
        "The {device} I paid {amount} for shows as delivered but I never got it. Neighbours don't have it either.",
        "Order {order} is marked delivered, but no package arrived and the carrier photo is not my house.",
    ), ("says delivered, never got it ({order})", "package {order} marked delivered but missing"), weight=3),
    Issue("Shipping", "Medium", "Update the shipping address before dispatch", (
        "I just placed order {order} and put my old address. Can you change it before it ships?",
        "Please send order {order} to my office instead of home, it hasn't shipped yet.",
        "Typo in the street name on order {order}, can you fix the address before dispatch?",
    ), ("wrong address on {order}, pls change", "change shipping address for {order}"), weight=3),
    Issue("Shipping", "Low", "Send the tracking link", (
        "I ordered {a_device} on {date}. Is there a tracking number?",
        "When will order {order} ship? The confirmation didn't say.",
        "Could you tell me how to track order {order}?",
    ), ("tracking number for {order}?", "when does {order} ship"), weight=4),
    # Returns
    Issue("Returns", "High", "Ship a replacement and email a prepaid return label", (
        "The {device} from order {order} arrived with a cracked case and won't turn on.",
        "Box was crushed and the {device} inside is broken. I paid {amount} for this.",
        "My {device} arrived smashed, glass everywhere in the box. Order {order}.",
    ), ("{device} arrived broken", "damaged item in order {order}"), weight=4),
    Issue("Returns", "Low", "Email a prepaid return label", (
        "I'd like to return the {device} I bought on {date}, it isn't what I needed.",
        "Can I send back order {order}? It's unopened and I'm within 30 days.",
        "The {device} doesn't suit our home after all. How do I return it for a refund?",
    ), ("want to return the {device}", "return order {order} pls"), weight=4),
    Issue("Returns", "Medium", "Ship the correct item and email a return label", (
        "I ordered {a_device} but received something completely different in order {order}.",
        "Wrong model in my package, order {order}. I need the one I paid {amount} for.",
        "You sent me two of the wrong item instead of the {device} in order {order}.",
    ), ("wrong item in {order}", "got the wrong product instead of {device}"), weight=3),
    Issue("Returns", "Medium", "Check the return status and issue the refund", (
        "I sent back the {device} on {date} and still haven't received my {amount} refund.",
        "Your warehouse confirmed my return for order {order} but no refund yet after {days} days.",
        "Where is my refund for the returned {device}? It's been {days} days.",
    ), ("where is my refund for {order}", "refund of {amount} not received"), weight=3),
    Issue("Returns", "Medium", "Start a warranty replacement", (
        "My {device} stopped working after {months} months. Is it still under warranty?",
        "The {device} I bought last year started flickering and now it's dead.",
        "My {device} won't power on anymore, it's only {months} months old.",
    ), ("{device} died, warranty?", "{device} stopped working after {months} months"), weight=3),
)

# The rare class: few enough that a per-class floor flags it.
RARE_ISSUES = (
    Issue("Security", "Urgent", "Lock the account, reset credentials and escalate to the security team", (
        "I got an alert about a login from another country that wasn't me, and my password was changed.",
        "Someone accessed my account and changed the sign-in email. I think I've been hacked.",
        "There are devices in my account I don't recognise and someone viewed my {device} history.",
    ), ()),
    Issue("Security", "High", "Forward the report to the security team and warn the customer", (
        "I received an email that looks like it's from you asking for my card details. Is it legit?",
        "Got a text saying my account is suspended, with a strange link to log in. Is this phishing?",
    ), ()),
)

# Outdated: products and plans Brightly no longer sells, with the policies of their time.
OUTDATED_ISSUES = (
    Issue("Technical", "Medium", "Send the Hub v1 firmware 1.8 reflash instructions", (
        "My Hub v1 keeps dropping off the network after the last firmware update.",
        "The light on my Hub v1 is stuck on orange and none of the bulbs respond.",
    ), ("Hub v1 offline again",), details=()),
    Issue("Billing", "Low", "Explain the Classic plan pricing", (
        "My Classic plan renewal was $6.99 instead of $4.99, why?",
        "Is the Classic plan still $4.99 a month if I pay yearly?",
    ), ("Classic plan price went up?",), details=()),
    Issue("Technical", "High", "Ask the customer to reinstall Brightly Desktop 3.2", (
        "Brightly Desktop for Windows won't start after the update, it just shows a white window.",
        "The Brightly Desktop app on my Windows PC crashes when I open a project.",
    ), ("Brightly Desktop crashes on windows",), details=()),
    Issue("Returns", "Medium", "Mail a Glow Bulb Gen 1 replacement", (
        "My Glow Bulb Gen 1 started flickering after two months.",
        "One of my Gen 1 Glow bulbs died, can I get a replacement?",
    ), ("Gen 1 bulb flickering",), details=()),
    Issue("Account", "Medium", "Reset the password in the Classic admin portal", (
        "I can't log in to the Classic plan admin portal anymore.",
        "The old Classic portal says my password is wrong but it worked yesterday.",
    ), ("Classic portal login broken",), details=()),
    Issue("Shipping", "Medium", "Confirm the Starter Bundle preorder ship date", (
        "When will my Starter Bundle preorder ship? I ordered it on {date}.",
        "I preordered the Starter Bundle on {date} and haven't heard anything since.",
    ), ("Starter Bundle preorder status?",), details=()),
)

# A second annotator's reading of a ticket: the neighbouring category and its default action.
CONFLICTING = {
    "Billing": ("Account", "Review the billing history with the customer"),
    "Account": ("Technical", "Send the troubleshooting guide"),
    "Technical": ("Account", "Review the account settings with the customer"),
    "Shipping": ("Returns", "Start a return for the order"),
    "Returns": ("Shipping", "Check the order status with the carrier"),
}

# ---- the world the tickets talk about -------------------------------------------------

PLANS = (("Plus plan", 9.99), ("Pro plan", 19.99), ("Family plan", 14.99))
DEVICES = (
    ("Glow smart bulb", 19.99),
    ("Hub Mini", 49.00),
    ("Aura thermostat", 129.00),
    ("Eyecam doorbell", 99.00),
    ("SmartPlug", 24.99),
)
PLATFORMS = ("iPhone 15", "Pixel 8", "Galaxy S23", "iPad Air", "iPhone 12", "Android tablet")
FIRST_NAMES = ("Maria", "Tom", "Aisha", "Jonas", "Priya", "Luis", "Mei", "Sam", "Olga", "Kwame", "Emma", "Raj")
LAST_NAMES = ("Schmidt", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Novak", "Garcia", "Byrne")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")


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

DETAILS = {
    "Billing": ("I'm on the {plan}.", "The charge was on {date}.", "I've paid {price} a month without issues until now."),
    "Technical": ("This is on my {platform}.", "I already tried restarting it twice.", "It started around {date}."),
    "Account": ("My account has been open for years.", "I have the {plan}.", "I tried on both my laptop and my phone."),
    "Shipping": ("The order number is {order}.", "I ordered it on {date}.", "It was {amount} with shipping."),
    "Returns": ("The order number is {order}.", "It cost {amount}.", "I still have the original box."),
    "Security": ("I've already changed my email password.", "Please help as soon as possible."),
}
GREETINGS = ("Hi there,", "Hello,", "Good morning,", "Hi support team,", "Hey,")
SIGNOFFS = ("Thanks,\n{name}", "Thank you so much!", "Kind regards,\n{name}", "Thanks in advance for your help.", "Best,\n{name}")
ANGRY_OPENERS = ("This is ridiculous.", "I am extremely frustrated.", "Seriously?!", "Third time I'm asking about this.", "Unbelievable.")
ANGRY_CLOSERS = ("Fix it NOW.", "I expect a response today.", "Absolutely unacceptable.", "If this isn't sorted I'm cancelling.")
RAMBLES = (
    "I've been a customer since {year} and never had a problem before.",
    "I looked through the help center but couldn't find an answer.",
    "I'm writing from my phone so sorry for any mistakes.",
    "Honestly this is the first time I've had to contact support.",
    "My partner set most of this up originally, so bear with me.",
    "I have quite a few of your products at home, not sure if that's relevant.",
)
NON_NATIVE_OPENERS = ("Dear Sir/Madam,", "Hello team,", "Good day to you.", "Respected support,")
NON_NATIVE_CLOSERS = ("Please do the needful.", "Kindly revert back at the earliest.", "Thanking you.", "Waiting for your reply.")
# Phrases a non-native writer renders word for word (the articles are dropped separately).
NON_NATIVE_SWAPS = (("I'm ", "I am "), ("I've ", "I have "), ("haven't", "have not"), ("don't", "do not"), ("can't", "cannot"))
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
