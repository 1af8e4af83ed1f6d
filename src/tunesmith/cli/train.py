"""`tunesmith train`: tune a model from a spec. Every spec field is also a flag: the flags are
generated from the spec models' fields and their descriptions (train/spec.py), so the help
shows each field's own default and a new field is a new flag."""

from __future__ import annotations

import inspect
import types
import typing
from pathlib import Path
from typing import Any, Optional

import typer
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from ..errors import BadInputError
from ..train.spec import LocalSpec, VertexSpec, load_spec

# Nested spec models become flags with a prefix: lora.rank -> --lora-rank, early_stopping.patience -> --patience.
NESTED_PREFIX = {"lora": "lora_", "early_stopping": ""}
FLAG_TYPES = {int: int, float: float, Path: Path}


class SpecFlag(typing.NamedTuple):
    param: str  # the command's parameter
    key: str  # the spec field it sets (lora.rank)
    type: Any
    help: str
    metavar: str | None  # what help shows for the value (None: typer's <int>, <str>, ...)


def _spec_flags() -> list[SpecFlag]:
    """A flag for every field of both spec models; a field only one backend has says which."""
    flags, seen = [], set()
    for spec_class, other in ((LocalSpec, VertexSpec), (VertexSpec, LocalSpec)):
        for name, field in spec_class.model_fields.items():
            if name in seen:
                continue
            seen.add(name)
            only = "vertex: " if spec_class is VertexSpec and name not in other.model_fields else ""
            nested = field.annotation if inspect.isclass(field.annotation) and issubclass(field.annotation,
                                                                                           BaseModel) else None
            if nested is None:
                help_text = only + (field.description or "") + _default_text(name, field)
                both = [cls.model_fields[name].annotation for cls in (LocalSpec, VertexSpec) if name in cls.model_fields]
                flags.append(SpecFlag(name, name, _flag_type(name, field.annotation), help_text, _metavar(*both)))
                continue
            for sub, sub_field in nested.model_fields.items():
                flags.append(SpecFlag(NESTED_PREFIX[name] + sub, f"{name}.{sub}", _flag_type(sub, sub_field.annotation),
                                      (sub_field.description or "") + f" (default: {sub_field.get_default()})",
                                      _metavar(sub_field.annotation)))
    return flags


def _metavar(*annotations: Any) -> str | None:
    """The words a field of choices takes, in either backend's spec (lora|qlora|full|vertex-sft;
    true|false for a yes-or-no field, whose flag takes the word as the spec file does); None
    for the rest."""
    words: list[str] = []
    for annotation in annotations:
        union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
        for kind in typing.get_args(annotation) if union else (annotation,):
            if kind is bool:
                words += ["true", "false"]
            elif typing.get_origin(kind) is typing.Literal:
                words += [str(choice) for choice in typing.get_args(kind)]
            elif kind is not type(None):
                return None
    return "|".join(dict.fromkeys(words)) or None


def _default_text(name: str, field) -> str:
    """The default as help shows it, from the fields themselves; each backend's where they differ."""
    shown = {}
    for backend, cls in (("local", LocalSpec), ("vertex", VertexSpec)):
        default = cls.model_fields[name].get_default() if name in cls.model_fields else None
        if default not in (None, {}, PydanticUndefined) and not isinstance(default, BaseModel):
            shown[backend] = default
    if len(set(map(str, shown.values()))) > 1:
        return " (default: " + "; ".join(f"{value} for {backend}" for backend, value in shown.items()) + ")"
    return f" (default: {next(iter(shown.values()))})" if shown else ""


def _flag_type(name: str, annotation: Any) -> Any:
    """Numbers and paths as such; text for the rest (choices and unions are checked by the spec).
    labels: a repeatable KEY=VALUE."""
    if name == "labels":
        return Optional[list[str]]
    kinds = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
    return Optional[FLAG_TYPES.get(kinds[0], str)] if len(kinds) == 1 else Optional[str]


