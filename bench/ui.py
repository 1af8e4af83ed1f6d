"""Benchmark: the web app's pages on a real history. A store with 1,000 jobs (one of them
with 20,000 metric rows, the others about 180 each: 200,000 in all), 200 models and 100
evaluations of 50 examples each; every list page and job page is requested through the
real app (in process, so the time is the server's: routing, queries, templates) and its
median and worst time over the repeats is compared with the budget of 200 ms.

The baseline, measured in the same run: the same pages on an empty store (the fixed cost
of a page), and the big job's chart data read as ORM objects (`job_metrics`, what a plain
implementation would do) against the plain tuples the job page reads (`job_metric_values`).
Results also go to bench/results/ui.json.

    .venv/bin/python bench/ui.py [--repeats 15] [--jobs 1000] [--rows 200000]

Run it with two cores (`taskset -c 0,1`) to match the budget's machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tunesmith.hardware import cpu_flags

RESULTS = Path(__file__).resolve().parent / "results" / "ui.json"
BUDGET_MS = 200.0
BIG_JOB_ROWS = 20_000


def fill(jobs: int, rows: int, models: int, evals: int) -> dict:
    """Bulk-insert a history (SQLAlchemy Core, one transaction per table)."""
    from sqlalchemy import insert

    from tunesmith.store.db import session_scope
    from tunesmith.store.schema import EvalItem, EvalRun, Job, JobEvent, ModelVersion, StepMetrics

    rng = random.Random(0)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    spec = {"base_model": "HuggingFaceTB/SmolLM2-135M-Instruct", "method": "lora", "learning_rate": 2e-4,
            "epochs": 3, "batch_size": 8, "lora": {"r": 16, "alpha": 32, "dropout": 0.05}, "seed": 0}
    job_rows, event_rows, metric_rows = [], [], []
    per_job = (rows - BIG_JOB_ROWS) // (jobs - 1)
    for j in range(jobs):
        created = start + timedelta(minutes=j)
        job_id = f"job-{created:%Y%m%d-%H%M%S}-{j:04x}"
        status = rng.choice(["succeeded"] * 6 + ["failed", "cancelled", "running"])
        job_rows.append(dict(id=job_id, backend="local", status=status, stop_reason="completed", spec=spec,
                             run_dir=f"/runs/{job_id}", base_model=spec["base_model"], method="lora",
                             dataset_version="6cfb23ce924945b0", created_at=created, started_at=created,
                             ended_at=created + timedelta(minutes=30), updated_at=created))
        for k, (kind, message) in enumerate([("status", "queued"), ("data", "800 train examples"),
                                             ("model", "lora"), ("status", "running → succeeded")]):
            event_rows.append(dict(job_id=job_id, time=created + timedelta(seconds=k), kind=kind, message=message,
                                   data={"trained_tokens_per_epoch": 40_000} if kind == "data" else None))
        count = BIG_JOB_ROWS if j == 0 else per_job
        for step in range(1, count + 1):
            row = dict(job_id=job_id, step=step, epoch=step / 100, time=created, train_loss=2.0 / step ** 0.3,
                       learning_rate=2e-4, token_accuracy=0.5, tokens_per_s=260.0, eval_loss=None,
                       eval_token_accuracy=None, extra={"max_steps": count})
            if step % 20 == 0:
                row.update(eval_loss=2.1 / step ** 0.25, eval_token_accuracy=0.45)
            metric_rows.append(row)
    model_rows = [dict(id=f"mv-20260101-{i:06d}-{i:04x}", job_id=job_rows[i]["id"], name=f"model-{i}",
                       base_model=spec["base_model"], method="lora", stage="candidate", spec=spec,
                       dataset_version="6cfb23ce924945b0", best_metrics={"eval_loss": 1.2, "step": 100},
                       final_metrics={"eval_loss": 1.3}, stop_reason="completed", created_at=start + timedelta(hours=i))
                  for i in range(models)]
    eval_rows, item_rows = [], []
    for e in range(evals):
        run_id = f"ev-20260101-{e:06d}-{e:04x}"
        summary = {"metrics": [{"metric": "accuracy", "label": "accuracy", "model": 0.8, "model_interval": [0.7, 0.9],
                                "baseline": 0.6, "baseline_interval": [0.5, 0.7], "difference": 0.2,
                                "difference_interval": [0.1, 0.3], "p_value": 0.001, "test": "mcnemar-exact",
                                "shown": "percent", "significant": True}]}
        eval_rows.append(dict(id=run_id, model_id=model_rows[e % models]["id"], model_ref=model_rows[e % models]["id"],
                              baseline_ref="base", data_path="/data", split="test", metrics_kind="label", examples=50,
                              verdict="better", verdict_text="better on accuracy", summary=summary,
                              created_at=start + timedelta(hours=e)))
        for i in range(50):
            m, b = rng.random() < 0.8, rng.random() < 0.6
            item_rows.append(dict(eval_run_id=run_id, example_id=f"ex-{i}", input_text=f"ticket {i} " * 20,
                                  reference="Billing", outputs={"model": "Billing", "baseline": "Technical"},
                                  scores={"model": {"correct": int(m)}, "baseline": {"correct": int(b)}}))
    with session_scope() as s:
        for table, values in ((Job, job_rows), (JobEvent, event_rows), (StepMetrics, metric_rows),
                              (ModelVersion, model_rows), (EvalRun, eval_rows), (EvalItem, item_rows)):
            for chunk in range(0, len(values), 20_000):
                s.execute(insert(table), values[chunk:chunk + 20_000])
    return {"big_job": job_rows[0]["id"], "job": job_rows[500]["id"], "model": model_rows[0]["id"],
            "eval": eval_rows[0]["id"], "metric_rows": len(metric_rows), "jobs": len(job_rows)}


def timed(client, path: str, repeats: int) -> dict:
    client.get(path)  # warm: template compilation, first query plans
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}


def pages(ids: dict) -> list[str]:
    return ["/", "/datasets", "/jobs", "/jobs?page=10", "/jobs?status=failed", "/jobs?q=job-2026", "/models",
            "/models?page=4", "/evals", f"/jobs/{ids['big_job']}", f"/jobs/{ids['job']}", f"/models/{ids['model']}",
            f"/evals/{ids['eval']}", f"/evals/{ids['eval']}/items?view=wins"]




def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    os.environ["TUNESMITH_HOME"] = tempfile.mkdtemp(prefix="tunesmith-bench-ui-")
    from fastapi.testclient import TestClient

    from tunesmith.store import queries
    from tunesmith.web.app import create_app

    client = TestClient(create_app(), base_url="http://127.0.0.1:7860")
    empty = {"/": timed(client, "/", args.repeats), "/jobs": timed(client, "/jobs", args.repeats),
             "/models": timed(client, "/models", args.repeats)}
    started = time.perf_counter()
    ids = fill(args.jobs, args.rows, models=200, evals=100)
    print(f"filled the store: {ids['jobs']} jobs, {ids['metric_rows']:,} metric rows, 200 models, 100 evaluations "
          f"in {time.perf_counter() - started:.1f} s")
    results = {path: timed(client, path, args.repeats) for path in pages(ids)}

    def read(fn) -> float:
        fn()
        times = []
        for _ in range(5):
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1000)
        return statistics.median(times)

    orm_ms = read(lambda: [m.to_dict() for m in queries.job_metrics(ids["big_job"])])
    tuples_ms = read(lambda: queries.job_metric_values(ids["big_job"]))
    width = max(len(p) for p in results)
    print(f"{'page':{width}}  median  worst  (ms, server time, {args.repeats} requests each)")
    for path, r in results.items():
        flag = "" if r["max_ms"] < BUDGET_MS else "  OVER BUDGET"
        print(f"{path:{width}}  {r['median_ms']:6.1f} {r['max_ms']:6.1f}{flag}")
    worst = max(r["max_ms"] for r in results.values())
    print(f"worst page: {worst:.1f} ms (budget {BUDGET_MS:.0f} ms: {'met' if worst < BUDGET_MS else 'NOT met'})")
    for path, r in empty.items():
        print(f"baseline, empty store {path:8} {r['median_ms']:.1f} ms; full store {results[path]['median_ms']:.1f} ms "
              f"(ratio {results[path]['median_ms'] / r['median_ms']:.2f})")
    print(f"big job's {BIG_JOB_ROWS:,} metric rows: ORM objects {orm_ms:.0f} ms, plain tuples {tuples_ms:.0f} ms "
          f"(ratio {orm_ms / tuples_ms:.1f}x)")
    print(f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores visible, "
          f"{len(os.sched_getaffinity(0))} usable; flags: {' '.join(cpu_flags())}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"pages": results, "empty_store": empty, "worst_ms": worst, "budget_ms": BUDGET_MS,
                                   "metric_rows_orm_ms": orm_ms, "metric_rows_tuples_ms": tuples_ms,
                                   "cpu_flags": " ".join(cpu_flags()), "cores": len(os.sched_getaffinity(0))}, indent=2) + "\n")
    print(f"results: {RESULTS}")


if __name__ == "__main__":
    main()
