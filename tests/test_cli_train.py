"""`tunesmith train`, `jobs`, `models` and `data inspect` as a user runs them."""

from __future__ import annotations

import json

from .test_cli import run
from .train._data import prepared_tickets


def test_train_then_inspect_the_job_and_the_model(tmp_path, tiny_model_dir):
    prepared_tickets(tmp_path, n=100)
    env_home = tmp_path / "home"
    common = ["--base-model", str(tiny_model_dir), "--batch-size", "4", "--precision", "fp32"]
    trained = run("train", "--data", "prepared", "--max-steps", "4", "--eval-interval", "2", "--name", "cli-model",
                  "--gradient-checkpointing", "true", "--lora-target-modules", "q_proj, v_proj", "--warmup-ratio", "0.1",
                  "--weight-decay", "0.01", "--max-grad-norm", "0.5", *common, cwd=tmp_path, home=env_home)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "succeeded" in trained.stdout and "registered" in trained.stdout and "metrics.jsonl" in trained.stdout

    listed = json.loads(run("jobs", "list", "--json", cwd=tmp_path, home=env_home).stdout)
    job_id = listed[0]["id"]
    assert listed[0]["status"] == "succeeded"
    shown = json.loads(run("jobs", "show", job_id[:12] if len(listed) == 1 else job_id, "--json",
                           cwd=tmp_path, home=env_home).stdout)
    assert any(e["kind"] == "registered" for e in shown["events"]) and shown["metrics"]
    logs = run("jobs", "logs", job_id, cwd=tmp_path, home=env_home).stdout
    assert "step 4" in logs
    metric_lines = run("jobs", "logs", job_id, "--json", cwd=tmp_path, home=env_home).stdout.splitlines()
    assert json.loads(metric_lines[-1])["step"] == 4

    models = json.loads(run("models", "list", "--json", cwd=tmp_path, home=env_home).stdout)
    assert models[0]["name"] == "cli-model" and models[0]["stage"] == "candidate"
    shown_model = json.loads(run("models", "show", "cli-model", "--json", cwd=tmp_path, home=env_home).stdout)
    assert shown_model["job_id"] == job_id and shown_model["dataset_version"]
    spec = shown_model["spec"]
    assert spec["gradient_checkpointing"] is True and spec["lora"]["target_modules"] == ["q_proj", "v_proj"]
    assert (spec["warmup_ratio"], spec["weight_decay"], spec["max_grad_norm"]) == (0.1, 0.01, 0.5)
    exported = run("models", "export", "cli-model", "--out", "merged", "--merged", cwd=tmp_path, home=env_home)
    assert exported.returncode == 0 and (tmp_path / "merged" / "model.safetensors").is_file()

    inspected = run("data", "inspect", "prepared", "--model", str(tiny_model_dir), "-n", "1", cwd=tmp_path, home=env_home)
    assert inspected.returncode == 0 and "⟦Category:" in inspected.stdout and "trained" in inspected.stdout


def test_train_refuses_bad_specs_before_loading_a_model(tmp_path):
    prepared_tickets(tmp_path, n=100)
    bad = run("train", "--data", "prepared", "--epochs", "0", cwd=tmp_path)
    assert bad.returncode == 2 and "epochs" in bad.stderr and "Traceback" not in bad.stderr
    qlora = run("train", "--data", "prepared", "--method", "qlora", "--max-steps", "1", cwd=tmp_path)
    assert qlora.returncode == 2 and "CUDA" in qlora.stderr and "method: lora" in qlora.stderr
    for flag, value, field in (("--gradient-checkpointing", "maybe", "gradient_checkpointing: must be auto, true or false"),
                               ("--lora-target-modules", ",", "lora.target_modules")):
        refused = run("train", "--data", "prepared", flag, value, cwd=tmp_path)
        assert refused.returncode == 2 and field in refused.stderr and "Traceback" not in refused.stderr
    missing = run("train", "--data", "nowhere", cwd=tmp_path)
    assert missing.returncode == 2 and "not a prepared dataset" in missing.stderr


def test_train_help_shows_the_words_a_field_of_choices_takes(tmp_path):
    shown = run("train", "--help", cwd=tmp_path)
    assert shown.returncode == 0
    lines = {line.split()[1]: line for line in shown.stdout.splitlines() if line.startswith("│ --")}
    for flag, words in (("--group-by-length", "true|false"), ("--gradient-checkpointing", "auto|true|false"),
                        ("--method", "lora|qlora|full|vertex-sft"), ("--backend", "local|vertex")):
        assert words in lines[flag], lines[flag]
    assert "<int>" in lines["--lora-rank"]
