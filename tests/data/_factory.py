"""Small, deterministic datasets for tests: templated support-ticket style outputs."""

from __future__ import annotations

import json
import random
from pathlib import Path

CATEGORIES = {"Billing": 80, "Technical": 80, "Account": 60, "Shipping": 40, "Security": 8}
SUBJECTS = ["invoice", "router", "password", "parcel", "login alert", "refund", "app", "profile", "box", "token"]
VERBS = ["broke", "is late", "was charged twice", "keeps failing", "looks wrong", "needs changing", "vanished"]


def ticket_records(seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    records = []
    for category, n in CATEGORIES.items():
        for i in range(n):
            words = [rng.choice(SUBJECTS), rng.choice(VERBS), f"case {rng.randrange(10**6)}", rng.choice(SUBJECTS)]
            text = f"My {words[0]} {words[1]} since {i} days ({words[2]}), also the {words[3]}"
            records.append({
                "input_text": f"Classify the following customer support ticket: '{text}'",
                "output_text": f"Category: {category}\nPriority: {rng.choice(['Low', 'High'])}\nAction: Reply",
                "timestamp": f"2026-{rng.randrange(1, 11):02d}-{rng.randrange(1, 28):02d}T10:00:00Z",
            })
    rng.shuffle(records)
    return records


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path
