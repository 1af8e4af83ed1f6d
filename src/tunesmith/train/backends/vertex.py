"""The managed path: Gemini supervised tuning on Vertex AI (Gemini Enterprise Agent Platform).

A job on this backend goes through these steps, each shown to the user and written to the
job's events and log (docs/managed.md walks through them with a real project):

    1. export train and validation to the Gemini format, validated against the target's
       rules and limits (data/export.py): invalid data is never uploaded;
    2. count billable tokens and price them from the target file: `estimate`; the caller
       may decline here, before anything leaves the machine;
    3. upload both files to Cloud Storage, named by content hash (gcs.py);
    4. create the tuning job with google-genai (`client.tunings.tune`), keep its name;
    5. poll with backoff, mirroring the remote state, sub-state and completed epochs/steps;
    6. on success hand the job runner (train/jobs.py) the tuned model and endpoint resource
       names, the service's tuning data statistics and the lineage, which it registers; on
       failure the service's message.

Authentication is Application Default Credentials, resolved by google-auth; GOOGLE_CLOUD_PROJECT,
GOOGLE_CLOUD_LOCATION, GOOGLE_APPLICATION_CREDENTIALS, GOOGLE_VERTEX_BASE_URL and
STORAGE_EMULATOR_HOST work as the Google libraries document them."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from ...data.export import export
from ...data.tokens import counter_for
from ...errors import TunesmithError
from ...fileio import atomic_write_text
from ...models.gemini import cloud_error, genai_client, is_transient
from ...paths import runs_dir
from ...store import queries
from ...targets import load_target
from ..recorder import Display, Recorder
from ..spec import VERTEX_DEFAULT_BASE_MODEL, VertexSpec
from . import gcs
from .base import TrainedModel, Update

DATA_DIR = "data"  # in the run folder: the exported files exactly as uploaded
PADDING_TOKENS_PER_RECORD = 8  # Google's cost notebook: ESTIMATE_PADDING_TOKEN_PER_EXAMPLE
POLL_RETRIES = 5  # consecutive transient polling failures tolerated before giving up following
ADAPTER_SIZES = {1: "ADAPTER_SIZE_ONE", 2: "ADAPTER_SIZE_TWO", 4: "ADAPTER_SIZE_FOUR", 8: "ADAPTER_SIZE_EIGHT",
                 16: "ADAPTER_SIZE_SIXTEEN", 32: "ADAPTER_SIZE_THIRTY_TWO"}
# The remote JobState as a tunesmith job status; a state not listed keeps the status as it was.
STATUS_BY_STATE = {
    "JOB_STATE_QUEUED": "queued", "JOB_STATE_PENDING": "queued",
    "JOB_STATE_RUNNING": "running", "JOB_STATE_UPDATING": "running", "JOB_STATE_PAUSED": "running",
    "JOB_STATE_CANCELLING": "running",
    "JOB_STATE_SUCCEEDED": "succeeded", "JOB_STATE_PARTIALLY_SUCCEEDED": "succeeded",
    "JOB_STATE_FAILED": "failed", "JOB_STATE_EXPIRED": "failed",
    "JOB_STATE_CANCELLED": "cancelled",
}


# --- 1-2. export, validate, count and price: nothing leaves the machine ---------------------


@dataclass
class Estimate:
    """What tuning a prepared dataset would bill: tokens per split and epoch, and the price."""

    target: str
    epochs: int
    splits: dict[str, dict]  # {"train": {"file", "examples", "records", "billable_tokens"}, "validation": …}
    token_method: str
    price_per_million_training_tokens_usd: float
    price_note: str
    dataset_version: str | None = None

    @property
    def billable_tokens_per_epoch(self) -> int:
        return sum(s["billable_tokens"] for s in self.splits.values())

    @property
    def billable_tokens(self) -> int:
        return self.billable_tokens_per_epoch * self.epochs

    @property
    def cost_usd(self) -> float:
        return self.billable_tokens / 1e6 * self.price_per_million_training_tokens_usd

    def lines(self) -> list[str]:
        per_split = "; ".join(f"{name} {s['examples']:,} examples, {s['billable_tokens']:,} billable tokens"
                              for name, s in self.splits.items())
        return [per_split,
                f"{self.billable_tokens_per_epoch:,} tokens x {self.epochs} epochs = {self.billable_tokens:,} billable "
                f"tokens, about ${self.cost_usd:,.2f} at ${self.price_per_million_training_tokens_usd:.2f} per 1M",
                f"{self.price_note}; tokens by {self.token_method}; the service counts its own once it has read the data"]

    def to_dict(self) -> dict:
        return {**asdict(self), "billable_tokens": self.billable_tokens, "cost_usd": round(self.cost_usd, 4)}


def estimate(prepared_dir: str | Path, base_model: str = VERTEX_DEFAULT_BASE_MODEL, epochs: int = 3,
             out_dir: str | Path | None = None) -> Estimate:
    """Export train and validation of a prepared folder to the Gemini format (validated against
    the target's rules and limits; raises on invalid data), and count and price what tuning
    `base_model` on them for `epochs` would bill. Nothing is uploaded. The files stay in
    `out_dir` when it is given.

    Billable tokens follow Google's cost notebook: every model turn is one training record,
    billed for its whole prefix (system instruction included) plus its own tokens plus 8
    padding tokens; train and validation both count, once per epoch."""
    target = load_target(f"vertex/{base_model}")
    with tempfile.TemporaryDirectory(prefix="tunesmith-estimate-") as scratch:
        out = Path(out_dir) if out_dir is not None else Path(scratch)
        summary = export(prepared_dir, "gemini", out, target=target.name)
        counter = counter_for(target)
        splits = {}
        for split, written in summary["splits"].items():
            records, tokens = billable_tokens(_read_jsonl(Path(written["file"])), counter.count_many)
            splits[split] = {"file": Path(written["file"]).name, "examples": written["examples"], "records": records,
                             "billable_tokens": tokens}
    return Estimate(target=target.name, epochs=int(epochs), splits=splits, token_method=counter.method,
                    price_per_million_training_tokens_usd=target.price_per_million_training_tokens_usd,
                    price_note=f"price as of {target.price_as_of}: {target.price_source}",
                    dataset_version=summary["dataset_version"])


def billable_tokens(records: list[dict], count_many: Callable[[list[str]], list[int]]) -> tuple[int, int]:
    """(training records, billable tokens) of Gemini-format records, counted by Google's rule."""
    texts: list[str] = []
    layout: list[list[str]] = []  # per record: the role of each counted text, "system" first
    for record in records:
        system = record.get("systemInstruction", {}).get("parts", [])
        texts.append("".join(p.get("text", "") for p in system))
        roles = ["system"]
        for content in record["contents"]:
            texts.append("".join(p.get("text", "") for p in content["parts"]))
            roles.append(content["role"])
        layout.append(roles)
    counts = iter(count_many(texts))
    n_records = total = 0
    for roles in layout:
        prefix = 0
        for role in roles:
            n = next(counts)
            if role == "model":
                n_records += 1
                total += prefix + n + PADDING_TOKENS_PER_RECORD
            prefix += n
    return n_records, total


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# --- the backend: 3-4 start (upload, create), 5 follow, refresh, cancel -------------------------


class VertexBackend:
    """The job runner's view of the managed path (the Protocol in train/backends/base.py)."""

    runs_remotely = True  # any process can follow it by polling

    def check(self, spec: VertexSpec, display: Display | None, confirm: Callable[[Estimate], bool] | None) -> bool:
        """Steps 1-2 before a job exists: export, validate, count and price into a staging folder,
        shown to the user; `confirm` may decline here, before anything leaves the machine."""
        show = display or (lambda row: None)
        runs_dir().mkdir(parents=True, exist_ok=True)
        self._staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=runs_dir()))
        try:
            self._plan = estimate(spec.data, spec.base_model, int(spec.epochs), out_dir=self._staging)
            self._staged = _staged_events(self._plan)
            for kind, message, _ in self._staged:
                show({"event": kind, "message": message})
            if confirm is not None and not confirm(self._plan):
                shutil.rmtree(self._staging, ignore_errors=True)
                return False
        except BaseException:
            shutil.rmtree(self._staging, ignore_errors=True)
            raise
        return True

    def start(self, job, spec: VertexSpec, recorder: Recorder, *, resume: bool, detach: bool) -> Iterator[Update]:
        """Steps 3-4: the staged files into the run folder, uploaded; the tuning job created."""
        data_dir = Path(job.run_dir) / DATA_DIR
        os.replace(self._staging, data_dir)
        _repoint_export_summary(data_dir)
        for kind, message, data in self._staged:
            recorder.event(kind, message, data, show=False)
        uploads = {}
        for split, info in self._plan.splits.items():
            if info["examples"] == 0:  # no validation split: the job runs without validation metrics
                continue
            uploaded = gcs.upload(data_dir / info["file"], spec.bucket, split, project=spec.project)
            uploads[split] = uploaded.uri
            recorder.event("upload", f"{uploaded.uri}: " + (f"uploaded {uploaded.bytes:,} bytes" if uploaded.sent
                                                            else "already there with the same content, not sent again"))
        remote = _create_remote(spec, job.id, uploads)
        recorder.event("created", f"tuning job {remote.name}",
                       {"remote_job": remote.name, "training_data_uri": uploads["train"],
                        "validation_data_uri": uploads.get("validation"), "estimate": self._plan.to_dict()})
        yield Update(job.status, fields={"remote_name": remote.name})
        yield _sync(job, remote, recorder)

    def follow(self, job, spec: VertexSpec | None, recorder: Recorder, *, resume: bool = False,
               sleep: Callable[[float], None] = time.sleep) -> Iterator[Update]:
        """Step 5: poll until the job ends (Ctrl-C stops following; the job goes on). The wait
        starts at the spec's poll_interval_s and doubles while nothing changes, up to poll_max_interval_s."""
        job = queries.get_job(job.id)
        first_s, max_s = job.spec["poll_interval_s"], job.spec["poll_max_interval_s"]
        client = genai_client(job.spec["project"], job.spec["location"])
        wait_s, failures, seen = first_s, 0, job.remote_state
        try:
            while True:
                try:
                    remote = client.tunings.get(name=job.remote_name)
                except Exception as exc:
                    failures += 1
                    error = _translated(exc, f"polling {job.remote_name}")
                    if not is_transient(exc) or failures > POLL_RETRIES:
                        raise TunesmithError(f"{error.message}; the tuning job itself goes on at Vertex AI",
                                             f"`tunesmith jobs show {job.id}` polls it again; {error.hint}") from None
                    recorder.event("warning", f"{error.message}; trying again in {wait_s:g}s")
                else:
                    failures = 0
                    before = (seen, recorder.last_progress)
                    update = _sync(job, remote, recorder)
                    yield update
                    if update.status in ("succeeded", "failed", "cancelled"):
                        return
                    seen = update.fields.get("remote_state", seen)
                    if (seen, recorder.last_progress) != before:
                        wait_s = first_s  # something moved: look again soon
                sleep(wait_s)
                wait_s = min(wait_s * 2, max_s)
        except KeyboardInterrupt:
            recorder.event("detached", "stopped following; the tuning job goes on at Vertex AI")

    def refresh(self, job, recorder: Recorder, *, remote: bool = True) -> Update | None:
        """Poll once (`tunesmith jobs show`); with `remote` False the last polled state stands."""
        if not remote or not job.remote_name:
            return None
        return _sync(job, _get_remote(job), recorder)

    def cancel(self, job, recorder: Recorder) -> Update | None:
        """Ask Vertex AI to cancel the job; it reaches `cancelled` a little later, at a poll."""
        if not job.remote_name:  # it never got as far as Vertex AI
            return Update("cancelled", "cancelled")
        try:
            client = genai_client(job.spec["project"], job.spec["location"])
            client.tunings.cancel(name=job.remote_name)
        except Exception as exc:
            raise _translated(exc, f"cancelling {job.remote_name}") from None
        recorder.event("cancel", f"cancel requested at Vertex AI for {job.remote_name}")
        return self.refresh(job, recorder)


