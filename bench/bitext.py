"""The second real task of issue 19, a template rather than a label: Bitext's customer-support
requests answered as two fields, the way the guide's tickets are,

    Category: ORDER
    Intent: cancel_order

(11 categories, 27 intents). 20 requests per intent for training and 10 others per intent
for testing, drawn with a fixed seed from the one published file (it has no test split).

    python bench/bitext.py sample OUT_DIR      # writes OUT_DIR/train.jsonl, OUT_DIR/test.jsonl

Then, through the CLI (docs/output-spaces.md has the results):

    tunesmith data prepare OUT_DIR/train.jsonl --out OUT_DIR/prepared --validation 0.1 --test 0
    tunesmith train --data OUT_DIR/prepared --epochs 3 --learning-rate 5e-4 --select-by accuracy
    tunesmith eval MODEL --data OUT_DIR/test.jsonl --baseline none

The data stays in /work/shared/data/bitext-support (read-only); nothing is copied into the repo."""

from __future__ import annotations

import csv
import random
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from banking77 import command_line, write_splits  # noqa: E402 - bench/banking77.py's helpers

DATA = Path("/work/shared/data/bitext-support/Bitext_Sample_Customer_Support_Training_Dataset.csv")
TRAIN_PER_INTENT = 20
TEST_PER_INTENT = 10
SEED = 19


def sample(path: Path, seed: int) -> tuple[list[dict], list[dict]]:
    by_intent: dict[str, dict[str, dict]] = defaultdict(dict)  # intent -> request text -> row (one row per text)
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            text = row["instruction"].strip()
            by_intent[row["intent"]].setdefault(text.casefold(), {
                "input_text": text, "output_text": f"Category: {row['category']}\nIntent: {row['intent']}"})
    rng = random.Random(seed)
    train, test = [], []
    for intent in sorted(by_intent):
        rows = rng.sample(sorted(by_intent[intent].values(), key=lambda r: r["input_text"]),
                          TRAIN_PER_INTENT + TEST_PER_INTENT)
        train += rows[:TRAIN_PER_INTENT]
        test += rows[TRAIN_PER_INTENT:]
    rng.shuffle(train)
    rng.shuffle(test)
    return train, test


def main(out: Path) -> None:
    if not DATA.is_file():
        sys.exit(f"{DATA} is not here: the Bitext experiment needs it")
    out.mkdir(parents=True, exist_ok=True)
    train, test = sample(DATA, SEED)
    write_splits(out, {"train": train, "test": test})


if __name__ == "__main__":
    command_line(main, __doc__)
