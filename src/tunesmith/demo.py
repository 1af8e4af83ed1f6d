"""`make demo`: the whole pipeline as far as it exists, on the bundled support tickets and
the embedded default model, on a CPU with no network.

Today: generate tickets -> check them (the guide's pitfalls are found) -> prepare with fixes
(sealed splits) -> export for Gemini tuning -> check the prepared folder."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

from .data.check import check
from .data.export import export
from .data.prepare import PrepareOptions, prepare
from .data.report import render_terminal
from .examples.tickets import write_tickets

MAX_AGE_DAYS = 3 * 365  # the tickets' product line changed three years ago


def step(console: Console, title: str) -> None:
    console.print()
    console.print(Rule(f"[bold]{title}"))


def main(out: Path) -> int:
    console = Console()
    if out.exists():
        shutil.rmtree(out)
    raw = out / "tickets.jsonl"
    prepared = out / "prepared"
    reports = out / "reports"

    step(console, "1. Generate 1,200 customer-support tickets (with the guide's pitfalls mixed in)")
    tickets = write_tickets(raw, n=1200, seed=0)
    console.print(f"{len(tickets.records)} tickets -> {raw}")
    console.print("injected: " + ", ".join(f"{k} {len(v)}" for k, v in tickets.injected.items()))

    step(console, "2. Check the raw file")
    report = check([raw], max_age_days=MAX_AGE_DAYS)
    render_terminal(report, console)
    report.write_json(reports / "raw-check.json")
    report.write_html(reports / "raw-check.html")

    step(console, "3. Prepare: fix, split (grouped, stratified), seal")
    options = PrepareOptions(dedupe=True, drop_conflicts=True, enforce_template=True, max_age_days=MAX_AGE_DAYS,
                             redact_pii=True, seed=0)
    result = prepare([raw], prepared, options)
    counts = result.counts
    console.print(f"{counts['input_records']} records -> train {counts['train']}, validation {counts['validation']}, "
                  f"test {counts['test']} (sealed), quarantine {counts['quarantine']}")
    for fix in result.manifest["fixes"]:
        console.print(f"  {fix['fix']:18} {fix['count']} example(s)")

    step(console, "4. Export train and validation for Gemini tuning on Vertex AI")
    summary = export(prepared, "gemini", out / "gemini", target="vertex/gemini-2.5-flash")
    for split, info in summary["splits"].items():
        console.print(f"  {split}: {info['examples']} examples -> {info['file']}")

    step(console, "5. Check the prepared folder (seal verified, no leaks across splits)")
    final = check([prepared], max_age_days=MAX_AGE_DAYS)
    render_terminal(final, console)
    final.write_json(reports / "prepared-check.json")
    final.write_html(reports / "prepared-check.html")

    step(console, "Where everything is")
    for what, path in [("raw tickets", raw), ("prepared splits + manifest", prepared),
                       ("quarantine (nothing is lost)", prepared / "quarantine.jsonl"),
                       ("Gemini tuning files", out / "gemini"),
                       ("HTML reports", reports)]:
        console.print(f"  {what:30} {path}")
    return 0 if final.errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main(Path(os.environ.get("DEMO_DIR", "demo-output"))))