def _staged_events(plan: Estimate) -> list[tuple[str, str, dict | None]]:
    splits = ", ".join(f"{name} {s['examples']:,}" for name, s in plan.splits.items())
    events = [("export", f"exported {splits} examples to the Gemini format; valid for {plan.target}", None)]
    lines = plan.lines()
    events.append(("estimate", lines[0], plan.to_dict()))
    return events + [("estimate", line, None) for line in lines[1:]]


def _repoint_export_summary(data_dir: Path) -> None:
    """export.json names the files where they were written; they now live in the run folder."""
    path = data_dir / "export.json"
    summary = json.loads(path.read_text(encoding="utf-8"))
    for split, written in summary["splits"].items():
        written["file"] = str(data_dir / Path(written["file"]).name)
    atomic_write_text(path, json.dumps(summary, indent=2) + "\n")


def _create_remote(spec: VertexSpec, job_id: str, uploads: dict[str, str]):
    from google.genai import types

    config = types.CreateTuningJobConfig(
        method="SUPERVISED_FINE_TUNING",
        tuned_model_display_name=spec.tuned_model_display_name or f"tunesmith {job_id}",
        validation_dataset=types.TuningValidationDataset(gcs_uri=uploads["validation"]) if "validation" in uploads
        else None,
        epoch_count=int(spec.epochs),
        learning_rate_multiplier=spec.learning_rate_multiplier,
        adapter_size=ADAPTER_SIZES[spec.adapter_size] if spec.adapter_size else None,
        labels={**spec.labels, "tunesmith-job": job_id},
    )
    try:
        with warnings.catch_warnings():  # "The SDK's tuning implementation is experimental": not the user's concern
            warnings.simplefilter("ignore")
            client = genai_client(spec.project, spec.location)  # held: a dropped Client closes its connection
            return client.tunings.tune(
                base_model=spec.base_model, training_dataset=types.TuningDataset(gcs_uri=uploads["train"]),
                config=config)
    except Exception as exc:
        raise _translated(exc, f"creating the tuning job in {spec.project}/{spec.location}") from None


