"""The Banking77 10-shot experiment (issue 19): 10 messages per intent sampled from the
official train split (770) and 10 per intent from the test split (770), a fixed seed.

    python bench/banking77.py sample OUT_DIR      # writes OUT_DIR/train770.jsonl, OUT_DIR/test770.jsonl

Then, through the CLI (docs/output-spaces.md has the whole recipe):

    tunesmith data prepare OUT_DIR/train770.jsonl --out OUT_DIR/prepared --validation 0.1 --test 0
    tunesmith train --data OUT_DIR/prepared ...
    tunesmith eval MODEL --data OUT_DIR/test770.jsonl

The data stays in /work/shared/data/banking77 (read-only); nothing is copied into the repo."""

from __future__ import annotations

import csv
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

DATA = Path("/work/shared/data/banking77")
PER_INTENT = 10
SEED = 19


def sample(csv_path: Path, per_intent: int, seed: int) -> list[dict]:
    by_intent: dict[str, list[str]] = defaultdict(list)
    with csv_path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            by_intent[row["category"]].append(row["text"])
    rng = random.Random(seed)
    rows = []
    for intent in sorted(by_intent):
        texts = sorted(set(by_intent[intent]))
        rows += [{"input_text": t, "output_text": intent} for t in rng.sample(texts, per_intent)]
    rng.shuffle(rows)
    return rows


def main(out: Path) -> None:
    if not DATA.is_dir():
        sys.exit(f"{DATA} is not here: the Banking77 experiment needs it")
    out.mkdir(parents=True, exist_ok=True)
    train = sample(DATA / "train.csv", PER_INTENT, SEED)
    test = sample(DATA / "test.csv", PER_INTENT, SEED)
    train_texts = {r["input_text"].casefold() for r in train}
    test = [r for r in test if r["input_text"].casefold() not in train_texts]
    write_splits(out, {"train770": train, "test770": test})


def write_splits(out: Path, splits: dict[str, list[dict]]) -> None:
    """Each split as OUT/NAME.jsonl, one example a line."""
    for name, rows in splits.items():
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        print(f"{out / name}.jsonl: {len(rows)} examples")


def command_line(main, doc: str) -> None:
    """`python bench/SCRIPT.py sample OUT_DIR`."""
    if len(sys.argv) != 3 or sys.argv[1] != "sample":
        sys.exit(doc)
    main(Path(sys.argv[2]))


if __name__ == "__main__":
    command_line(main, __doc__)
