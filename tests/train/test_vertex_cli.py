"""`tunesmith train SPEC.yaml` with `backend: vertex`, and `tunesmith jobs` on a job at Vertex AI,
as a user runs them (real processes, the fake service and the storage emulator)."""

from __future__ import annotations

import json

import pytest

from ..test_cli import run
from ._data import prepared_tickets
from .test_vertex import BUCKET_URI, LOCATION, PROJECT, cloud  # noqa: F401 (the fixture)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vertex-cli")
    prepared_tickets(folder, n=120)
    (folder / "gemini.yaml").write_text(
        f"backend: vertex\nbase_model: gemini-2.5-flash\ndata: prepared\nproject: {PROJECT}\nbucket: {BUCKET_URI}\n"
        "epochs: 3\nadapter_size: 8\npoll_interval_s: 0.01\npoll_max_interval_s: 0.02\n")
    return folder


def test_train_from_a_yaml_spec_to_a_registered_endpoint(folder, cloud, tmp_path):  # noqa: F811
    home = tmp_path / "home"
    trained = run("train", "gemini.yaml", "--yes", "--label", "team=support", "--name", "cli-gemini",
                  cwd=folder, home=home)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "succeeded" in trained.stdout and f"endpoint: projects/{PROJECT}/locations/{LOCATION}/endpoints/" in trained.stdout
    for step in ("export:", "billable tokens", "upload:", "created:", "waiting for quota", "epoch 3, step 30/30",
                 "registered:"):
        assert step in trained.stderr, step
    (body,) = cloud.created_bodies()
    assert body["supervisedTuningSpec"]["hyperParameters"]["adapterSize"] == "ADAPTER_SIZE_EIGHT"
    assert body["labels"]["team"] == "support"

    model = json.loads(run("models", "show", "cli-gemini", "--json", cwd=folder, home=home).stdout)
    assert model["method"] == "vertex-sft" and model["remote_endpoint"].endswith("/endpoints/8001")
    job_id = model["job_id"]
    shown = run("jobs", "show", job_id, cwd=folder, home=home).stdout
    assert f"at Vertex AI: projects/{PROJECT}/locations/{LOCATION}/tuningJobs/4000, succeeded" in shown


def test_without_yes_it_asks_and_a_refusal_sends_nothing(folder, cloud, tmp_path):  # noqa: F811
    refused = run("train", "gemini.yaml", cwd=folder, home=tmp_path / "home")  # stdin is empty: no answer
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "billable tokens" in refused.stderr and cloud.requests == []


def test_detach_then_show_then_cancel(folder, cloud, tmp_path):  # noqa: F811
    home = tmp_path / "home"
    started = run("train", "gemini.yaml", "--yes", "--detach", cwd=folder, home=home)
    assert started.returncode == 0, started.stderr
    assert "runs at Vertex AI as projects/" in started.stdout
    job_id = json.loads(run("jobs", "list", "--json", cwd=folder, home=home).stdout)[0]["id"]
    shown = run("jobs", "show", job_id, cwd=folder, home=home).stdout
    assert "pending (waiting for quota)" in shown
    cancelled = run("jobs", "cancel", job_id, cwd=folder, home=home)
    assert cancelled.returncode == 0 and f"job {job_id}: cancelled" in cancelled.stdout
    assert any(r["path"].endswith(":cancel") for r in cloud.requests)


def test_fields_of_the_other_backend_are_refused_by_name(folder):
    local = run("train", "--data", "prepared", "--bucket", BUCKET_URI, cwd=folder)
    assert local.returncode == 2 and "bucket applies only to backend: vertex" in local.stderr
    vertex = run("train", "gemini.yaml", "--batch-size", "4", cwd=folder)
    assert vertex.returncode == 2 and "batch_size applies only to backend: local" in vertex.stderr