def _get_remote(job):
    try:
        client = genai_client(job.spec["project"], job.spec["location"])
        return client.tunings.get(name=job.remote_name)
    except Exception as exc:
        raise _translated(exc, f"polling {job.remote_name}") from None


def _translated(exc: Exception, doing: str) -> TunesmithError:
    error = cloud_error(exc, doing)
    if error is None:
        raise exc
    return error


# --- 6. mirror the remote state; register or fail at the end --------------------------------


def _sync(job, remote, recorder: Recorder) -> Update:
    """How the remote job stands, as an update for the job runner; at the end, the tuned model or the error."""
    state = remote.state.value if remote.state else "JOB_STATE_UNSPECIFIED"
    sub_state = remote.tuning_job_state.value if remote.tuning_job_state else None
    remote_state = state + (f"/{sub_state}" if sub_state else "")
    if remote_state != queries.get_job(job.id).remote_state:
        recorder.event("remote_state", describe_state(state, sub_state), {"state": state, "sub_state": sub_state})
    recorder.progress(_progress_row(remote))
    fields = {"remote_state": remote_state}
    status = STATUS_BY_STATE.get(state, job.status)
    if status == "succeeded":
        return _tuned(job, remote, fields, recorder)
    if status == "failed":
        error = remote.error
        message = (f"Vertex AI: {error.message} (code {error.code})" if error and error.message
                   else f"the tuning job ended in {state}")
        recorder.event("error", message)
        return Update("failed", "expired" if state == "JOB_STATE_EXPIRED" else "error", message, fields)
    if status == "cancelled":
        return Update("cancelled", "cancelled", fields=fields)
    return Update(status, fields=fields)


