"""The request log: every request the server answers or refuses becomes a `served_requests`
row, and logged traffic becomes the next dataset (`tunesmith data from-log`).

Rows are written by one background thread in small transactions, so a request never
waits for the database. With `log_text=False` (`--no-log`) only the model, status,
latency and token counts are kept, never the conversation."""

from __future__ import annotations

import queue
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ..data.example import MODEL, Example, Turn
from ..errors import BadInputError

_STOP = object()
_WRITE_BATCH = 256  # rows per transaction at most


class RequestLog:
    def __init__(self, log_text: bool = True):
        self.log_text = log_text
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.write_errors = 0  # rows that could not be written (the server keeps serving)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tunesmith-request-log", daemon=True)
        self._thread.start()

    def record(self, *, api: str, model: str, status_code: int, latency_s: float, model_id: str | None = None,
               route: str | None = None, prompt_tokens: int | None = None, completion_tokens: int | None = None,
               system: str | None = None, turns: list[Turn] | None = None, output: str | None = None,
               error: str | None = None, request_id: str | None = None, deployment: str | None = None,
               rollout_id: str | None = None, subject: str | None = None, pair_id: str | None = None) -> None:
        row = dict(api=api, model=model, model_id=model_id, route=route, status_code=status_code,
                   latency_s=latency_s, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, error=error,
                   request_id=request_id, deployment=deployment, rollout_id=rollout_id, subject=subject, pair_id=pair_id)
        if self.log_text:
            row.update(system_text=system, output_text=output,
                       input_messages=None if turns is None else {"turns": [{"role": t.role, "text": t.text} for t in turns]})
        self._queue.put(row)

    def flush(self) -> None:
        """Wait until every row recorded so far is in the database."""
        self._queue.join()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        from ..store.queries import add_served_requests

        while True:
            rows, stopping = [self._queue.get()], False
            while len(rows) < _WRITE_BATCH:
                try:
                    rows.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if _STOP in rows:
                rows.remove(_STOP)
                stopping = True
            try:
                if rows:
                    add_served_requests(rows)
            except Exception:  # noqa: BLE001 - a full disk must not take the server down
                self.write_errors += len(rows)
            finally:
                for _ in range(len(rows) + stopping):
                    self._queue.task_done()
            if stopping:
                return


# --- Logged traffic -> a dataset ----------------------------------------------------


@dataclass
class FromLogSummary:
    requests: int  # logged requests that matched the filters
    written: int  # examples in the file
    skipped: dict[str, int]  # reason -> count; requests = written + sum(skipped)
    path: str


def parse_since(text: str) -> datetime:
    """An ISO date or time (UTC when no zone is given), or an age: 30m, 12h, 7d."""
    age = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([mhd])\s*", text)
    if age:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[age.group(2)]
        return datetime.now(timezone.utc) - timedelta(**{unit: float(age.group(1))})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadInputError(f"--since {text!r} is neither a date nor an age", "e.g. 2026-11-30, 2026-11-30T12:00, 12h or 7d") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def dataset_from_log(out: str | Path, format: str = "tunesmith", model: str | None = None,
                     since: datetime | None = None) -> FromLogSummary:
    """Write logged conversations and the answers the model gave as a dataset file.

    Each request becomes one example: its system instruction and turns, then the served
    answer as the model turn, timestamped, with the request's id, model and API in `meta`.
    Requests logged without text (--no-log) or that failed are counted, not written."""
    from ..data.formats import write_file
    from ..store.queries import list_served_requests

    examples: list[Example] = []
    skipped: dict[str, int] = {}
    requests = list_served_requests(model=model, since=since)
    for request in requests:
        reason = _unusable(request)
        if reason:
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        turns = [Turn(t["role"], t["text"]) for t in request.input_messages["turns"]]
        examples.append(Example(
            turns=[*turns, Turn(MODEL, request.output_text)], system=request.system_text,
            timestamp=request.time.isoformat(),
            meta={"served_request": request.id, "model": request.model_id or request.model, "api": request.api},
        ))
    write_file(examples, out, format, include_meta=format != "tunesmith")
    return FromLogSummary(len(requests), len(examples), skipped, str(out))


def _unusable(request: Any) -> str | None:
    if request.status_code != 200:
        return "failed or refused"
    if request.input_messages is None or request.output_text is None:
        return "logged without text (--no-log)"
    if not request.output_text.strip():
        return "empty answer"
    return None
