"""`TrainSpec`: everything that shapes a training run, validated before any model loads.

A spec comes from a YAML file, CLI flags override its fields, and the fully resolved spec
is saved with the job (`spec.yaml` in the run folder and the job row), so every run can be
repeated exactly. Example (every knob with its default):

    backend: local                 # local (transformers + PEFT + TRL); vertex comes with the managed path
    base_model: smollm2-135m-instruct   # a catalog name, a local folder, or a Hugging Face id
    data: prepared/                # a folder made by `tunesmith data prepare`
    method: lora                   # lora | qlora (CUDA + bitsandbytes) | full
    lora: {rank: 16, alpha: 32, dropout: 0.05, target_modules: all-linear}
    epochs: 3                      # the guide: 2-5
    learning_rate: null            # null: 2e-4 for lora/qlora, 2e-5 for full
    batch_size: 8
    gradient_accumulation: 1
    max_seq_length: 1024           # longer examples are truncated (and counted)
    seed: 0
    precision: auto                # auto: bf16 where the hardware runs it fast, else fp32
    gradient_checkpointing: auto   # auto: on only where the run would not fit in memory without it; true | false
    eval_interval: null            # steps between evaluations; null: about 4 per epoch
    checkpoint_interval: null      # steps between checkpoints; null: at every evaluation
    early_stopping: {patience: 3, min_delta: 0.0}   # patience 0 turns the watch off
    processes: 1                   # training processes (one per GPU); more than 1 runs under `accelerate launch`
    accelerate_config: null        # ddp | fsdp | deepspeed-zero2 | cpu (shipped, see docs/multi-gpu.md) or a YAML path;
                                   # null: ddp on GPUs, cpu without; setting it launches even with processes: 1

The managed path (`backend: vertex`, docs/managed.md) takes the common fields (base_model,
data, epochs, name) and its own; the local-only knobs above are refused there, and the
vertex-only fields below are refused on a local spec, each by name:

    backend: vertex
    base_model: gemini-2.5-flash   # a Gemini model with a target file in plan/targets/vertex/
    method: vertex-sft             # Gemini supervised tuning (the only method there)
    project: my-project            # null: GOOGLE_CLOUD_PROJECT
    location: us-central1          # null: GOOGLE_CLOUD_LOCATION, else us-central1
    bucket: gs://my-bucket/tuning  # where the exported JSONL files are uploaded (by content hash)
    epochs: 3                      # a whole number; billed tokens = dataset tokens x epochs
    learning_rate_multiplier: null # null: the service's default (1.0)
    adapter_size: null             # 1 | 2 | 4 | 8 | 16 (the target's list); null: the service's default
    tuned_model_display_name: null # null: "tunesmith <job id>"
    labels: {}                     # Google Cloud labels on the tuning job
    poll_interval_s: 15            # first wait between status polls; doubles while nothing changes ...
    poll_max_interval_s: 300       # ... up to this
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import BadInputError

DEFAULT_LEARNING_RATE = {"lora": 2e-4, "qlora": 2e-4, "full": 2e-5}
VERTEX_METHOD = "vertex-sft"
VERTEX_DEFAULT_BASE_MODEL = "gemini-2.5-flash"
VERTEX_DEFAULT_LOCATION = "us-central1"
# Which fields belong to which backend; the rest (backend, base_model, data, method, epochs, name) are common.
LOCAL_ONLY_FIELDS = ("lora", "learning_rate", "batch_size", "gradient_accumulation", "max_seq_length", "max_steps",
                     "seed", "precision", "gradient_checkpointing", "eval_interval", "checkpoint_interval",
                     "early_stopping", "warmup_ratio", "weight_decay", "max_grad_norm", "processes", "accelerate_config")
VERTEX_ONLY_FIELDS = ("project", "location", "bucket", "learning_rate_multiplier", "adapter_size",
                      "tuned_model_display_name", "labels", "poll_interval_s", "poll_max_interval_s")
BUCKET_URI = re.compile(r"^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/.*)?$")  # bucket names: 3-222 characters
LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")  # Google Cloud's rules for label keys ...
LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")  # ... and values


class LoraSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rank: int = Field(16, ge=1, le=1024, description="LoRA rank r")
    alpha: float = Field(32, gt=0, description="scaling numerator: the update is scaled by alpha / rank")
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: str | list[str] = Field("all-linear", min_length=1, description='"all-linear" or module names, e.g. [q_proj, v_proj]')


class EarlyStoppingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patience: int = Field(3, ge=0, description="evaluations without improvement before stopping; 0 = off")
    min_delta: float = Field(0.0, ge=0, description="the smallest drop in validation loss that counts as improvement")


class TrainSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["local", "vertex"] = "local"
    base_model: str = "smollm2-135m-instruct"
    data: Path
    method: Literal["lora", "qlora", "full", "vertex-sft"] = "lora"
    lora: LoraSpec = LoraSpec()
    epochs: float = Field(3, gt=0, le=100)
    learning_rate: float | None = Field(None, gt=0, lt=1)
    batch_size: int = Field(8, ge=1, le=4096)
    gradient_accumulation: int = Field(1, ge=1, le=1024)
    max_seq_length: int = Field(1024, ge=16, le=1_048_576)
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimizer steps (overrides epochs)")
    seed: int = 0
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    gradient_checkpointing: Literal["auto"] | bool = Field(
        "auto", description="recompute activations in the backward pass: less memory, about a third more compute; "
                            "auto: on only where the plan's estimate does not fit this machine")
    eval_interval: int | None = Field(None, ge=1)
    checkpoint_interval: int | None = Field(None, ge=1)
    early_stopping: EarlyStoppingSpec = EarlyStoppingSpec()
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    name: str | None = Field(None, description="an alias for the registered model")
    # Several processes (docs/multi-gpu.md): the job runs under `accelerate launch`, one process per GPU.
    processes: int = Field(1, ge=1, le=1024, description="training processes, one per GPU; > 1 runs under accelerate launch")
    accelerate_config: str | None = Field(None, description="a shipped accelerate config (ddp, fsdp, deepspeed-zero2, "
                                                            "cpu) or the path of an accelerate YAML file")
    # The managed path (backend: vertex) only.
    project: str | None = Field(None, description="Google Cloud project; null: GOOGLE_CLOUD_PROJECT")
    location: str | None = Field(None, description="region of the tuning job; null: GOOGLE_CLOUD_LOCATION or us-central1")
    bucket: str | None = Field(None, description="gs://bucket/prefix where the training files are uploaded")
    learning_rate_multiplier: float | None = Field(None, gt=0, le=100)
    adapter_size: int | None = Field(None, description="LoRA adapter size on Vertex: 1, 2, 4, 8 or 16")
    tuned_model_display_name: str | None = Field(None, min_length=1, max_length=128)
    labels: dict[str, str] = {}
    poll_interval_s: float = Field(15.0, gt=0, description="first wait between status polls")
    poll_max_interval_s: float = Field(300.0, gt=0, description="the longest wait between status polls")

    @field_validator("data")
    @classmethod
    def _data_is_prepared(cls, data: Path) -> Path:
        if not (data / "manifest.json").is_file():
            raise ValueError(f"{data} is not a prepared dataset (no manifest.json); make one with `tunesmith data prepare`")
        return data

    @field_validator("gradient_checkpointing", mode="before")
    @classmethod
    def _auto_or_a_boolean(cls, value: object) -> object:
        words = {"auto": "auto", "true": True, "on": True, "yes": True, "false": False, "off": False, "no": False}
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in words:
            return words[value.strip().lower()]
        raise ValueError(f"must be auto, true or false (got {value!r})")

    @field_validator("bucket")
    @classmethod
    def _bucket_is_a_gcs_uri(cls, bucket: str | None) -> str | None:
        if bucket is not None and not BUCKET_URI.match(bucket):
            raise ValueError(f"{bucket!r} is not a Cloud Storage location; write gs://BUCKET or gs://BUCKET/PREFIX")
        return bucket.rstrip("/") if bucket else bucket

    @field_validator("accelerate_config")
    @classmethod
    def _config_exists(cls, config: str | None) -> str | None:
        from .accelerate import resolve_config_name

        return resolve_config_name(config) if config is not None else None

    @model_validator(mode="before")
    @classmethod
    def _vertex_defaults(cls, raw: object) -> object:
        """A vertex spec starts from Gemini, its one method, and the standard environment variables."""
        if not isinstance(raw, dict) or raw.get("backend") != "vertex":
            return raw
        raw = dict(raw)
        raw.setdefault("base_model", VERTEX_DEFAULT_BASE_MODEL)
        raw.setdefault("method", VERTEX_METHOD)
        if raw.get("project") is None and os.environ.get("GOOGLE_CLOUD_PROJECT"):
            raw["project"] = os.environ["GOOGLE_CLOUD_PROJECT"]
        if raw.get("location") is None:
            raw["location"] = os.environ.get("GOOGLE_CLOUD_LOCATION") or VERTEX_DEFAULT_LOCATION
        return raw

    @model_validator(mode="after")
    def _fields_fit_the_backend(self) -> "TrainSpec":
        if self.backend == "local":
            given = [f for f in VERTEX_ONLY_FIELDS if f in self.model_fields_set and getattr(self, f) not in (None, {})]
            if given:
                raise ValueError(f"{given[0]} applies only to backend: vertex (this spec has backend: local)")
            if self.method == VERTEX_METHOD:
                raise ValueError("method vertex-sft is the managed path's: set backend: vertex, or use lora, qlora or full")
            return self
        given = [f for f in LOCAL_ONLY_FIELDS if f in self.model_fields_set]
        if given:
            raise ValueError(f"{given[0]} applies only to backend: local; Vertex AI chooses it itself "
                             "(see docs/managed.md for the vertex fields)")
        if self.method != VERTEX_METHOD:
            raise ValueError(f"method {self.method} is a local method; backend: vertex tunes with vertex-sft")
        for field, hint in (("project", "or set GOOGLE_CLOUD_PROJECT"), ("bucket", "a gs://bucket/prefix")):
            if getattr(self, field) is None:
                raise ValueError(f"{field} is required for backend: vertex ({hint})")
        target = self.vertex_target()
        if self.adapter_size is not None and self.adapter_size not in target.adapter_sizes:
            raise ValueError(f"adapter_size {self.adapter_size} is not offered for {self.base_model} "
                             f"(choose one of {', '.join(map(str, target.adapter_sizes))})")
        if not float(self.epochs).is_integer():
            raise ValueError(f"epochs must be a whole number for backend: vertex (got {self.epochs})")
        bad_label = next((k for k, v in self.labels.items() if not LABEL_KEY.match(k) or not LABEL_VALUE.match(v)), None)
        if bad_label is not None:
            raise ValueError(f"labels: {bad_label!r} breaks Google Cloud's label rules (lowercase letters, digits, "
                             "_ and -; keys start with a letter; at most 63 characters)")
        return self

    @model_validator(mode="after")
    def _checkpoints_fall_on_evaluations(self) -> "TrainSpec":
        # The best checkpoint is chosen by validation loss, so checkpoints must be taken where it is measured.
        if self.checkpoint_interval and self.eval_interval and self.checkpoint_interval % self.eval_interval:
            raise ValueError("checkpoint_interval must be a multiple of eval_interval (the best checkpoint is picked at evaluations)")
        return self

    def vertex_target(self):
        """The limits and price of the Gemini model this vertex spec tunes (plan/targets/vertex/)."""
        from ..plan.targets import load_target, target_names

        name = f"vertex/{self.base_model}"
        if name not in target_names():
            known = ", ".join(n.split("/", 1)[1] for n in target_names() if n.startswith("vertex/"))
            raise ValueError(f"base_model {self.base_model} has no Vertex tuning target (known: {known}; "
                             "a new model is a new file in plan/targets/vertex/)")
        return load_target(name)

    @property
    def resolved_learning_rate(self) -> float:
        return self.learning_rate if self.learning_rate is not None else DEFAULT_LEARNING_RATE[self.method]

    def resolved(self) -> dict:
        """The spec as saved with the job: defaults filled in, paths as strings, and only the
        fields of its backend."""
        other_backend = VERTEX_ONLY_FIELDS if self.backend == "local" else LOCAL_ONLY_FIELDS
        data = self.model_dump(mode="json", exclude=set(other_backend))
        if self.backend == "local":
            data["learning_rate"] = self.resolved_learning_rate
        else:
            data["epochs"] = int(self.epochs)
        return data


def load_spec(path: str | Path | None = None, **overrides) -> TrainSpec:
    """A spec from a YAML file (optional) with flag overrides (None means "not given")."""
    raw: dict = {}
    if path is not None:
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise BadInputError(f"{path}: cannot read the spec ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise BadInputError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(raw, dict):
            raise BadInputError(f"{path}: a spec is a mapping of fields, e.g. `data: prepared/`")
    for key, value in overrides.items():
        if value is None:
            continue
        if "." in key:  # "lora.rank" -> raw["lora"]["rank"]
            outer, inner = key.split(".", 1)
            raw.setdefault(outer, {})[inner] = value
        else:
            raw[key] = value
    try:
        return TrainSpec(**raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'spec'}: {error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors()
        )
        where = f"{path}: " if path else ""
        raise BadInputError(f"{where}{problems}", "see `tunesmith train --help` for every field and its default") from None
