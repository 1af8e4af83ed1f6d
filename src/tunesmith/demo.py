"""`make demo`: the whole pipeline as far as it exists, on the bundled support tickets and
the embedded default model, on a CPU with no network.

Today: generate tickets -> check them (the guide's pitfalls are found) -> prepare with fixes
(sealed splits) -> export for Gemini tuning -> check the prepared folder -> tune a LoRA
adapter on SmolLM2-135M-Instruct (a few minutes on two CPU cores) and register it."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

from .cli._display import TrainingDisplay
from .data.check import check
from .data.export import export
from .data.prepare import PrepareOptions, prepare
from .data.report import render_terminal
from .examples.tickets import write_tickets
from .models.catalog import DEFAULT_BASE_MODEL
from .store.queries import list_models
from .train.jobs import start_job
from .train.spec import TrainSpec

MAX_AGE_DAYS = 3 * 365  # the tickets' product line changed three years ago
# Enough steps to learn the ticket template (320 of the ~790 training tickets), few enough
# for a couple of minutes on two CPU cores; a real run would use the default 3 epochs.
DEMO_TRAIN_STEPS = 40


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

    step(console, f"6. Tune a LoRA adapter on {DEFAULT_BASE_MODEL} ({DEMO_TRAIN_STEPS} steps, CPU) and register it")
    spec = TrainSpec(data=prepared, max_steps=DEMO_TRAIN_STEPS, eval_interval=10, batch_size=8)
    with TrainingDisplay(console) as display:
        job = start_job(spec, display=display)
    if job.status != "succeeded":
        console.print(f"[red]training failed: {job.error}[/red]")
        return 1
    model = list_models(limit=1)[0]
    best = model.best_metrics.get("eval_loss")
    console.print(f"job {job.id}: {job.stop_reason}; model [bold]{model.id}[/bold] registered (stage {model.stage}), "
                  f"best validation loss {best:.4f}")

    step(console, "Where everything is")
    for what, path in [("raw tickets", raw), ("prepared splits + manifest", prepared),
                       ("quarantine (nothing is lost)", prepared / "quarantine.jsonl"),
                       ("Gemini tuning files", out / "gemini"),
                       ("HTML reports", reports),
                       ("training run (metrics.jsonl, log)", Path(job.run_dir)),
                       ("LoRA adapter", Path(model.adapter_path))]:
        console.print(f"  {what:34} {path}")
    console.print(f"\n  tunesmith models show {model.id}\n  tunesmith jobs show {job.id}")
    return 0 if final.errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main(Path(os.environ.get("DEMO_DIR", "demo-output"))))
