"""`make demo`: the whole pipeline as far as it exists, on the bundled support tickets and
the embedded default model, on a CPU with no network.

Today: generate tickets -> check them (the guide's pitfalls are found) -> prepare with fixes
(sealed splits) -> export for Gemini tuning with its cost -> check the prepared folder -> plan
the paths -> tune a LoRA adapter on SmolLM2-135M-Instruct (a few minutes on two CPU cores)
and register it -> evaluate it against the base -> serve it and call it with the openai SDK."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

import tunesmith as ts

MAX_AGE_DAYS = 3 * 365  # the tickets' product line changed three years ago
# Enough steps to learn the ticket template (320 of the ~790 training tickets), few enough
# for a couple of minutes on two CPU cores; a real run would use the default 3 epochs.
DEMO_TRAIN_STEPS = 40
DEMO_EVAL_EXAMPLES = 32  # of the ~110 sealed test tickets: enough for a clear verdict on the template


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
    tickets = ts.write_tickets(raw, n=1200, seed=0)
    console.print(f"{len(tickets.records)} tickets -> {raw}")
    console.print("injected: " + ", ".join(f"{k} {len(v)}" for k, v in tickets.injected.items()))

    step(console, "2. Check the raw file")
    report = ts.check([raw], max_age_days=MAX_AGE_DAYS)
    ts.render_report(report, console)
    report.write_json(reports / "raw-check.json")
    report.write_html(reports / "raw-check.html")

    step(console, "3. Prepare: fix, split (grouped, stratified), seal")
    options = ts.PrepareOptions(dedupe=True, drop_conflicts=True, enforce_template=True, max_age_days=MAX_AGE_DAYS,
                             redact_pii=True, seed=0)
    result = ts.prepare([raw], prepared, options)
    counts = result.counts
    console.print(f"{counts['input_records']} records -> train {counts['train']}, validation {counts['validation']}, "
                  f"test {counts['test']} (sealed), quarantine {counts['quarantine']}")
    for fix in result.manifest["fixes"]:
        console.print(f"  {fix['fix']:18} {fix['count']} example(s)")

    step(console, "4. Export train and validation for Gemini tuning on Vertex AI, and what tuning would cost")
    # The managed path's first two steps, offline: export + validate, then billable tokens and price.
    managed = ts.estimate_vertex_cost(prepared, "gemini-2.5-flash", epochs=3, out_dir=out / "gemini")
    for split, info in managed.splits.items():
        console.print(f"  {split}: {info['examples']} examples -> {out / 'gemini' / info['file']}")
    for line in managed.lines():
        console.print(f"  {line}")

    step(console, "5. Check the prepared folder (seal verified, no leaks across splits)")
    final = ts.check([prepared], max_age_days=MAX_AGE_DAYS)
    ts.render_report(final, console)
    final.write_json(reports / "prepared-check.json")
    final.write_html(reports / "prepared-check.html")

    step(console, "6. Plan: memory, time and cost of each path for this data, and a recommendation")
    # At each evaluation the model also answers 32 validation tickets, held to their template,
    # and is scored by field: the metric that does not flatter, next to the loss.
    spec = ts.LocalSpec(data=prepared, max_steps=DEMO_TRAIN_STEPS, eval_interval=10, batch_size=8,
                        accuracy_examples=32)
    planned = ts.plan(data=prepared, method="lora", batch_size=spec.batch_size, epochs=3)
    lora = planned.methods[0]
    console.print(f"LoRA on {planned.model}: {planned.workload['tokens_per_epoch']:,} tokens an epoch, "
                  f"{lora.memory.total_gib:.1f} GiB on a GPU; cheapest: {lora.cheapest.gpu} "
                  f"({lora.cheapest.time_s / 60:.0f} min, ${lora.cheapest.usd:.2f}); managed from "
                  f"${planned.managed[0].usd:.2f} ({planned.managed[0].target})")
    console.print(f"recommendation: {planned.recommendation.reason}")

    step(console, f"7. Tune a LoRA adapter on {spec.base_model} ({DEMO_TRAIN_STEPS} steps, CPU) and register it")
    for line in ts.preflight(spec)[2]:
        console.print(line)
    with ts.TrainingDisplay(console) as display:
        trained = ts.train(spec, display=display)
    job, model = trained.job, trained.model
    if job.status != "succeeded":
        console.print(f"[red]training failed: {job.error}[/red]")
        return 1
    best = model.best_metrics.get("eval_loss")
    console.print(f"job {job.id}: {job.stop_reason}; model [bold]{model.id}[/bold] registered (stage {model.stage}), "
                  f"best validation loss {best:.4f}")

    step(console, "8. Evaluate the tuned model against its base on the sealed test split")
    # A sample of the test split keeps the demo to a few minutes; `tunesmith eval MODEL` takes all of it.
    evaluation = ts.evaluate(model.id, limit=DEMO_EVAL_EXAMPLES, max_new_tokens=48, progress=console.print)
    console.print(f"[bold]{evaluation.verdict_text}[/bold]")
    console.print(f"report: {evaluation.report_path}\nper-example results: {evaluation.results_path}")

    step(console, "9. Serve the tuned model for a moment and call it with the official openai client")
    ticket = ts.load_dataset([prepared]).split("test")[0]
    served_answer = ask_through_openai(model.id, ticket.input_text)
    console.print(f"[dim]{ticket.input_text}[/dim]\n-> {served_answer}")
    console.print(f"start the server yourself: [bold]tunesmith serve {model.id}[/bold] "
                  "(OpenAI and Gemini APIs on http://127.0.0.1:8000)")

    step(console, "Where everything is")
    for what, path in [("raw tickets", raw), ("prepared splits + manifest", prepared),
                       ("quarantine (nothing is lost)", prepared / "quarantine.jsonl"),
                       ("Gemini tuning files", out / "gemini"),
                       ("HTML reports", reports),
                       ("training run (metrics.jsonl, log)", Path(job.run_dir)),
                       ("LoRA adapter", Path(model.adapter_path)),
                       ("evaluation report", Path(evaluation.report_path))]:
        console.print(f"  {what:34} {path}")
    console.print(f"\n  tunesmith models show {model.id}\n  tunesmith jobs show {job.id}")
    home = os.environ.get("TUNESMITH_HOME") or ".tunesmith"
    console.print(f"\nopen the web app on this data: [bold]TUNESMITH_HOME={home} tunesmith ui[/bold]  "
                  f"(http://127.0.0.1:7860/jobs/{job.id})")
    return 0 if final.errors == 0 else 1


def ask_through_openai(model_id: str, text: str) -> str:
    """One chat completion from the real server (a thread on a free loopback port), through the official SDK."""
    import openai

    with ts.serve_in_background([model_id]) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused-on-loopback")
        reply = client.chat.completions.create(model=model_id, temperature=0, max_tokens=48,
                                               messages=[{"role": "user", "content": text}])
    return reply.choices[0].message.content


if __name__ == "__main__":
    sys.exit(main(Path(os.environ.get("DEMO_DIR", "demo-output"))))
