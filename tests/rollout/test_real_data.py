"""The gate on real labels: banking77's test split (77 intents) as the answers a labeler gives,
imported through `tunesmith rollout label`, scored as evaluation scores labels."""

from __future__ import annotations

import csv
import json

import numpy as np
from typer.testing import CliRunner

from tunesmith.cli import app as cli_app
from tunesmith.rollout import create_deployment, start_rollout

from .conftest import log_requests


def test_banking77_labels_through_the_cli_decide_an_ab_rollout(shared_data, models, tmp_path):
    with (shared_data / "banking77" / "test.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:800]
    categories = sorted({r["category"] for r in rows})
    create_deployment("bank-bot", "prod-v1")
    rollout = start_rollout("bank-bot", "cand-v2", "ab", 50).rollout_id
    rng = np.random.default_rng(77)
    logged, labels = [], []
    for i, row in enumerate(rows):  # half the callers on each side; the candidate right more often
        arm = "candidate" if i % 2 else "production"
        right = rng.random() < (0.92 if arm == "candidate" else 0.76)
        answer = row["category"] if right else categories[(categories.index(row["category"]) + 1) % len(categories)]
        logged.append({"request_id": f"req-{i}", "deployment": "bank-bot", "rollout_id": rollout, "route": arm,
                       "model": "bank-bot", "subject": f"customer-{i}", "output_text": answer,
                       "input_messages": {"turns": [{"role": "user", "text": row["text"]}]}})
        labels.append({"request_id": f"req-{i}", "label": row["category"]})
    log_requests(logged)
    file = tmp_path / "labels.jsonl"
    file.write_text("\n".join(json.dumps(label) for label in labels) + "\n")
    runner = CliRunner()
    imported = runner.invoke(cli_app, ["rollout", "label", "bank-bot", str(file), "--json"])
    assert json.loads(imported.stdout) == {"deployment": "bank-bot", "imported": 800}
    status = json.loads(runner.invoke(cli_app, ["rollout", "status", "bank-bot", "--json"]).stdout)
    evidence = status["evidence"]
    assert evidence["metric"] == "accuracy" and evidence["labeled"] == 800  # 77 intents: scored as labels
    assert status["decision"] == "promote", status["sentence"]
    assert 0.1 < evidence["quality"]["estimate"] < 0.22 and evidence["quality"]["low"] > 0
    assert status["sentence"].startswith("Promote: cand-v2 − prod-v1 accuracy is +0.1")
    promoted = json.loads(runner.invoke(cli_app, ["rollout", "promote", "bank-bot", "--json"]).stdout)
    assert promoted["decision"] == "promote" and promoted["evidence"]["labeled"] == 800
