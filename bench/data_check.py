"""Benchmark: the full `data check` (every check, real tokenizer) on Banking77's train split
(10,003 examples, as input-output JSONL) and on 1k / 10k / 100k synthetic support tickets.

Prints time and examples per second, and the growth ratio: time(100k) / (10 x time(10k)),
which is 1.0 for perfectly linear growth. Target: 10,000 examples in at most 5 s on a
2-core machine. Results also go to bench/results/data_check.json.

    .venv/bin/python bench/data_check.py [--sizes 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

from tunesmith.data.check import check
from tunesmith.data.tokens import counter_for
from tunesmith.examples.tickets import write_tickets
from tunesmith.targets import load_target

BANKING77 = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77" / "train.csv"
RESULTS = Path(__file__).resolve().parent / "results" / "data_check.json"


def banking77_as_input_output(folder: Path) -> Path | None:
    if not BANKING77.is_file():
        return None
    path = folder / "banking77-train.jsonl"
    with open(BANKING77, newline="", encoding="utf-8") as f, open(path, "w", encoding="utf-8") as out:
        for row in csv.DictReader(f):
            out.write(json.dumps({"input_text": row["text"], "output_text": row["category"]}) + "\n")
    return path


def timed_check(path: Path) -> dict:
    start = time.perf_counter()
    report = check([path])
    seconds = time.perf_counter() - start
    n = report.data["summary"]["examples"]
    return {"examples": n, "seconds": round(seconds, 3), "examples_per_s": round(n / seconds),
            "findings": {f.code: f.count for f in report.findings}}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    sizes = [int(s) for s in parser.parse_args().sizes.split(",")]
    counter_for(load_target())  # convert and cache the tokenizer once, outside the timings
    results: dict = {"machine": f"{platform.machine()}, {platform.python_version()}"}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        banking = banking77_as_input_output(folder)
        if banking:
            results["banking77_train"] = r = timed_check(banking)
            print(f"Banking77 train   {r['examples']:>7} examples  {r['seconds']:7.2f} s  {r['examples_per_s']:>7} ex/s"
                  f"  (target: <= 5 s)")
        else:
            print(f"Banking77 skipped: {BANKING77} not present")
        results["synthetic"] = {}
        for n in sizes:
            path = folder / f"tickets-{n}.jsonl"
            write_tickets(path, n=n, seed=1)
            results["synthetic"][n] = r = timed_check(path)
            print(f"tickets {n:>9}  {r['examples']:>7} examples  {r['seconds']:7.2f} s  {r['examples_per_s']:>7} ex/s")
    synthetic = results["synthetic"]
    for small, big in zip(sizes, sizes[1:]):
        growth = synthetic[big]["seconds"] / (synthetic[small]["seconds"] * big / small)
        results[f"growth_{small}_to_{big}"] = round(growth, 2)
        print(f"growth {small} -> {big}: time ratio / size ratio = {growth:.2f} (1.00 is linear)")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    ok = results.get("banking77_train", {"seconds": 0})["seconds"] <= 5
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
