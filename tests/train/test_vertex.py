"""The managed path end to end through the real google-genai and google-cloud-storage clients,
against a fake tuning service (tests/train/_fake_vertex.py) and gcp-storage-emulator."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tunesmith.errors import BadInputError, ExportError, TunesmithError
from tunesmith.store import queries
from tunesmith.paths import runs_dir
from tunesmith.train import jobs
from tunesmith.train.backends import vertex
from tunesmith.train.spec import load_spec

from ._data import prepared_tickets
from ._fake_vertex import FAILURE_MESSAGE, FAILURE_SCRIPT, FakeVertex, service_account_file, storage_emulator

PROJECT, LOCATION, BUCKET = "tuning-project", "us-central1", "tunesmith-test"
BUCKET_URI = f"gs://{BUCKET}/runs"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return prepared_tickets(tmp_path_factory.mktemp("vertex"), n=120)


@pytest.fixture
def cloud(tmp_path, monkeypatch):
    """The fake service and the emulator, with the standard variables pointing at them."""
    with FakeVertex() as fake, storage_emulator(BUCKET) as storage_url:
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(service_account_file(tmp_path, fake, PROJECT)))
        monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", fake.url)
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", storage_url)
        for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION",
                     "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENAI_USE_ENTERPRISE", "GOOGLE_GENAI_API_VERSION"):
            monkeypatch.delenv(name, raising=False)
        yield fake


def vertex_spec(prepared: Path, **overrides):
    fields = dict(backend="vertex", data=prepared, project=PROJECT, bucket=BUCKET_URI, epochs=3,
                  poll_interval_s=0.01, poll_max_interval_s=0.05)
    return load_spec(**{**fields, **overrides})


def stored_blob(uri: str) -> bytes:
    from google.cloud import storage

    bucket, _, name = uri.removeprefix("gs://").partition("/")
    return storage.Client(project=PROJECT).bucket(bucket).blob(name).download_as_bytes()


def no_secret_anywhere(fake: FakeVertex, *texts: str) -> None:
    """Neither the bearer token nor the private key reached the store, a run folder or a message."""
    home = Path(runs_dir()).parent
    key_text = json.loads(Path(os.environ["GOOGLE_APPLICATION_CREDENTIALS"]).read_text())["private_key"]
    secrets = [fake.token, key_text.splitlines()[1]]
    for path in [p for p in home.rglob("*") if p.is_file()]:
        content = path.read_bytes()
        assert not any(s.encode() in content for s in secrets), path
    assert not any(s in text for s in secrets for text in texts)


def test_billable_tokens_follow_googles_rule():
    records = [{"systemInstruction": {"parts": [{"text": "ss"}]},
                "contents": [{"role": "user", "parts": [{"text": "uuuu"}]}, {"role": "model", "parts": [{"text": "mm"}]},
                             {"role": "user", "parts": [{"text": "u"}]}, {"role": "model", "parts": [{"text": "mmm"}]}]}]
    # Each model turn is a record billed for its prefix + itself + 8: (2+4) + 2 + 8, then (2+4+2+1) + 3 + 8.
    assert vertex.billable_tokens(records, lambda texts: [len(t) for t in texts]) == (2, 16 + 20)


def test_estimate_prices_train_and_validation_times_epochs_offline(prepared):
    estimate = vertex.estimate(prepared, "gemini-2.5-flash", epochs=4)
    train, validation = estimate.splits["train"], estimate.splits["validation"]
    assert train["examples"] > validation["examples"] > 0 and train["records"] == train["examples"]
    assert estimate.billable_tokens == 4 * (train["billable_tokens"] + validation["billable_tokens"])
    assert estimate.cost_usd == pytest.approx(estimate.billable_tokens / 1e6 * 5.00)
    assert "billable tokens" in "\n".join(estimate.lines()) and estimate.dataset_version


@pytest.mark.parametrize("overrides, named", [
    ({"project": None}, "project"),
    ({"bucket": None}, "bucket"),
    ({"bucket": "my-bucket/prefix"}, "bucket"),
    ({"batch_size": 4}, "batch_size"),
    ({"lora.rank": 8}, "lora"),
    ({"method": "lora"}, "method"),
    ({"adapter_size": 3}, "adapter_size"),
    ({"epochs": 2.5}, "epochs"),
    ({"base_model": "smollm2-135m-instruct"}, "base_model"),
    ({"labels": {"Team": "x"}}, "labels"),
])
def test_vertex_specs_name_the_field_that_is_wrong(prepared, overrides, named, monkeypatch):
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    fields = {"backend": "vertex", "data": prepared, "project": PROJECT, "bucket": BUCKET_URI, **overrides}
    with pytest.raises(BadInputError) as err:
        load_spec(**{k: v for k, v in fields.items() if v is not None})
    assert named in err.value.message and err.value.exit_code == 2


def test_local_specs_refuse_vertex_fields_and_vertex_specs_read_the_environment(prepared, monkeypatch):
    with pytest.raises(BadInputError, match="bucket applies only to backend: vertex"):
        load_spec(data=prepared, bucket=BUCKET_URI)
    assert "project" not in load_spec(data=prepared).resolved()
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "from-env")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "europe-west4")
    spec = load_spec(backend="vertex", data=prepared, bucket=BUCKET_URI)
    resolved = spec.resolved()
    assert (resolved["project"], resolved["location"], resolved["base_model"], resolved["method"]) == \
        ("from-env", "europe-west4", "gemini-2.5-flash", "vertex-sft")
    assert "batch_size" not in resolved and resolved["epochs"] == 3


def test_from_prepared_folder_to_a_registered_tuned_endpoint(prepared, cloud):
    shown = []
    spec = vertex_spec(prepared, learning_rate_multiplier=0.5, adapter_size=4, labels={"team": "support"},
                       name="gemini-tickets")
    job = jobs.start_job(spec, display=shown.append, confirm=lambda estimate: estimate.cost_usd > 0)

    assert job.status == "succeeded" and job.backend == "vertex" and job.method == "vertex-sft"
    assert job.remote_name == f"projects/{PROJECT}/locations/{LOCATION}/tuningJobs/4000"
    # The request body google-genai sent, as the REST resource defines it.
    (body,) = cloud.created_bodies()
    tuning = body["supervisedTuningSpec"]
    assert body["baseModel"] == "gemini-2.5-flash"
    assert tuning["hyperParameters"] == {"epochCount": 3, "learningRateMultiplier": 0.5, "adapterSize": "ADAPTER_SIZE_FOUR"}
    assert body["tunedModelDisplayName"] == f"tunesmith {job.id}"
    assert body["labels"] == {"team": "support", "tunesmith-job": job.id}
    assert tuning["trainingDatasetUri"].startswith(f"{BUCKET_URI}/train-") and tuning["validationDatasetUri"]
    paths = {(r["method"], r["path"]) for r in cloud.requests}
    assert ("POST", f"/v1beta1/projects/{PROJECT}/locations/{LOCATION}/tuningJobs") in paths
    assert ("GET", f"/v1beta1/{job.remote_name}") in paths
    assert all(r["authorization"] == f"Bearer {cloud.token}" for r in cloud.requests)  # the token came from /token
    # The uploaded files are the exported, validated files, byte for byte.
    run_data = Path(job.run_dir) / "data"
    assert stored_blob(tuning["trainingDatasetUri"]) == (run_data / "train.jsonl").read_bytes()
    assert stored_blob(tuning["validationDatasetUri"]) == (run_data / "validation.jsonl").read_bytes()
    first = json.loads((run_data / "train.jsonl").read_text().splitlines()[0])
    assert [c["role"] for c in first["contents"]] == ["user", "model"]

    model = queries.get_model("gemini-tickets")
    assert (model.method, model.base_model, model.job_id) == ("vertex-sft", "gemini-2.5-flash", job.id)
    assert model.remote_model == f"projects/{PROJECT}/locations/{LOCATION}/models/7001@1"
    assert model.remote_endpoint == f"projects/{PROJECT}/locations/{LOCATION}/endpoints/8001"
    assert (model.spec["project"], model.spec["location"]) == (PROJECT, LOCATION)
    lineage = model.lineage
    assert lineage["remote_job"] == job.remote_name and lineage["dataset_version"] == job.dataset_version
    assert lineage["training_data_uri"] == tuning["trainingDatasetUri"]
    assert lineage["tuning_data_stats"]["supervised_tuning_data_stats"]["tuning_dataset_example_count"] == 84
    assert lineage["estimate"]["billable_tokens"] > 0

    # Every step was visible: export, estimate, upload, creation, the sub-states, epochs, registration.
    kinds = [row.get("event") for row in shown]
    assert kinds[:2] == ["export", "estimate"] and kinds.count("upload") == 2 and "registered" in kinds
    messages = " | ".join(row.get("message", "") for row in shown)
    assert "waiting for quota" in messages and "processing dataset" in messages and "tuning" in messages
    assert {"step": 30, "epoch": 3, "max_steps": 30} in shown
    log = (Path(job.run_dir) / jobs.LOG_FILE).read_text()
    assert "remote_state: running (tuning)" in log and "registered model" in log
    no_secret_anywhere(cloud, messages, log)


def test_a_rerun_uploads_nothing_twice(prepared, cloud):
    first = jobs.start_job(vertex_spec(prepared))
    shown = []
    second = jobs.start_job(vertex_spec(prepared), display=shown.append)
    assert first.status == second.status == "succeeded"
    uploads = [row["message"] for row in shown if row.get("event") == "upload"]
    assert len(uploads) == 2 and all("not sent again" in m for m in uploads)
    bodies = cloud.created_bodies()
    assert bodies[0]["supervisedTuningSpec"]["trainingDatasetUri"] == bodies[1]["supervisedTuningSpec"]["trainingDatasetUri"]


def test_declining_the_estimate_uploads_nothing_and_creates_no_job(prepared, cloud):
    seen = []
    assert jobs.start_job(vertex_spec(prepared), confirm=lambda e: seen.append(e) or False) is None
    assert seen[0].billable_tokens > 0 and cloud.requests == [] and queries.list_jobs() == []


def test_invalid_data_is_never_uploaded(prepared, cloud, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(prepared, broken)
    with open(broken / "train.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"contents": [{"role": "user", "parts": [{"text": "edited after prepare"}]}]}) + "\n")
    with pytest.raises(ExportError):
        jobs.start_job(vertex_spec(broken))
    assert cloud.requests == [] and queries.list_jobs() == []


def test_a_failed_job_keeps_the_services_message(prepared, cloud):
    cloud.script = FAILURE_SCRIPT
    job = jobs.start_job(vertex_spec(prepared))
    assert job.status == "failed" and FAILURE_MESSAGE in job.error and job.stop_reason == "error"
    assert queries.list_models() == []
    no_secret_anywhere(cloud, job.error)


def test_a_refused_creation_fails_the_job_with_the_service_answer(prepared, cloud):
    cloud.create_error = (400, "INVALID_ARGUMENT", "Tuning is not available in region us-central1 for this project.")
    job = jobs.start_job(vertex_spec(prepared))
    assert job.status == "failed" and job.remote_name is None
    assert "400 INVALID_ARGUMENT: Tuning is not available" in job.error and "Hint:" in job.error


def test_detach_then_show_polls_and_cancel_reaches_the_service(prepared, cloud):
    job = jobs.start_job(vertex_spec(prepared), detach=True)
    assert job.status == "queued" and job.remote_state == "JOB_STATE_QUEUED"
    assert jobs.list_jobs()[0].remote_state == "JOB_STATE_QUEUED"  # listing does not poll
    polled = jobs.get_job(job.id)
    assert polled.remote_state == "JOB_STATE_PENDING/TUNING_JOB_STATE_WAITING_FOR_QUOTA" and polled.status == "queued"
    assert jobs.get_job(job.id).status == "running"

    cancelling = jobs.cancel_job(job.id)
    assert ("POST", f"/v1beta1/{job.remote_name}:cancel") in {(r["method"], r["path"]) for r in cloud.requests}
    assert cancelling.status == "cancelled"  # the fake finishes cancelling at the next poll
    with pytest.raises(BadInputError, match="cannot resume"):
        jobs.resume_job(job.id)


def test_follow_backs_off_while_nothing_changes_and_survives_a_blip(prepared, cloud):
    cloud.script = [("JOB_STATE_RUNNING", "TUNING_JOB_STATE_TUNING", 1)] * 5 + [("JOB_STATE_SUCCEEDED", None, 3)]
    job = jobs.start_job(vertex_spec(prepared, poll_interval_s=1, poll_max_interval_s=4), detach=True)
    cloud.fail_next_gets = 1  # one 503 from the service: a warning, then polling goes on
    waits = []
    finished = jobs.follow_job(job.id, sleep=waits.append)
    assert finished.status == "succeeded"
    # 503: wait 1; a change: back to 1; then 2, 4 and no more than 4 while the state stands still.
    assert waits == [1, 1, 2, 4, 4, 4]
    assert any(e.kind == "warning" and "503" in e.message for e in queries.job_events(job.id))


def test_missing_credentials_are_a_sentence_not_a_traceback(prepared, cloud, tmp_path, monkeypatch):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "absent.json"))
    job = jobs.start_job(vertex_spec(prepared))
    assert job.status == "failed" and "credentials" in job.error.lower()


def test_genai_client_is_the_backends_client(cloud):
    client = vertex.genai_client(PROJECT, LOCATION)
    assert client.vertexai and client._api_client.project == PROJECT
    with pytest.raises(TunesmithError):
        vertex.VertexBackend().refresh(type("Job", (), {"id": "x", "remote_name": "projects/p/locations/l/tuningJobs/9",
                                                        "spec": {"project": "p", "location": "l"}})(), None)
