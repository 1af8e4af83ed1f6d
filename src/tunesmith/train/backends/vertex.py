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
    6. on success register a model version with the tuned model and endpoint resource names,
       the service's tuning data statistics and the lineage; on failure keep its message.

Authentication is Application Default Credentials, resolved by google-auth; GOOGLE_CLOUD_PROJECT,
GOOGLE_CLOUD_LOCATION, GOOGLE_APPLICATION_CREDENTIALS, GOOGLE_VERTEX_BASE_URL and
STORAGE_EMULATOR_HOST work as the Google libraries document them."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import traceback
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ...errors import BadInputError, TunesmithError
from ...fileio import atomic_write_text
from ...plan.targets import load_target
from ...store import queries
from ..spec import VERTEX_DEFAULT_BASE_MODEL, VERTEX_METHOD, TrainSpec
from . import gcs
from ._google import cloud_error, is_transient

if TYPE_CHECKING:
    from ...data.example import Example

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

Display = Callable[[dict], None]


def genai_client(project: str | None = None, location: str | None = None):
    """The google-genai client this backend uses: Vertex mode with Application Default
    Credentials; project and location fall back to GOOGLE_CLOUD_PROJECT / GOOGLE_CLOUD_LOCATION,
    and GOOGLE_VERTEX_BASE_URL overrides the endpoint (the SDK reads it). Evaluation and serving
    call tuned endpoints through it: `genai_client(p, l).models.generate_content(model=endpoint, …)`."""
    from google import genai

    return genai.Client(vertexai=True, project=project, location=location)


def genai_contents(example: Example) -> list:
    """The example's prompt (its turns before the last model turn) as google-genai contents;
    its system instruction goes in the request's config (`system_instruction`), not here."""
    from google.genai import types

    from ...models.generate import prompt_messages

    return [types.Content(role="model" if m["role"] == "assistant" else "user", parts=[types.Part(text=m["content"])])
            for m in prompt_messages(example) if m["role"] != "system"]


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
    from ...data.export import export
    from ...data.tokens import counter_for

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


# --- 3-4. start: upload and create the tuning job -------------------------------------------


