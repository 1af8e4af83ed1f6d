"""What every backend shares: the updates it gives the job runner, the model a finished run
leaves, and the Protocol a backend implements (train/backends/__init__.py says more)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from ..recorder import Display, Recorder


@dataclass
class TrainedModel:
    """What a finished run leaves to register: weights here, or a model served remotely."""

    adapter_path: str | None = None  # a PEFT adapter folder (lora, qlora)
    merged_path: str | None = None  # full weights (full fine-tuning)
    remote_model: str | None = None  # the managed path's tuned model resource
    remote_endpoint: str | None = None  # where the managed model is served
    final_metrics: dict = field(default_factory=dict)
    best_metrics: dict = field(default_factory=dict)
    lineage: dict = field(default_factory=dict)  # anything else worth keeping about where it came from


@dataclass
class Update:
    """How a job stands now. `status` is one of the store's job statuses; when it equals the
    job's, only `fields` (pid, remote_name, remote_state) change. A succeeded update carries the
    model to register."""

    status: str
    stop_reason: str | None = None
    error: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    model: TrainedModel | None = None


class Backend(Protocol):
    runs_remotely: bool  # the job runs elsewhere, and any process may follow it (polling)

    def check(self, spec: Any, display: Display | None, confirm: Callable | None) -> bool:
        """Before a job exists: raise for what cannot run, or return False when the user declines."""

    def start(self, job: Any, spec: Any, recorder: Recorder, *, resume: bool, detach: bool) -> Iterator[Update]:
        """Start (or resume) the job: run it here, hand it to a background process, or submit it."""

    def follow(self, job: Any, spec: Any, recorder: Recorder, *, resume: bool) -> Iterator[Update]:
        """Until the started job ends: train it here, or watch it elsewhere."""

    def refresh(self, job: Any, recorder: Recorder, *, remote: bool) -> Update | None:
        """One look at a job that has not ended (None: nothing new)."""

    def cancel(self, job: Any, recorder: Recorder) -> Update | None:
        """Stop it; None when the job records its own end."""
