"""What a monitor run compares: the subject (a registered model or a deployment name), its
reference (the training split it was tuned on) and its current traffic (logged requests in
the period, or a file).

A deployment is the name clients call, so its traffic is every logged request under that
name, whichever model answered it; its lineage is the model that answered most recently
(the one in production now). A registered model's traffic is every request that resolved
to it, by whatever name it was called."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ..data.dataset import load_dataset
from ..errors import BadInputError, TunesmithError
from ..store import deployments, queries, schema

_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str, what: str) -> timedelta:
    """'7d', '12h', '2w', '30m' -> a timedelta."""
    text = str(text).strip().lower()
    try:
        value, unit = float(text[:-1]), text[-1]
        if unit not in _UNITS or value <= 0:
            raise ValueError
    except (ValueError, IndexError):
        raise BadInputError(f"{what} {text!r} is not a duration", "write a number and a unit: 30m, 12h, 7d or 2w") from None
    return timedelta(seconds=value * _UNITS[unit])


@dataclass
class Subject:
    name: str  # as the user gave it
    model: schema.ModelVersion | None  # the registered model whose lineage gives the reference
    names: list[str]  # names clients call it by
    model_ids: list[str]  # registry ids whose requests count


@dataclass
class Traffic:
    times: list[datetime]
    inputs: list[str]
    outputs: list[str]
    model_ids: list[str | None] = field(default_factory=list)
    request_ids: list[str | None] = field(default_factory=list)  # what feedback names (None: from a file)


def find_subject(name: str) -> Subject:
    """A registered model (id, prefix or name), else a deployment: the name clients called."""
    try:
        model = queries.get_model(name)
    except TunesmithError:
        model = None
    if model is not None:
        return Subject(name, model, [name, *([model.name] if model.name else [])], [model.id])
    return Subject(name, None, [name], [])


def subject_lineage(subject: Subject, traffic: Traffic) -> schema.ModelVersion | None:
    """The model whose training data is the reference: the registered one, or for a
    deployment the model that answered its latest request."""
    if subject.model is not None:
        return subject.model
    for model_id in reversed(traffic.model_ids):
        if model_id:
            try:
                return queries.get_model(model_id)
            except TunesmithError:
                continue
    return None


def load_traffic(subject: Subject, since: datetime, until: datetime) -> Traffic:
    rows = queries.served_traffic(subject.names, subject.model_ids, since, until)
    traffic = Traffic([], [], [], [])
    for time, _, model_id, messages, output, request_id in rows:
        turns = (messages or {}).get("turns") or []
        text = "\n\n".join(t.get("text", "") for t in turns if t.get("role") == "user")
        if not text.strip():
            continue
        traffic.times.append(time)
        traffic.inputs.append(text)
        traffic.outputs.append(output or "")
        traffic.model_ids.append(model_id)
        traffic.request_ids.append(request_id)
    return traffic


def load_current_file(path: str | Path, now: datetime) -> Traffic:
    """Inputs and outputs from a file in any format tunesmith reads; an example's timestamp
    places it in a window (without one, it counts as seen now)."""
    dataset = load_dataset([path])
    traffic = Traffic([], [], [], [])
    for ex in dataset.examples:
        if not ex.input_text.strip():
            continue
        traffic.times.append(_timestamp(ex.timestamp, now, ex.where))
        traffic.inputs.append(ex.input_text)
        traffic.outputs.append(ex.output_text)
        traffic.model_ids.append(None)
        traffic.request_ids.append(None)
    if not traffic.inputs:
        raise BadInputError(f"{path}: no example with an input to monitor")
    return traffic


def _timestamp(text: str | None, now: datetime, where: str) -> datetime:
    if not text:
        return now - timedelta(microseconds=1)
    try:
        value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise BadInputError(f"{where}: timestamp {text!r} is not ISO 8601", "write e.g. 2026-12-01T09:30:00Z") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


@dataclass
class Reference:
    path: str
    inputs: list[str]
    outputs: list[str]
    prepared: bool  # a `data prepare` folder (plan can cost a re-tune on it)


def training_folder(model: schema.ModelVersion | None) -> Path | None:
    """Where the model's training data is on this machine, through its lineage, or None."""
    if model is None:
        return None
    candidates = []
    if model.dataset_version:
        row = queries.get_dataset_version(model.dataset_version)
        candidates.append(row.path if row else None)
    candidates.append((model.lineage or {}).get("data") or (model.spec or {}).get("data"))
    for folder in candidates:
        if folder and Path(folder).exists():
            return Path(folder)
    return None


def load_reference(path: str | Path | None, model: schema.ModelVersion | None, subject: str) -> Reference:
    """The training split of `path`, or of the data `model` was tuned on."""
    if path is None:
        path = training_folder(model)
        if path is None:
            who = f"model {model.id}" if model else f"{subject!r}"
            raise BadInputError(f"{who} has no lineage to training data on this machine, so there is nothing to "
                                "compare its traffic with",
                                "name the training data with --reference DATASET_DIR (a prepared folder or a file)")
    dataset = load_dataset([path])
    examples = dataset.split("train") if "train" in dataset.splits else dataset.examples
    examples = [ex for ex in examples if ex.input_text.strip()]
    if len(examples) < 10:
        raise BadInputError(f"{path}: {len(examples)} training inputs, too few to compare traffic with (10 at least)")
    return Reference(str(path), [ex.input_text for ex in examples], [ex.output_text for ex in examples],
                     dataset.prepared_dir is not None)


def feedback_labels(traffic: Traffic) -> tuple[list[int], list[str]] | None:
    """Fresh labels from feedback (`POST /v1/feedback` or `tunesmith rollout label`): the correct
    answers given for logged requests, with those requests' indices in `traffic`; None without any."""
    ids = [(i, r) for i, r in enumerate(traffic.request_ids) if r]
    given = deployments.feedback_for([r for _, r in ids])
    matched = [(i, given[r]["answer"]) for i, r in ids if given.get(r, {}).get("answer", "").strip()]
    if not matched:
        return None
    return [i for i, _ in matched], [answer for _, answer in matched]


def load_labels(path: str | Path, traffic: Traffic) -> tuple[list[int], list[str]]:
    """Fresh labels (inputs with their correct outputs, any format tunesmith reads) matched to
    the logged requests with the same input (the latest one): their indices in `traffic`, in
    the order they were served, and the correct outputs."""
    dataset = load_dataset([path])
    latest: dict[str, int] = {}
    for i, text in enumerate(traffic.inputs):
        latest[_key(text)] = i
    matched: list[tuple[int, str]] = []
    unknown = []
    for ex in dataset.examples:
        if not ex.output_text.strip():
            raise BadInputError(f"{ex.where}: a label without a correct output", "give each input its correct output")
        i = latest.get(_key(ex.input_text))
        if i is None:
            unknown.append(ex)
        else:
            matched.append((i, ex.output_text))
    if unknown:
        first = unknown[0]
        raise BadInputError(f"{len(unknown)} of {len(dataset.examples)} labels are for inputs with no logged request in "
                            f"the period (the first, {first.where}: {first.input_text[:60]!r})",
                            "label inputs the model answered in the period (--since), or widen the period")
    if not matched:
        raise BadInputError(f"{path}: no labels")
    matched.sort(key=lambda m: m[0])
    return [i for i, _ in matched], [o for _, o in matched]


def _key(text: str) -> str:
    return " ".join(text.split()).casefold()