def train(spec_file: Optional[Path], yes: bool, detach: bool, **flags: Any) -> None:
    """Tune a model on a prepared dataset and register the result."""
    from ..train.display import TrainingDisplay
    from ..train.jobs import start_job
    from .plan import print_preflight

    overrides = {flag.key: flags[flag.param] for flag in _spec_flags()}
    overrides["labels"] = _labels(overrides["labels"])
    overrides["lora.target_modules"] = _target_modules(overrides["lora.target_modules"])
    spec = load_spec(spec_file, **overrides)
    if spec.backend == "vertex":
        _train_at_vertex(spec, detach, yes)
        return
    print_preflight(spec)  # the plan's memory estimate for this run, and a warning when it will not fit
    if detach:
        job = start_job(spec, detach=True)
        print(f"started job {job.id} in the background (pid {job.pid})")
        print(f"follow it: tunesmith jobs logs {job.id} --follow")
        return
    with TrainingDisplay() as display:
        job = start_job(spec, display=display)
    report_end(job)


def _command_signature() -> inspect.Signature:
    parameters = [inspect.Parameter("spec_file", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Optional[Path],
                                    default=typer.Argument(None, help="a YAML spec; flags override its fields"))]
    for flag in _spec_flags():
        option = (typer.Option(None, "--label", help=flag.help + " (KEY=VALUE, repeatable)") if flag.param == "labels"
                  else typer.Option(None, help=flag.help, metavar=flag.metavar))
        parameters.append(inspect.Parameter(flag.param, inspect.Parameter.KEYWORD_ONLY, annotation=flag.type,
                                            default=option))
    parameters += [
        inspect.Parameter("yes", inspect.Parameter.KEYWORD_ONLY, annotation=bool, default=typer.Option(
            False, "--yes", "-y", help="vertex: start without asking to confirm the estimated cost")),
        inspect.Parameter("detach", inspect.Parameter.KEYWORD_ONLY, annotation=bool, default=typer.Option(
            False, help="run in the background; follow with `tunesmith jobs logs ID --follow` (vertex: return once "
                        "the remote job exists)")),
    ]
    return inspect.Signature(parameters)


def train_command(spec_file: Optional[Path] = None, **kwargs: Any) -> None:
    train(spec_file, kwargs.pop("yes"), kwargs.pop("detach"), **kwargs)


train_command.__signature__ = _command_signature()
train_command.__doc__ = train.__doc__


def _target_modules(flag: str | None) -> str | list[str] | None:
    """--lora-target-modules: all-linear, or names separated by commas."""
    if flag is None:
        return None
    names = [name.strip() for name in flag.split(",") if name.strip()]
    return "all-linear" if names == ["all-linear"] else names


def _train_at_vertex(spec, detach: bool, yes: bool) -> None:
    """The managed path: each step prints as it happens; the cost estimate asks before uploading."""
    from ..train.display import RemoteDisplay
    from ..train.jobs import start_job

    def confirm(estimate) -> bool:
        return yes or typer.confirm(f"upload the data and start tuning (about ${estimate.cost_usd:,.2f})?")

    job = start_job(spec, detach=detach, display=RemoteDisplay(), confirm=confirm)
    if job is None:
        print("not started; nothing was uploaded")
        raise typer.Exit(1)
    if job.status in ("queued", "running"):
        print(f"job {job.id} runs at Vertex AI as {job.remote_name}")
        print(f"check on it: tunesmith jobs show {job.id}   cancel it: tunesmith jobs cancel {job.id}")
        return
    report_end(job)


def _labels(pairs: list[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    bad = next((p for p in pairs if "=" not in p), None)
    if bad is not None:
        raise BadInputError(f"--label {bad!r} is not KEY=VALUE", "for example --label team=support")
    return dict(p.split("=", 1) for p in pairs)


def report_end(job) -> None:
    """What a finished job left: the model id and where its metrics are, or why it failed."""
    from ..store.queries import job_events

    print(f"job {job.id}: {job.status} ({job.stop_reason})")
    if job.status == "succeeded":
        registered = [e for e in job_events(job.id) if e.kind == "registered"]
        if registered:
            print(f"model {registered[-1].data['model_id']} registered (stage candidate)")
            if job.backend == "vertex":
                print(f"endpoint: {registered[-1].data['remote_endpoint']}")
        if job.backend == "local":
            print(f"metrics: {Path(job.run_dir) / 'metrics.jsonl'}")
        return
    if job.error:
        print(f"error: {job.error}")
    raise typer.Exit(1)
