"""Real runs on the embedded SmolLM2-135M-Instruct (slow: minutes on two CPU cores)."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest

from tunesmith.evaluate import evaluate
from tunesmith.store import queries
from tunesmith.train import jobs
from tunesmith.train.backends.local import pid_alive
from tunesmith.train.spec import load_spec

from ._data import prepared_tickets, wait_for

pytestmark = pytest.mark.slow
TEMPLATE = re.compile(r"^Category: [A-Za-z]+\nPriority: [A-Za-z]+\nAction: .+$")


def test_lora_on_support_tickets_learns_the_template_and_beats_its_base(tmp_path, smollm2_dir):
    """One epoch of LoRA on demo tickets, then evaluations on the sealed test split: the model
    writes the template's shape even free (it learned it), and held to the learned output space
    it beats its base."""
    prepared = prepared_tickets(tmp_path, n=290, validation=0.15)
    job = jobs.start_job(load_spec(data=prepared, epochs=1, batch_size=8, eval_interval=8))
    assert job.status == "succeeded", job.error
    evals = [m.eval_loss for m in queries.job_metrics(job.id) if m.eval_loss is not None]
    assert len(evals) >= 3 and evals[-1] < evals[0] * 0.8, evals
    model = queries.list_models()[0]

    free = evaluate(model.id, limit=24, max_new_tokens=40, free=True, baseline=None)
    shaped = sum(bool(TEMPLATE.match(item["outputs"]["model"])) for item in free.items) / 24
    in_space = free.summary["decoding"]["free"]["valid_rate"]
    # Measured after one epoch: 71% in the template's shape, but only 21% inside the learned space
    # (it invents categories: "Logistics", "Credit Card"); the base model 0%.
    assert shaped >= 0.6 and in_space < 1.0

    s = evaluate(model.id, limit=24, max_new_tokens=40).summary  # held to its space; against its base
    metric = {row["metric"]: row for row in s["metrics"]}
    print(s["verdict_text"], {k: (round(v["model"], 3), round(v["baseline"], 3)) for k, v in metric.items()},
          f"free: {shaped:.0%} in the template's shape, {in_space:.0%} in its space; validation loss {evals}")
    assert s["split"] == "test" and s["examples"] == 24 and s["kind"] == "template"
    assert s["decoding"]["mode"] == "constrained" and s["decoding"]["constrained"]["valid_rate"] == 1.0
    assert metric["valid_format"]["model"] >= metric["valid_format"]["baseline"] + 0.4
    assert metric["field_accuracy"]["model"] > metric["field_accuracy"]["baseline"]
    assert s["verdict"] == "better" and s["verdict_text"].startswith("Better")
    report = Path(s["report_path"]).read_text()
    assert "Training curves" in report and model.id in report


def test_a_spec_made_to_overfit_stops_early(tmp_path, smollm2_dir):
    # About 16 training and 16 validation tickets, a high learning rate and many epochs: memorised in minutes.
    prepared = prepared_tickets(tmp_path, n=100, validation=0.18, test=0.64)
    spec = load_spec(data=prepared, method="lora", learning_rate=5e-3, epochs=40, batch_size=8, eval_interval=2,
                     max_seq_length=256, accuracy_examples=0, **{"lora.rank": 32, "early_stopping.patience": 2})
    job = jobs.start_job(spec)
    assert (job.status, job.stop_reason) == ("succeeded", "stopped_early"), job.error
    model = queries.list_models()[0]
    assert model.best_metrics["step"] < model.final_metrics["step"]


def test_kill_and_resume_on_the_real_model(tmp_path, smollm2_dir):
    prepared = prepared_tickets(tmp_path, n=100, validation=0.1)
    spec = load_spec(data=prepared, max_steps=12, batch_size=4, eval_interval=4, max_seq_length=256,
                     accuracy_examples=0)
    job = jobs.start_job(spec, detach=True)
    checkpoints = Path(job.run_dir) / "checkpoints"
    assert wait_for(lambda: (checkpoints / "checkpoint-4" / "trainer_state.json").is_file(), 600)
    os.kill(job.pid, signal.SIGKILL)
    assert wait_for(lambda: not pid_alive(job.pid), 10)
    assert jobs.get_job(job.id).stop_reason == "process_died"
    resumed = jobs.resume_job(job.id)
    assert resumed.status == "succeeded", resumed.error
    rows = [json.loads(line) for line in (Path(job.run_dir) / "metrics.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in rows) == 12
    assert any(e.kind == "resume" for e in queries.job_events(job.id))
