"""A third real task of issue 19, JSON slot filling: Restaurant-8k's booking requests answered
with the slots they fill, `{"date": "Friday", "people": "4"}`, every slot optional (`{}` when
none is filled). The slots the system had just asked for go into the input, since a bare "13"
is a time or a party size depending on them. 600 requests drawn for training and 300 for
testing, with a fixed seed, from the published train and test files.

    python bench/restaurant8k.py sample OUT_DIR      # writes OUT_DIR/train.jsonl, OUT_DIR/test.jsonl

Then, through the CLI (docs/output-spaces.md has the results):

    tunesmith data prepare OUT_DIR/train.jsonl --out OUT_DIR/prepared --validation 0.1 --test 0
    tunesmith train --data OUT_DIR/prepared --epochs 2 --learning-rate 5e-4 --select-by accuracy
    tunesmith eval MODEL --data OUT_DIR/test.jsonl --baseline none

The data stays in /work/shared/data/restaurant8k (read-only); nothing is copied into the repo."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from banking77 import command_line, write_splits  # noqa: E402 - bench/banking77.py's helpers

DATA = Path("/work/shared/data/restaurant8k")
TRAIN, TEST = 600, 300
SEED = 19


def example(row: dict) -> dict:
    asked = row.get("requested_slots") or []
    context = f"(we asked for: {', '.join(asked)}) " if asked else ""
    return {"input_text": context + row["input"], "output_text": row["output"]}


def sample(path: Path, n: int, seed: int) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    unique = list({(r["input"], tuple(r.get("requested_slots") or [])): r for r in rows}.values())
    return [example(r) for r in random.Random(seed).sample(unique, n)]


def main(out: Path) -> None:
    if not DATA.is_dir():
        sys.exit(f"{DATA} is not here: the Restaurant-8k experiment needs it")
    out.mkdir(parents=True, exist_ok=True)
    train = sample(DATA / "train.jsonl", TRAIN, SEED)
    seen = {r["input_text"].casefold() for r in train}
    test = [r for r in sample(DATA / "test.jsonl", TEST + 20, SEED) if r["input_text"].casefold() not in seen][:TEST]
    write_splits(out, {"train": train, "test": test})


if __name__ == "__main__":
    command_line(main, __doc__)
