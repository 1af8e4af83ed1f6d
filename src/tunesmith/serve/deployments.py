"""Deployments as a running server sees them: names callable as models, routed per request.

A background thread re-reads every deployment from the store every `refresh_s` seconds (so a
`rollout start`, `promote` or `rollback` reaches every replica within that time, without a
restart) and resolves its models once per reference. A request to a deployment's name gets a
`Route`: which model answers the caller (A/B: by the subject's sticky hash), and in shadow mode
which model answers a copy off the caller's path. With `auto` set on a rollout, the same thread
asks the gate every `auto_gate_s` seconds and acts on it (rollout/gate.py records why).
"""

from __future__ import annotations

import secrets
import sys
import threading
from dataclasses import dataclass
from typing import Any

from ..errors import TunesmithError
from ..rollout.deployments import assign_arm, mirrored
from ..rollout.gate import apply_gate
from ..store import deployments
from .models import ServedModel, resolve_model_name


@dataclass(frozen=True)
class LiveDeployment:
    name: str
    production: ServedModel
    candidate: ServedModel | None
    mode: str | None
    percent: float
    seed: str
    rollout_id: str | None
    auto: bool
    created_at: int


@dataclass(frozen=True)
class Route:
    deployment: str
    served: ServedModel  # answers the caller
    arm: str  # production or candidate
    rollout_id: str | None
    subject: str
    shadow: ServedModel | None = None  # answers a copy, off the caller's path

    def served_by(self) -> str:
        return self.served.model_id or self.served.name


class DeploymentRouter:
    def __init__(self, refresh_s: float = 2.0, auto_gate_s: float = 10.0):
        self.refresh_s = refresh_s
        self.auto_gate_s = auto_gate_s
        self._live: dict[str, LiveDeployment] = {}
        self._models: dict[str, ServedModel] = {}  # model reference -> how it is served (resolved once)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refresh_errors = 0
        self._reported: dict[str, str] = {}  # deployment -> the last resolving error printed

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="tunesmith-deployments", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def names(self) -> list[str]:
        return sorted(self._live)

    def get(self, name: str) -> LiveDeployment | None:
        return self._live.get(name)

    def refresh(self) -> None:
        """Read every deployment again; one whose models cannot be resolved keeps its last routes."""
        live = {}
        for row in deployments.list_deployments():
            try:
                live[row.name] = LiveDeployment(
                    name=row.name, production=self._model(row.production),
                    candidate=self._model(row.candidate) if row.status == "running" and row.candidate else None,
                    mode=row.mode if row.status == "running" else None, percent=row.percent,
                    seed=str(row.settings.get("seed", "")), rollout_id=row.rollout_id if row.status == "running" else None,
                    auto=bool(row.settings.get("auto")) and row.status == "running",
                    created_at=int(row.created_at.timestamp()))
            except TunesmithError as exc:
                self.refresh_errors += 1
                if self._reported.get(row.name) != exc.message:  # once per problem, not every refresh
                    print(f"deployment {row.name}: {exc.message}", file=sys.stderr)
                    self._reported[row.name] = exc.message
                if row.name in self._live:
                    live[row.name] = self._live[row.name]
        self._live = live  # one assignment: a request sees the old table or the new one

    def route(self, name: str, subject: str | None, request_id: str) -> Route | None:
        """How a request to `name` is served; None when `name` is no deployment."""
        live = self._live.get(name)
        if live is None:
            return None
        subject = subject or f"anonymous-{secrets.token_hex(8)}"
        if live.candidate is not None and live.mode == "ab":
            if assign_arm(live.seed, live.rollout_id or "", subject, live.percent) == "candidate":
                return Route(name, live.candidate, "candidate", live.rollout_id, subject)
        shadow = None
        if live.candidate is not None and live.mode == "shadow" and mirrored(live.seed, request_id, live.percent):
            shadow = live.candidate
        return Route(name, live.production, "production", live.rollout_id, subject, shadow)

    def model_entries(self) -> list[dict[str, Any]]:
        """/v1/models entries for the deployment names."""
        return [{"id": d.name, "object": "model", "created": d.created_at, "owned_by": "tunesmith-deployment"}
                for d in self._live.values()]

    def _model(self, ref: str) -> ServedModel:
        if ref not in self._models:
            self._models[ref] = resolve_model_name(ref)
        return self._models[ref]

    def _run(self) -> None:
        since_gate = 0.0
        while not self._stop.wait(self.refresh_s):
            try:
                since_gate += self.refresh_s
                if since_gate >= self.auto_gate_s:
                    since_gate = 0.0
                    self._auto_gate()
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - a database hiccup must not stop the routing
                self.refresh_errors += 1
                print(f"reading deployments failed: {exc}", file=sys.stderr)

    def _auto_gate(self) -> None:
        for live in list(self._live.values()):
            if not live.auto:
                continue
            try:
                result = apply_gate(live.name)
            except TunesmithError as exc:  # another replica decided first, or the registry refused
                print(f"deployment {live.name}: the gate could not act: {exc.message}", file=sys.stderr)
                continue
            if result.decision in ("promote", "rollback"):
                print(f"deployment {live.name}: {result.sentence}", file=sys.stderr)
