"""The whole evaluation on the embedded SmolLM2-135M-Instruct: tune a LoRA adapter on demo
tickets for a few dozen steps, then evaluate it against its base on the sealed test split
(slow: a few minutes on two CPU cores)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.train._data import prepared_tickets
from tunesmith.evaluate import evaluate
from tunesmith.store import queries
from tunesmith.train import jobs
from tunesmith.train.spec import load_spec

pytestmark = pytest.mark.slow


def test_the_tuned_model_beats_its_base_on_the_template(tmp_path, smollm2_dir):
    prepared = prepared_tickets(tmp_path, n=250, validation=0.1, test=0.15)
    job = jobs.start_job(load_spec(data=prepared, max_steps=30, batch_size=8, eval_interval=15, max_seq_length=256,
                                         accuracy_examples=0))
    assert job.status == "succeeded", job.error
    model = queries.list_models()[0]

    result = evaluate(model.id, limit=12, max_new_tokens=40)  # default: its base, on its test split
    s = result.summary
    metric = {row["metric"]: row for row in s["metrics"]}
    print(s["verdict_text"], {k: (round(v["model"], 3), round(v["baseline"], 3)) for k, v in metric.items()},
          s["generation"])
    assert s["split"] == "test" and s["examples"] == 12 and s["kind"] == "template"
    assert metric["valid_format"]["model"] >= metric["valid_format"]["baseline"] + 0.4
    assert metric["field_accuracy"]["model"] > metric["field_accuracy"]["baseline"]
    assert s["verdict"] == "better" and s["verdict_text"].startswith("Better")
    report = Path(s["report_path"]).read_text()
    assert "Training curves" in report and model.id in report