def describe_state(state: str, sub_state: str | None) -> str:
    """"JOB_STATE_RUNNING", "TUNING_JOB_STATE_WAITING_FOR_QUOTA" -> "running (waiting for quota)"."""
    text = state.removeprefix("JOB_STATE_").lower().replace("_", " ")
    if sub_state:
        text += f" ({sub_state.removeprefix('TUNING_JOB_STATE_').lower().replace('_', ' ')})"
    return text


def _progress_row(remote) -> dict | None:
    meta = remote.tuning_job_metadata
    if meta is None or meta.completed_epoch_count is None:
        return None
    stats = remote.tuning_data_stats.supervised_tuning_data_stats if remote.tuning_data_stats else None
    return {"step": meta.completed_step_count or 0, "epoch": meta.completed_epoch_count,
            "max_steps": stats.tuning_step_count if stats else None}


def _tuned(job, remote, fields: dict, recorder: Recorder) -> Update:
    tuned = remote.tuned_model
    if tuned is None or not tuned.endpoint:
        message = "Vertex AI says the job succeeded but returned no tuned model endpoint"
        recorder.event("error", message)
        return Update("failed", "error", message, fields)
    created = next((e.data for e in reversed(queries.job_events(job.id)) if e.kind == "created"), None) or {}
    stats = remote.tuning_data_stats.model_dump(mode="json", exclude_none=True) if remote.tuning_data_stats else None
    lineage = {
        "dataset_version": job.dataset_version, "remote_job": job.remote_name,
        "training_data_uri": created.get("training_data_uri"), "validation_data_uri": created.get("validation_data_uri"),
        "tuning_data_stats": stats, "estimate": created.get("estimate"), "experiment": remote.experiment,
        "checkpoints": [c.model_dump(mode="json", exclude_none=True) for c in tuned.checkpoints or []],
    }
    return Update("succeeded", "completed", fields=fields,
                  model=TrainedModel(remote_model=tuned.model, remote_endpoint=tuned.endpoint, lineage=lineage))
