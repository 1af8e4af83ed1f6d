"""A monitor run on 100,000 logged requests against a 10,000-example reference (Banking77's
train split; traffic drawn from Banking77's test inputs with a growing share of
restaurant-booking inputs over seven daily windows). Target: under 30 s on two cores.

The baseline is the naive way of the slowest step, the nearest-training-example search:
a dense similarity matrix for every request, without collapsing repeated inputs. It runs on a
10,000-request slice (the full run would need 100,000 x 10,000 floats) and is scaled.

    PYTHONPATH=src python bench/monitor.py      # results also go to bench/results/monitor.json
"""

from __future__ import annotations

import csv
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from tunesmith.hardware import cpu_flags

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results" / "monitor.json"
REQUESTS = 100_000
SLICE = 10_000


def main() -> None:
    if not DATA.is_dir():
        sys.exit(f"{DATA} is not present")
    os.environ.setdefault("TUNESMITH_HOME", tempfile.mkdtemp(prefix="bench-monitor-"))
    from tunesmith.fileio import atomic_write_text
    from tunesmith.monitor import monitor
    from tunesmith.monitor.coverage import ReferenceIndex
    from tunesmith.store.queries import add_served_requests

    train = DATA / "banking77" / "train.csv"
    test = [(r["text"], r["category"]) for r in csv.DictReader(open(DATA / "banking77" / "test.csv", encoding="utf-8"))]
    other = [json.loads(line)["input"] for line in open(DATA / "restaurant8k" / "test.jsonl", encoding="utf-8")]
    rng = np.random.default_rng(0)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    rows = []
    for k in range(REQUESTS):
        age_days = 7 * (REQUESTS - k) / REQUESTS
        if rng.random() < 0.05 * (7 - age_days):  # 0% a week ago, 35% now
            text, output = other[rng.integers(len(other))], "card_arrival"
        else:
            text, output = test[rng.integers(len(test))]
        rows.append(dict(api="openai", model="support", model_id=None, status_code=200,
                         time=now - timedelta(days=age_days), input_messages={"turns": [{"role": "user", "text": text}]},
                         output_text=output))
    started = time.perf_counter()
    for i in range(0, REQUESTS, 10_000):
        add_served_requests(rows[i : i + 10_000])
    print(f"logged {REQUESTS} requests in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    result = monitor("support", since="7d", window="1d", reference=train, estimate_cost=False, now=now)
    run_s = time.perf_counter() - started
    print(result.answer.paragraph)

    # Baseline: the nearest-neighbour search done naively (dense, every request) on a slice.
    reference_texts = [r["text"] for r in csv.DictReader(open(train, encoding="utf-8"))]
    index = ReferenceIndex(reference_texts)
    inputs = [r["input_messages"]["turns"][0]["text"] for r in rows[-SLICE:]]
    started = time.perf_counter()
    index.nearest(inputs)
    ours_s = time.perf_counter() - started
    dense_reference = index.matrix.toarray()
    started = time.perf_counter()
    for s in range(0, SLICE, 1000):
        block = index.vectorizer.transform(inputs[s : s + 1000]).toarray()
        (block @ dense_reference.T).max(axis=1)
    naive_s = time.perf_counter() - started
    out = {"requests": REQUESTS, "reference": len(reference_texts), "monitor_s": round(run_s, 2), "target_s": 30,
           "nearest_slice": SLICE, "nearest_ours_s": round(ours_s, 3), "nearest_naive_s": round(naive_s, 3),
           "nearest_speedup": round(naive_s / ours_s, 1), "cpus": os.cpu_count(), "cpu_flags": " ".join(cpu_flags()),
           "answer": result.answer.action}
    print(json.dumps(out, indent=2))
    atomic_write_text(RESULTS, json.dumps(out, indent=2) + "\n")
    print(f"results: {RESULTS}")


if __name__ == "__main__":
    main()
