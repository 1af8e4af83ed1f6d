"""Stand-ins for Google Cloud, so the managed path runs through the real `google-genai` and
`google-cloud-storage` clients with nothing leaving the machine.

- `FakeVertex`: a small HTTP service that speaks the `tuningJobs` REST resource (create, get,
  list, cancel) the way Vertex AI does, with states that advance on each `get`, a `tunedModel`
  on success and the service's error on failure; and `/token`, the OAuth token endpoint of a
  test service account, which checks the signed assertion and hands out a bearer token.
- `service_account_file`: a service-account JSON with a fresh RSA key whose `token_uri` is the
  fake's `/token`, for GOOGLE_APPLICATION_CREDENTIALS.
- `storage_emulator`: gcp-storage-emulator on a free loopback port, for STORAGE_EMULATOR_HOST.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

JOBS_PATH = re.compile(r"^/(v1|v1beta1)/projects/([^/]+)/locations/([^/]+)/tuningJobs(?:/(\d+))?(:cancel)?$")
TUNABLE = ("gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.5-pro")

# What a job goes through, one step per `get` (state, sub-state, completed epochs).
SUCCESS_SCRIPT = [
    ("JOB_STATE_PENDING", "TUNING_JOB_STATE_WAITING_FOR_QUOTA", None),
    ("JOB_STATE_RUNNING", "TUNING_JOB_STATE_PROCESSING_DATASET", None),
    ("JOB_STATE_RUNNING", "TUNING_JOB_STATE_TUNING", 1),
    ("JOB_STATE_RUNNING", "TUNING_JOB_STATE_TUNING", 2),
    ("JOB_STATE_RUNNING", "TUNING_JOB_STATE_POST_PROCESSING", 3),
    ("JOB_STATE_SUCCEEDED", None, 3),
]
FAILURE_SCRIPT = [
    ("JOB_STATE_PENDING", "TUNING_JOB_STATE_WAITING_FOR_QUOTA", None),
    ("JOB_STATE_RUNNING", "TUNING_JOB_STATE_PROCESSING_DATASET", None),
    ("JOB_STATE_FAILED", None, None),
]
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # google-auth signs for it whatever the token_uri
FAILURE_MESSAGE = "Dataset validation failed: 3 examples exceed the maximum number of tokens per example."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeVertex:
    """Records every request (`requests`), keeps the jobs it created (`jobs`), and follows
    `script` for each new job; set `script = FAILURE_SCRIPT` for a job that fails,
    `create_error = (code, status, message)` to refuse the next creation, and
    `fail_next_gets = n` to answer the next n polls with 503."""

    def __init__(self):
        self.token = "ya29.fake-" + secrets.token_hex(16)  # what /token hands out; tests look for it in the store
        self.public_key_pem: bytes | None = None  # the test service account's key, to check assertions
        self.requests: list[dict] = []
        self.jobs: dict[str, dict] = {}
        self.script = SUCCESS_SCRIPT
        self.create_error: tuple[int, str, str] | None = None
        self.fail_next_gets = 0
        self._steps: dict[str, int] = {}
        self._scripts: dict[str, list] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeVertex":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def created_bodies(self) -> list[dict]:
        return [r["body"] for r in self.requests if r["method"] == "POST" and r["path"].endswith("/tuningJobs")]

    # --- the REST resource ---

    def handle(self, method: str, path: str, headers: dict, raw: bytes) -> tuple[int, dict]:
        if path == "/token":
            return self._issue_token(raw)
        body = json.loads(raw) if raw else None
        with self._lock:
            self.requests.append({"method": method, "path": path, "body": body,
                                  "authorization": headers.get("Authorization")})
        if headers.get("Authorization") != f"Bearer {self.token}":
            return _error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        match = JOBS_PATH.match(path.split("?", 1)[0])
        if not match:
            return _error(404, "NOT_FOUND", f"The requested URL {path} was not found on this server.")
        _, project, location, job_id, cancel = match.groups()
        with self._lock:
            if method == "POST" and job_id is None:
                if self.create_error:
                    refusal, self.create_error = self.create_error, None
                    return _error(*refusal)
                return self._create(project, location, body or {})
            if method == "GET" and self.fail_next_gets:
                self.fail_next_gets -= 1
                return _error(503, "UNAVAILABLE", "The service is currently unavailable.")
            if method == "GET" and job_id is None:
                return 200, {"tuningJobs": list(self.jobs.values())}
            name = f"projects/{project}/locations/{location}/tuningJobs/{job_id}"
            if name not in self.jobs:
                return _error(404, "NOT_FOUND", f"TuningJob {name} does not exist.")
            if method == "POST" and cancel:
                self.jobs[name].update(state="JOB_STATE_CANCELLING")
                return 200, {}
            if method == "GET":
                return 200, self._advance(name)
        return _error(405, "METHOD_NOT_ALLOWED", f"{method} {path}")

    def _create(self, project: str, location: str, body: dict) -> tuple[int, dict]:
        if body.get("baseModel") not in TUNABLE:
            return _error(400, "INVALID_ARGUMENT", f"Base model {body.get('baseModel')} is not supported for tuning.")
        if not str(body.get("supervisedTuningSpec", {}).get("trainingDatasetUri", "")).startswith("gs://"):
            return _error(400, "INVALID_ARGUMENT", "supervisedTuningSpec.trainingDatasetUri must be a gs:// URI.")
        name = f"projects/{project}/locations/{location}/tuningJobs/{4000 + len(self.jobs)}"
        self.jobs[name] = {**body, "name": name, "state": "JOB_STATE_QUEUED", "createTime": "2026-12-01T10:00:00Z"}
        self._steps[name] = 0
        self._scripts[name] = self.script
        return 200, self.jobs[name]

    def _advance(self, name: str) -> dict:
        job = self.jobs[name]
        if job["state"] == "JOB_STATE_CANCELLING":
            job.update(state="JOB_STATE_CANCELLED", endTime="2026-12-01T10:05:00Z")
        if job["state"] in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"):
            return job
        script = self._scripts[name]
        state, sub_state, epochs = script[min(self._steps[name], len(script) - 1)]
        self._steps[name] += 1
        job["state"] = state
        job.pop("tuningJobState", None)
        if sub_state:
            job["tuningJobState"] = sub_state
        if epochs is not None:
            job["tuningJobMetadata"] = {"completedEpochCount": epochs, "completedStepCount": epochs * 10}
        if state == "JOB_STATE_RUNNING" and sub_state != "TUNING_JOB_STATE_PROCESSING_DATASET":
            job["tuningDataStats"] = {"supervisedTuningDataStats": _data_stats()}
        if state == "JOB_STATE_SUCCEEDED":
            project_path = name.split("/tuningJobs/")[0]
            job.update(endTime="2026-12-01T11:00:00Z", tunedModel={
                "model": f"{project_path}/models/7001@1", "endpoint": f"{project_path}/endpoints/8001",
                "checkpoints": [{"checkpointId": "3", "epoch": "3", "step": "30",
                                 "endpoint": f"{project_path}/endpoints/8001"}]})
        if state == "JOB_STATE_FAILED":
            job.update(endTime="2026-12-01T10:10:00Z", error={"code": 3, "message": FAILURE_MESSAGE})
        return job

    # --- the service account's token endpoint ---

    def _issue_token(self, raw: bytes) -> tuple[int, dict]:
        import google.auth.jwt

        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        try:  # the assertion is signed with the service account's key, for Google's token audience
            claims = google.auth.jwt.decode(form["assertion"], certs=self.public_key_pem, verify=True,
                                            audience=GOOGLE_TOKEN_AUDIENCE)
        except (KeyError, ValueError) as exc:
            return 400, {"error": "invalid_grant", "error_description": str(exc)}
        if "cloud-platform" not in claims.get("scope", ""):
            return 400, {"error": "invalid_scope", "error_description": "cloud-platform scope expected"}
        return 200, {"access_token": self.token, "expires_in": 3600, "token_type": "Bearer"}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, payload = fake.handle(method, self.path, dict(self.headers), raw)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802 (http.server's names)
                self._serve("GET")

            def do_POST(self):  # noqa: N802
                self._serve("POST")

            def log_message(self, *args):  # quiet
                pass

        return Handler


def _error(code: int, status: str, message: str) -> tuple[int, dict]:
    return code, {"error": {"code": code, "message": message, "status": status}}


def _data_stats() -> dict:
    distribution = {"sum": "9000", "billableSum": "9000", "min": 20, "max": 180, "mean": 75.0, "median": 70.0,
                    "p5": 30, "p95": 150}
    return {"tuningDatasetExampleCount": "84", "totalBillableTokenCount": "27000", "tuningStepCount": "30",
            "totalTuningCharacterCount": "36000", "userInputTokenDistribution": distribution,
            "userOutputTokenDistribution": distribution}


def service_account_file(folder: Path, fake: FakeVertex, project: str) -> Path:
    """A service-account key file whose token_uri is the fake's /token (a fresh RSA key each time)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    fake.public_key_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    path = folder / "service-account.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": project, "private_key_id": secrets.token_hex(20),
        "private_key": private_pem, "client_email": f"tuner@{project}.iam.gserviceaccount.com",
        "client_id": "1234567890", "token_uri": f"{fake.url}/token",
    }))
    return path


@contextlib.contextmanager
def storage_emulator(bucket: str):
    """gcp-storage-emulator in memory on a free port, with `bucket` created; yields its URL."""
    from gcp_storage_emulator.server import create_server

    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=bucket)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
