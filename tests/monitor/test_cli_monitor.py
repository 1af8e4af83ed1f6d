"""`tunesmith monitor` end to end: traffic through the real server, then the command on the
logged requests; a registered model's lineage; bad input (exit 2, a sentence, no traceback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import numpy as np
import openai

from tests.serve.conftest import adapter_dir, served, start  # noqa: F401 - fixtures
from tunesmith.monitor import monitor
from tunesmith.store.queries import add_served_requests, register_model

from ._real import banking77, need_data, restaurant8k


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "tunesmith", "monitor", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_traffic_through_the_real_server_then_monitor(served, tmp_path):  # noqa: F811
    data = need_data()
    models, _ = served
    texts, _ = banking77("test")
    rng = np.random.default_rng(0)
    asked = [texts[i] for i in rng.choice(len(texts), 40, replace=False)]
    with start(models) as (url, state):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
        for text in asked:
            client.chat.completions.create(model="tiny-tuned", messages=[{"role": "user", "content": text}], max_tokens=3)
        state.log.flush()
    out = tmp_path / "monitor.json"
    result = run("tiny-tuned", "--since", "1h", "--window", "1h", "--reference", str(data / "banking77" / "train.csv"),
                 "--json", str(out), "--html", str(tmp_path / "monitor.html"), "--no-cost")
    assert result.returncode == 0, result.stderr
    assert "No need to re-tune tiny-tuned" in result.stdout
    summary = json.loads(out.read_text())
    assert summary["current"]["requests"] == 40
    assert not summary["input_drift"]["drifted"]
    # The tiny model answers with random tokens, never a Banking77 label: output drift shows it.
    assert summary["output_drift"]["kind"] == "label" and summary["output_drift"]["valid_share"] < 0.5
    assert summary["output_drift"]["psi"] > 0.25
    html = (tmp_path / "monitor.html").read_text()
    assert "<svg" in html and "<script" not in html and "src=" not in html  # self-contained


def _log(model_id: str | None, name: str, inputs: list[str], outputs: list[str], now: datetime, hours: float) -> None:
    add_served_requests([dict(api="openai", model=name, model_id=model_id, status_code=200,
                              time=now - timedelta(hours=hours * (len(inputs) - k) / len(inputs)),
                              input_messages={"turns": [{"role": "user", "text": t}]}, output_text=o)
                         for k, (t, o) in enumerate(zip(inputs, outputs))])


def test_lineage_drift_and_fresh_labels_on_a_deployment(tmp_path):
    data = need_data()
    model = register_model(base_model="smollm2-135m-instruct", method="lora", spec={}, name="bank-v1",
                           lineage={"data": str(data / "banking77" / "train.csv")})
    texts, truth = banking77("test")
    rng = np.random.default_rng(3)
    idx = rng.choice(len(texts), 300, replace=False)
    now = datetime.now(timezone.utc)
    # A deployment "support" routed to bank-v1: half its traffic has moved to restaurant bookings.
    other = restaurant8k("test")[:300]
    inputs = [texts[i] for i in idx] + other
    outputs = [truth[i] for i in idx] + ["card_arrival"] * len(other)
    order = rng.permutation(len(inputs))
    _log(model.id, "support", [inputs[i] for i in order], [outputs[i] for i in order], now, 48)
    result = monitor("support", since="3d", window="1d", estimate_cost=False, now=now)
    assert result.summary["model_id"] == model.id  # lineage through the deployment's traffic
    assert result.summary["input_drift"]["drifted"] and result.answer.action == "now"
    assert result.exit_code == 1
    queue = [json.loads(line) for line in (result.folder / "queue.jsonl").read_text().splitlines()]
    assert queue and all(q["output_text"] == "" for q in queue)
    assert sum(q["input_text"] in set(other) for q in queue) / len(queue) > 0.8

    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps({"input_text": texts[i], "output_text": truth[i]}) + "\n" for i in idx[:50]))
    cli = run("support", "--since", "3d", "--labels", str(labels), "--no-cost", "--json", str(tmp_path / "s.json"))
    assert cli.returncode == 1, cli.stderr
    quality = json.loads((tmp_path / "s.json").read_text())["quality"]
    assert quality["n"] == 50 and quality["value"] == 1.0


def test_bad_input_exits_2_with_a_sentence(tmp_path):
    need_data()
    now = datetime.now(timezone.utc)
    model = register_model(base_model="smollm2-135m-instruct", method="lora", spec={}, name="orphan")
    texts, truth = banking77("test")
    _log(model.id, "orphan", texts[:30], truth[:30], now, 2)

    no_lineage = run("orphan", "--since", "1d")
    assert no_lineage.returncode == 2 and "--reference" in no_lineage.stderr and "Traceback" not in no_lineage.stderr

    reference = str(need_data() / "banking77" / "train.csv")
    quiet = run("orphan", "--since", "2m", "--reference", reference)  # the latest request is 4 minutes old
    assert quiet.returncode == 2 and "no traffic" in quiet.stderr

    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({"input_text": "a question nobody asked", "output_text": "card_arrival"}) + "\n")
    unknown = run("orphan", "--since", "1d", "--reference", reference, "--labels", str(labels), "--no-cost")
    assert unknown.returncode == 2 and "no logged request" in unknown.stderr

    bad_window = run("orphan", "--since", "1d", "--window", "soon", "--reference", reference)
    assert bad_window.returncode == 2 and "duration" in bad_window.stderr


def test_lineage_through_the_dataset_version_of_a_prepared_folder_and_its_cost(tmp_path):
    """A model trained on a prepared folder: the store's dataset version gives the reference,
    and `plan` prices a re-tune on it."""
    import csv

    from tunesmith.data.prepare import prepare
    from tunesmith.store.queries import record_dataset_version

    data = need_data()
    rows = list(csv.DictReader(open(data / "banking77" / "train.csv", encoding="utf-8")))[::8]
    raw = tmp_path / "bank.jsonl"
    raw.write_text("".join(json.dumps({"input_text": r["text"], "output_text": r["category"]}) + "\n" for r in rows))
    prepared = tmp_path / "prepared"
    result = prepare([raw], prepared)
    manifest = json.loads((prepared / "manifest.json").read_text())
    record_dataset_version(manifest["dataset_version"], prepared, manifest)
    model = register_model(base_model="smollm2-135m-instruct", method="lora", spec={}, name="bank-prepared",
                           dataset_version=manifest["dataset_version"])
    texts, truth = banking77("test")
    now = datetime.now(timezone.utc)
    _log(model.id, "bank-prepared", texts[::40], truth[::40], now, 20)
    check = monitor("bank-prepared", since="1d", window="1d", now=now)
    assert check.summary["reference"]["path"] == str(prepared)
    assert check.summary["reference"]["inputs"] == result.counts["train"]
    cost = check.summary["cost"]
    assert cost["examples"] == result.counts["train"] and cost["managed"]["usd"] > 0
    assert "would cost" in check.answer.paragraph and check.answer.action == "none"


def test_current_from_a_file_and_the_queue_goes_to_prepare(tmp_path):
    """--current FILE with timestamps instead of the request log; the labelling queue, once
    labelled, is what `tunesmith data prepare` reads."""
    from tunesmith.data.prepare import prepare

    data = need_data()
    texts, truth = banking77("test")
    other = restaurant8k("test")
    now = datetime.now(timezone.utc)
    current = tmp_path / "traffic.jsonl"
    lines = []
    for k in range(400):
        text, output = (other[k], "card_arrival") if k % 2 else (texts[k * 7], truth[k * 7])
        stamp = (now - timedelta(hours=40 - (k + 0.5) / 10)).isoformat()  # none on a window edge
        lines.append(json.dumps({"input_text": text, "output_text": output, "timestamp": stamp}))
    current.write_text("\n".join(lines) + "\n")
    result = run("whatever-name", "--since", "2d", "--window", "1d", "--current", str(current),
                 "--reference", str(data / "banking77" / "train.csv"), "--json", str(tmp_path / "s.json"), "--no-cost")
    assert result.returncode == 1, result.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["current"]["requests"] == 400 and [w["requests"] for w in summary["windows"]] == [160, 240]
    queue = tmp_path / "queue.jsonl"
    records = [json.loads(line) for line in open(summary["queue_path"], encoding="utf-8")]
    assert len(records) >= 50
    queue.write_text("".join(json.dumps({**r, "output_text": "book_table"}) + "\n" for r in records))
    prepared = prepare([queue], tmp_path / "prepared")
    assert sum(prepared.counts[s] for s in ("train", "validation", "test")) > 0


def test_quality_drop_against_the_release_evaluation_advises_a_retune_now(tmp_path):
    """The model's eval run at release says 90% accuracy; on 600 fresh Banking77 labels its
    logged answers are right 80% of the time: re-tune now. At 90%: no need."""
    from tunesmith.store.queries import record_eval_run

    data = need_data()
    texts, truth = banking77("test")
    classes = sorted(set(truth))
    rng = np.random.default_rng(8)
    idx = rng.choice(len(texts), 600, replace=False)
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps({"input_text": texts[i], "output_text": truth[i]}) + "\n" for i in idx))
    now = datetime.now(timezone.utc)
    actions = {}
    for accuracy in (0.80, 0.90):
        name = f"bank-{int(accuracy * 100)}"
        model = register_model(base_model="smollm2-135m-instruct", method="lora", spec={}, name=name,
                               lineage={"data": str(data / "banking77" / "train.csv")})
        record_eval_run(id=f"ev-{name}", model_ref=name, model_id=model.id, data_path="test.csv", metrics_kind="label",
                        examples=3080, items=[], summary={"metrics": [{"metric": "accuracy", "value": 0.90}]})
        answers = [truth[i] if rng.random() < accuracy else rng.choice([c for c in classes if c != truth[i]])
                   for i in idx]
        _log(model.id, name, [texts[i] for i in idx], answers, now, 20)
        result = monitor(name, since="1d", labels=labels, estimate_cost=False, now=now)
        quality = result.summary["quality"]
        assert quality["release_value"] == 0.90 and quality["release_eval"] == f"ev-{name}"
        actions[accuracy] = (result.answer.action, quality["dropped"])
    assert actions == {0.80: ("now", True), 0.90: ("none", False)}


def test_fresh_labels_from_feedback_on_logged_requests():
    """The correct answers clients sent as feedback (POST /v1/feedback, `rollout label`) are
    fresh labels: logged answers right 80% of the time against a release at 90% -> re-tune now."""
    from tunesmith.store.deployments import add_feedback
    from tunesmith.store.queries import record_eval_run

    data = need_data()
    texts, truth = banking77("test")
    classes = sorted(set(truth))
    rng = np.random.default_rng(9)
    idx = rng.choice(len(texts), 600, replace=False)
    model = register_model(base_model="smollm2-135m-instruct", method="lora", spec={}, name="bank-fb",
                           lineage={"data": str(data / "banking77" / "train.csv")})
    record_eval_run(id="ev-bank-fb", model_ref="bank-fb", model_id=model.id, data_path="test.csv", metrics_kind="label",
                    examples=3080, items=[], summary={"metrics": [{"metric": "accuracy", "value": 0.90}]})
    now = datetime.now(timezone.utc)
    answers = [truth[i] if rng.random() < 0.80 else rng.choice([c for c in classes if c != truth[i]]) for i in idx]
    add_served_requests([dict(api="openai", model="bank-fb", model_id=model.id, status_code=200,
                              request_id=f"req-{k}", time=now - timedelta(minutes=600 - k),
                              input_messages={"turns": [{"role": "user", "text": texts[i]}]}, output_text=answer)
                         for k, (i, answer) in enumerate(zip(idx, answers))])
    add_feedback([{"request_id": f"req-{k}", "answer": truth[i], "source": "api", "time": now}
                  for k, i in enumerate(idx)])
    result = monitor("bank-fb", since="1d", estimate_cost=False, now=now)
    quality = result.summary["quality"]
    assert quality["n"] == 600 and abs(quality["value"] - 0.80) < 0.05 and quality["release_value"] == 0.90
    assert quality["dropped"] and result.answer.action == "now"
