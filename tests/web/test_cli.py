"""The terminal side: `tunesmith ui`'s refusal off loopback, and tables that never cut an id."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tunesmith.cli import app
from tunesmith.cli._display import id_table
from tunesmith.store import queries


def test_ui_refuses_a_public_address_without_a_key(monkeypatch):
    env = {k: v for k, v in os.environ.items() if k != "TUNESMITH_API_KEY"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "src")
    result = subprocess.run([sys.executable, "-m", "tunesmith", "ui", "--host", "0.0.0.0"], capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 2 and "without an API key" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("columns", [80, 60])
def test_list_tables_keep_ids_whole_on_a_narrow_terminal(columns, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(columns))
    job = queries.create_job("local", {}, "/tmp/r", "HuggingFaceTB/SmolLM2-135M-Instruct-with-a-long-name", "lora")
    model = queries.register_model(base_model="HuggingFaceTB/SmolLM2-135M-Instruct-with-a-long-name", method="lora",
                                   spec={}, name="a-rather-long-model-name", best_metrics={"eval_loss": 1.25},
                                   stop_reason="stopped_early")
    runner = CliRunner()
    for command, wanted in ((["jobs", "list"], job.id), (["models", "list"], model.id)):
        result = runner.invoke(app, command)
        assert result.exit_code == 0, result.output
        assert wanted in result.output, result.output
        assert max(len(line) for line in result.output.splitlines()) <= columns


def test_id_table_folds_the_other_columns():
    from rich.console import Console

    console = Console(width=50, record=True)
    console.print(id_table(["id", "text"], [["mv-20261207-061047-3472", "a long text " * 6]]))
    text = console.export_text()
    assert "mv-20261207-061047-3472" in text and "…" not in text


def test_models_stage_from_the_terminal_keeps_the_rule():
    first = queries.register_model(base_model="base", method="lora", spec={})
    second = queries.register_model(base_model="base", method="lora", spec={})
    runner = CliRunner()
    assert runner.invoke(app, ["models", "stage", first.id, "production"]).exit_code == 0
    refused = runner.invoke(app, ["models", "stage", second.id, "production"])
    assert refused.exit_code != 0 and "already in production" in str(refused.exception)
    moved = runner.invoke(app, ["models", "stage", second.id, "production", "--family", "other"])
    assert moved.exit_code == 0 and "production (family other)" in moved.output
