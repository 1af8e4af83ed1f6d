"""Benchmark: what `data check` finds on real data, planted and clean, and how long it takes.

1. False alarms on clean real data: the train splits of Banking77, CLINC150, Restaurant-8k and
   Bitext (../shared/data), read as a user would, and the share of examples each check flags.
2. Planted pitfalls on Banking77 and CLINC150: drifted label shapes, courtesy phrases
   appended, conflicting labels, stale rows, malformed lines. Per check: recall (planted
   examples it flags) and false-positive rate (clean examples it flags).
3. Near-duplicates of short texts on a labelled set of pairs: recall and precision of the
   near-duplicate rule with the containment rule for short texts and without it (the
   baseline, in the same run), and the time of each.
4. The full check (every check, real tokenizer) on 1k / 10k / 100k synthetic tickets and on
   Banking77: targets 10k in 5 s and 100k in 60 s on two cores; growth ratio
   time(100k) / (10 x time(10k)), 1.0 for linear.

Results also go to bench/results/data_check.json.

    .venv/bin/python bench/data_check.py [--sizes 1000,10000,100000] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tunesmith.data.check import check
from tunesmith.data.near_duplicates import SHORT_CONTAINMENT, clear_caches, near_duplicate_groups
from tunesmith.data.tokens import counter_for
from tunesmith.examples.tickets import write_tickets
from tunesmith.hardware import cpu_flags
from tunesmith.targets import load_target

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results" / "data_check.json"
NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
COURTESY = ["Thanks a lot for your help!", "Thank you so much.", "Please help me asap", "Any help appreciated, thanks!",
            "Cheers", "I'd be grateful for a quick answer."]




# Real datasets, as a user reads them -------------------------------------------------------


def real_datasets(folder: Path) -> dict[str, tuple[list[Path], dict]]:
    """name -> (paths, keyword arguments of `check`). CLINC150 ships one JSON object of lists
    of [text, intent], one list a split (tunesmith reads it whole); the figures are for the
    train split alone, so its train list is written out first."""
    found: dict[str, tuple[list[Path], dict]] = {}
    if (SHARED / "banking77" / "train.csv").is_file():
        found["Banking77"] = ([SHARED / "banking77" / "train.csv"], {"columns": {"input": "text", "output": "category"}})
    if (SHARED / "clinc150" / "data_full.json").is_file():
        path = folder / "clinc150-train.jsonl"
        rows = json.loads((SHARED / "clinc150" / "data_full.json").read_text())["train"]
        path.write_text("".join(json.dumps({"input_text": t, "output_text": i}) + "\n" for t, i in rows))
        found["CLINC150"] = ([path], {})
    if (SHARED / "restaurant8k" / "train.jsonl").is_file():
        found["Restaurant-8k"] = ([SHARED / "restaurant8k" / "train.jsonl"], {})
    bitext = SHARED / "bitext-support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
    if bitext.is_file():
        found["Bitext"] = ([bitext], {"columns": {"input": "instruction", "output": "response", "label": "intent"}})
    return found


def flagged_by_check(report) -> dict[str, dict]:
    """code (severity) -> the examples its findings name, as (file, line)."""
    out: dict[str, set] = defaultdict(set)
    for f in report.findings:
        out[f"{f.code} ({f.severity})"] |= {(loc.file, loc.line) for loc in f.locations}
    return out


def false_alarms(datasets: dict) -> dict:
    table = {}
    for name, (paths, kwargs) in datasets.items():
        start = time.perf_counter()
        report = check(paths, now=NOW, **kwargs)
        n = report.data["summary"]["examples"]
        flagged = flagged_by_check(report)
        table[name] = {"examples": n, "seconds": round(time.perf_counter() - start, 2),
                       "checks": {code: {"examples": len(where), "share": round(len(where) / n, 4)}
                                  for code, where in sorted(flagged.items())}}
        print(f"\n{name}: {n:,} examples, {table[name]['seconds']} s")
        for code, row in table[name]["checks"].items():
            mark = "  > 1%" if row["share"] > 0.01 and "(info)" not in code else ""
            print(f"  {code:34} {row['examples']:>6,}  {row['share']:7.2%}{mark}")
    return table


# Planted pitfalls ------------------------------------------------------------------------------


def labelled_rows(name: str) -> list[tuple[str, str]]:
    if name == "Banking77":
        with open(SHARED / "banking77" / "train.csv", newline="", encoding="utf-8") as f:
            return [(r["text"], r["category"]) for r in csv.DictReader(f)]
    return [tuple(r) for r in json.loads((SHARED / "clinc150" / "data_full.json").read_text())["train"]]


def planted_dataset(rows: list[tuple[str, str]], folder: Path, name: str, seed: int = 0):
    """The rows as JSONL with recent timestamps, plus planted pitfalls; returns the path and
    pitfall -> the set of lines planted."""
    rng = random.Random(seed)
    records = [{"input_text": t, "output_text": o, "timestamp": (NOW - timedelta(days=rng.randint(1, 300))).isoformat()}
               for t, o in rows]
    planted: dict[str, set[int]] = defaultdict(set)
    labels = sorted({o for _, o in rows})
    chosen = rng.sample(range(len(records)), 120)
    for k, i in enumerate(chosen[:30]):  # drifted label shapes
        label = records[i]["output_text"]
        records[i]["output_text"] = [f"Intent: {label}", label.replace("_", " ").title(), f"The intent is {label}."][k % 3]
        planted["format-drift"].add(i + 1)
    for k, i in enumerate(chosen[30:60]):  # stale rows
        records[i]["timestamp"] = (NOW - timedelta(days=800 + k)).isoformat()
        planted["stale-example"].add(i + 1)
    extra = []
    for k, i in enumerate(chosen[60:90]):  # a courtesy phrase appended: a near-duplicate of line i + 1
        extra.append(("near-duplicate", {**records[i], "input_text": f"{records[i]['input_text'].rstrip()} {COURTESY[k % 6]}"}, i + 1))
    for i in chosen[90:120]:  # the same input with another label
        other = rng.choice([label for label in labels if label != records[i]["output_text"]])
        extra.append(("conflicting-outputs", {**records[i], "output_text": other}, i + 1))
    lines = [json.dumps(r) for r in records]
    for kind, record, original in extra:
        lines.append(json.dumps(record))
        planted[kind] |= {len(lines), original}
    for k in range(20):  # malformed lines
        lines.append(['{"input_text": "broken', "not json at all", '{"input_text": "x", "output_text": 3}'][k % 3])
        planted["unreadable-line"].add(len(lines))
    path = folder / f"{name.lower()}-planted.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, planted, len(lines)


def planted_recall(folder: Path) -> dict:
    results = {}
    for name in ("Banking77", "CLINC150"):
        source = SHARED / ("banking77/train.csv" if name == "Banking77" else "clinc150/data_full.json")
        if not source.is_file():
            continue
        path, planted, n_lines = planted_dataset(labelled_rows(name), folder, name)
        report = check([path], now=NOW, max_age_days=730)
        flagged: dict[str, set[int]] = defaultdict(set)
        for f in report.findings:
            flagged[f.code] |= {loc.line for loc in f.locations}
        all_planted = set().union(*planted.values())
        rows = {}
        print(f"\n{name} with planted pitfalls ({n_lines:,} lines):")
        for code in sorted(set(planted) | set(flagged)):
            hit = planted.get(code, set())
            found = flagged.get(code, set())
            clean_flagged = found - all_planted
            recall = len(hit & found) / len(hit) if hit else None
            rows[code] = {"planted": len(hit), "found": len(hit & found), "recall": recall,
                          "clean_flagged": len(clean_flagged), "false_positive_rate": round(len(clean_flagged) / n_lines, 4)}
            shown = f"{recall:6.1%}" if recall is not None else "     -"
            print(f"  {code:22} planted {len(hit):>3}  recall {shown}  clean examples flagged {len(clean_flagged):>5} "
                  f"({len(clean_flagged) / n_lines:.2%})")
        results[name] = rows
    return results


# Near-duplicates of short texts ----------------------------------------------------------------


def labelled_pairs(rows: list[tuple[str, str]], seed: int = 0):
    """Texts and labelled pairs: 150 positives (a courtesy phrase appended, a word changed or
    dropped, a typo) and 300 negatives (two different questions of the same class)."""
    rng = random.Random(seed)
    texts = [t for t, _ in rows]
    by_class = defaultdict(list)
    for i, (_, label) in enumerate(rows):
        by_class[label].append(i)
    pairs = []
    for k, i in enumerate(rng.sample(range(len(texts)), 150)):
        words = texts[i].split()
        if k % 3 == 0:
            variant = f"{texts[i].rstrip()} {COURTESY[k % 6]}"
        elif k % 3 == 1 and len(words) > 3:
            j = rng.randrange(len(words))
            variant = " ".join(words[:j] + (["really"] if k % 2 else []) + words[j + 1 :])
        else:
            j = rng.randrange(max(1, len(texts[i]) - 1))
            variant = texts[i][:j] + texts[i][j + 1 :] + ("" if k % 2 else " please")
        texts.append(variant)
        pairs.append((i, len(texts) - 1, True))
    classes = [c for c in by_class if len(by_class[c]) > 1]
    while len(pairs) < 450:
        a, b = rng.sample(by_class[rng.choice(classes)], 2)
        if texts[a].strip().lower() != texts[b].strip().lower():
            pairs.append((a, b, False))
    return texts, pairs


def near_duplicate_quality() -> dict:
    results = {}
    for name in ("Banking77", "CLINC150"):
        source = SHARED / ("banking77/train.csv" if name == "Banking77" else "clinc150/data_full.json")
        if not source.is_file():
            continue
        texts, pairs = labelled_pairs(labelled_rows(name))
        results[name] = {}
        for rule, containment in (("jaccard 0.8 (baseline)", None), ("jaccard 0.8 + containment", SHORT_CONTAINMENT)):
            clear_caches()
            start = time.perf_counter()
            groups = near_duplicate_groups(texts, containment=containment)
            seconds = time.perf_counter() - start
            group_of = {i: g for g, members in enumerate(groups) for i in members}
            joined = [(a in group_of and group_of.get(a) == group_of.get(b), positive) for a, b, positive in pairs]
            tp = sum(1 for j, p in joined if j and p)
            fp = sum(1 for j, p in joined if j and not p)
            positives = sum(1 for _, _, p in pairs if p)
            row = {"recall": round(tp / positives, 3), "precision": round(tp / (tp + fp), 3) if tp + fp else None,
                   "seconds": round(seconds, 3), "texts": len(texts)}
            results[name][rule] = row
        base, new = results[name].values()
        print(f"\n{name}: near-duplicates of short texts ({len(texts):,} texts, 150 positive and 300 negative pairs)")
        for rule, row in results[name].items():
            print(f"  {rule:28} recall {row['recall']:.1%}  precision {row['precision']:.1%}  {row['seconds']:.2f} s")
        print(f"  time ratio (containment / baseline): {new['seconds'] / base['seconds']:.2f}")
    return results


# Timing ------------------------------------------------------------------------------------------


def timed_check(path: Path, **kwargs) -> dict:
    start = time.perf_counter()
    report = check([path], **kwargs)
    seconds = time.perf_counter() - start
    n = report.data["summary"]["examples"]
    return {"examples": n, "seconds": round(seconds, 3), "examples_per_s": round(n / seconds),
            "findings": {f.code: f.count for f in report.findings}}


def timings(folder: Path, sizes: list[int]) -> dict:
    results: dict = {"synthetic": {}}
    print()
    if (SHARED / "banking77" / "train.csv").is_file():
        results["banking77_train"] = r = timed_check(SHARED / "banking77" / "train.csv")
        print(f"Banking77 train   {r['examples']:>7} examples  {r['seconds']:7.2f} s  {r['examples_per_s']:>7} ex/s  (target <= 5 s)")
    for n in sizes:
        path = folder / f"tickets-{n}.jsonl"
        write_tickets(path, n=n, seed=1)
        results["synthetic"][n] = r = timed_check(path)
        target = {10_000: "  (target <= 5 s)", 100_000: "  (target <= 60 s)"}.get(n, "")
        print(f"tickets {n:>9}  {r['examples']:>7} examples  {r['seconds']:7.2f} s  {r['examples_per_s']:>7} ex/s{target}")
    synthetic = results["synthetic"]
    for small, big in zip(sizes, sizes[1:]):
        growth = synthetic[big]["seconds"] / (synthetic[small]["seconds"] * big / small)
        results[f"growth_{small}_to_{big}"] = round(growth, 2)
        print(f"growth {small} -> {big}: time ratio / size ratio = {growth:.2f} (1.00 is linear)")
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--quick", action="store_true", help="timings only")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    counter_for(load_target())  # convert and cache the tokenizer once, outside the timings
    results: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
                     "cpu_flags": " ".join(cpu_flags())}
    print(f"machine: {results['machine']}; CPU flags: {results['cpu_flags']}")
    if not SHARED.is_dir():
        print(f"{SHARED} is not present: real-data parts skipped")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if not args.quick and SHARED.is_dir():
            results["false_alarms"] = false_alarms(real_datasets(folder))
            results["planted"] = planted_recall(folder)
            results["near_duplicates"] = near_duplicate_quality()
        results.update(timings(folder, sizes))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    slow = [n for n, limit in ((10_000, 5), (100_000, 60)) if n in results["synthetic"]
            and results["synthetic"][n]["seconds"] > limit]
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