def start(spec: TrainSpec, detach: bool = False, display: Display | None = None,
          confirm: Callable[[Estimate], bool] | None = None):
    """Steps 1-6 for a vertex spec. Returns the job (None when `confirm` declined: then no job
    exists and nothing was uploaded). With `detach` it returns once the remote job exists;
    `tunesmith jobs show` polls it later."""
    from ..jobs import create_job, runs_dir

    show = display or (lambda row: None)
    runs_dir().mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=runs_dir()))
    try:
        plan = estimate(spec.data, spec.base_model, int(spec.epochs), out_dir=staging)
        staged = _staged_events(plan)
        for kind, message, _ in staged:
            show({"event": kind, "message": message})
        if confirm is not None and not confirm(plan):
            return None
        job = create_job(spec)
        data_dir = Path(job.run_dir) / DATA_DIR
        os.replace(staging, data_dir)
        _repoint_export_summary(data_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    recorder = _Recorder(job.id, job.run_dir, display)
    for kind, message, data in staged:
        recorder.event(kind, message, data, show=False)
    try:
        job = _launch(job, spec, plan, data_dir, recorder)
    except TunesmithError as exc:
        recorder.event("error", exc.message)
        return queries.update_job(job.id, status="failed", stop_reason="error", error=str(exc))
    except Exception as exc:  # a bug or a library failure: the traceback in the log, the sentence in the store
        recorder.event("error", traceback.format_exc())
        return queries.update_job(job.id, status="failed", stop_reason="error",
                                  error=f"{type(exc).__name__}: {exc} (traceback in {Path(job.run_dir) / 'train.log'})")
    if detach:
        return job
    return follow(job.id, display=display)


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


def _launch(job, spec: TrainSpec, plan: Estimate, data_dir: Path, recorder: "_Recorder"):
    uploads = {}
    for split, info in plan.splits.items():
        if info["examples"] == 0:  # no validation split: the job runs without validation metrics
            continue
        uploaded = gcs.upload(data_dir / info["file"], spec.bucket, split, project=spec.project)
        uploads[split] = uploaded.uri
        recorder.event("upload", f"{uploaded.uri}: " + (f"uploaded {uploaded.bytes:,} bytes" if uploaded.sent
                                                        else "already there with the same content, not sent again"))
    remote = _create_remote(spec, job.id, uploads)
    recorder.event("created", f"tuning job {remote.name}",
                   {"remote_job": remote.name, "training_data_uri": uploads["train"],
                    "validation_data_uri": uploads.get("validation"), "estimate": plan.to_dict()})
    job = queries.update_job(job.id, remote_name=remote.name)
    return _sync(job, remote, recorder)


def _create_remote(spec: TrainSpec, job_id: str, uploads: dict[str, str]):
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


# --- 5. follow, refresh, cancel -------------------------------------------------------------


def follow(job_id: str, display: Display | None = None, sleep: Callable[[float], None] = time.sleep):
    """Poll the remote job until it ends (Ctrl-C stops following; the job goes on). The wait
    starts at the spec's poll_interval_s and doubles while nothing changes, up to poll_max_interval_s."""
    job = queries.get_job(job_id)
    first_s, max_s = job.spec["poll_interval_s"], job.spec["poll_max_interval_s"]
    recorder = _Recorder(job.id, job.run_dir, display)
    client = genai_client(job.spec["project"], job.spec["location"])
    wait_s, failures = first_s, 0
    try:
        while job.status in ("queued", "running"):
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
                before = (job.remote_state, recorder.last_progress)
                job = _sync(job, remote, recorder)
                if job.status not in ("queued", "running"):
                    break
                if (job.remote_state, recorder.last_progress) != before:
                    wait_s = first_s  # something moved: look again soon
            sleep(wait_s)
            wait_s = min(wait_s * 2, max_s)
    except KeyboardInterrupt:
        recorder.event("detached", "stopped following; the tuning job goes on at Vertex AI")
    return queries.get_job(job.id)


def refresh(job):
    """Poll a vertex job once and record what changed (`tunesmith jobs show`)."""
    remote = _get_remote(job)
    return _sync(job, remote, _Recorder(job.id, job.run_dir, None))


def cancel(job):
    """Ask Vertex AI to cancel the job; it reaches `cancelled` a little later, at a poll."""
    if not job.remote_name:  # it never got as far as Vertex AI
        return queries.update_job(job.id, status="cancelled", stop_reason="cancelled")
    try:
        client = genai_client(job.spec["project"], job.spec["location"])
        client.tunings.cancel(name=job.remote_name)
    except Exception as exc:
        raise _translated(exc, f"cancelling {job.remote_name}") from None
    _Recorder(job.id, job.run_dir, None).event("cancel", f"cancel requested at Vertex AI for {job.remote_name}")
    return refresh(job)


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


def _sync(job, remote, recorder: "_Recorder"):
    """Record the remote job's state in the store; at the end, register the model or keep the error."""
    state = remote.state.value if remote.state else "JOB_STATE_UNSPECIFIED"
    sub_state = remote.tuning_job_state.value if remote.tuning_job_state else None
    remote_state = state + (f"/{sub_state}" if sub_state else "")
    if remote_state != job.remote_state:
        recorder.event("remote_state", describe_state(state, sub_state), {"state": state, "sub_state": sub_state})
    recorder.progress(_progress_row(remote))
    job = queries.get_job(job.id)  # another process (a `jobs show`) may have finished it meanwhile
    if job.status in ("succeeded", "failed", "cancelled"):
        return job
    status = STATUS_BY_STATE.get(state, job.status)
    if status == "succeeded":
        return _register(job, remote, remote_state, recorder)
    if status == "failed":
        error = remote.error
        message = (f"Vertex AI: {error.message} (code {error.code})" if error and error.message
                   else f"the tuning job ended in {state}")
        recorder.event("error", message)
        return queries.update_job(job.id, status="failed", remote_state=remote_state, error=message,
                                  stop_reason="expired" if state == "JOB_STATE_EXPIRED" else "error")
    if status == "cancelled":
        return queries.update_job(job.id, status="cancelled", stop_reason="cancelled", remote_state=remote_state)
    return queries.update_job(job.id, status=status, remote_state=remote_state)


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


def _register(job, remote, remote_state: str, recorder: "_Recorder"):
    tuned = remote.tuned_model
    if tuned is None or not tuned.endpoint:
        message = "Vertex AI says the job succeeded but returned no tuned model endpoint"
        recorder.event("error", message)
        return queries.update_job(job.id, status="failed", stop_reason="error", remote_state=remote_state,
                                  error=message)
    created = next((e.data for e in reversed(queries.job_events(job.id)) if e.kind == "created"), None) or {}
    stats = remote.tuning_data_stats.model_dump(mode="json", exclude_none=True) if remote.tuning_data_stats else None
    lineage = {
        "data": job.spec["data"], "dataset_version": job.dataset_version, "remote_job": job.remote_name,
        "training_data_uri": created.get("training_data_uri"), "validation_data_uri": created.get("validation_data_uri"),
        "tuning_data_stats": stats, "estimate": created.get("estimate"), "experiment": remote.experiment,
        "checkpoints": [c.model_dump(mode="json", exclude_none=True) for c in tuned.checkpoints or []],
    }
    fields = dict(base_model=job.spec["base_model"], method=VERTEX_METHOD, spec=job.spec, job_id=job.id,
                  remote_model=tuned.model, remote_endpoint=tuned.endpoint, dataset_version=job.dataset_version,
                  stop_reason="completed", lineage=lineage)
    try:
        model = queries.register_model(name=job.spec.get("name"), **fields)
    except BadInputError as exc:  # the alias was taken while the job ran: keep the model, without the alias
        recorder.event("warning", f"{exc.message}; registered without a name")
        model = queries.register_model(**fields)
    recorder.event("registered", f"registered model {model.id}: endpoint {tuned.endpoint}",
                   {"model_id": model.id, "remote_model": tuned.model, "remote_endpoint": tuned.endpoint})
    return queries.update_job(job.id, status="succeeded", stop_reason="completed", remote_state=remote_state)


@dataclass
class _Recorder:
    """Events go to the store, the job's log and the display; progress rows (completed epochs
    and steps, when they change) to the log and the display."""

    job_id: str
    run_dir: str
    display: Display | None
    last_progress: dict | None = field(default=None)

    def event(self, kind: str, message: str, data: dict | None = None, show: bool = True) -> None:
        from ..jobs import _file_logger

        queries.add_event(self.job_id, kind, message, data)
        _file_logger(Path(self.run_dir)).info("%s: %s", kind, message)
        if show and self.display:
            self.display({"event": kind, "message": message})

    def progress(self, row: dict | None) -> None:
        from ..jobs import _file_logger

        if row is None or row == self.last_progress:
            return
        self.last_progress = row
        total = f"/{row['max_steps']}" if row.get("max_steps") else ""
        _file_logger(Path(self.run_dir)).info("epoch %s, step %s%s", row["epoch"], row["step"], total)
        if self.display:
            self.display(row)

