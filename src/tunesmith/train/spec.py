"""`TrainSpec`: everything that shapes a training run, validated before any model loads.

A spec is one of two models, told apart by `backend` (a discriminated union): `LocalSpec`
(transformers + PEFT + TRL on this machine) and `VertexSpec` (Gemini tuning on Vertex AI),
each with only its own fields. The CLI's flags are generated from these fields and their
descriptions (cli/train.py), so a new field is a new flag with its help.

A spec comes from a YAML file, CLI flags override its fields, and the fully resolved spec
is saved with the job (`spec.yaml` in the run folder and the job row), so every run can be
repeated exactly. Example (every knob with its default):

    backend: local                 # local (transformers + PEFT + TRL); vertex comes with the managed path
    base_model: smollm2-135m-instruct   # a catalog name, a local folder, or a Hugging Face id
    data: prepared/                # a folder made by `tunesmith data prepare`
    method: lora                   # lora | qlora (CUDA + bitsandbytes) | full
    lora: {rank: 16, alpha: 32, dropout: 0.05, target_modules: all-linear}
    epochs: 3                      # the guide: 2-5
    learning_rate: null            # null: 2e-4 for lora/qlora (5e-4 for class labels), 2e-5 for full
    batch_size: 8
    gradient_accumulation: 1
    max_seq_length: 1024           # longer examples are truncated (and counted)
    seed: 0
    group_by_length: false         # true: batches of like length, faster but a higher validation loss
    precision: auto                # auto: bf16 where the hardware runs it fast, else fp32
    gradient_checkpointing: auto   # auto: on only where the run would not fit in memory without it; true | false
    eval_interval: null            # steps between evaluations; null: about 4 per epoch
    checkpoint_interval: null      # steps between checkpoints; null: at every evaluation
    early_stopping: {patience: 3, min_delta: 0.0}   # patience 0 turns the watch off
    select_by: loss                # loss | accuracy (exact label / template fields, measured by answering)
    accuracy_examples: 64          # validation examples answered at each evaluation (data with an output space)
    processes: 1                   # training processes (one per GPU); more than 1 runs under `accelerate launch`
    accelerate_config: null        # ddp | fsdp | deepspeed-zero2 | cpu (shipped, see docs/multi-gpu.md) or a YAML path;
                                   # null: ddp on GPUs, cpu without; setting it launches even with processes: 1

The managed path (`backend: vertex`, docs/managed.md) takes the common fields (base_model,
data, epochs, name) and its own; the local-only knobs above are refused there, and the
vertex-only fields below are refused on a local spec, each by name:

    backend: vertex
    base_model: gemini-2.5-flash   # a Gemini model with a target file in targets/vertex/
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
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..data.output_space import dataset_output_space
from ..errors import BadInputError, TunesmithError
from ..lazy import yaml
from ..targets import Target, load_target, target_names
from .accelerate import resolve_config_name

DEFAULT_LEARNING_RATE = {"lora": 2e-4, "qlora": 2e-4, "full": 2e-5}
# On data whose outputs are class labels (Banking77 10-shot, 4 epochs, docs/output-spaces.md):
# LoRA reached 72.3% of test labels at 5e-4 against 57.0% at 2e-4; full fine-tuning 77.8% at 1e-4
# against 71.6% at 5e-5 and 67.3% at 2e-4.
LABELS_LEARNING_RATE = {"lora": 5e-4, "qlora": 5e-4, "full": 1e-4}
VERTEX_METHOD = "vertex-sft"
VERTEX_DEFAULT_BASE_MODEL = "gemini-2.5-flash"
VERTEX_DEFAULT_LOCATION = "us-central1"
BUCKET_URI = re.compile(r"^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/.*)?$")  # bucket names: 3-222 characters
LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")  # Google Cloud's rules for label keys ...
LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")  # ... and values


class LoraSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rank: int = Field(16, ge=1, le=1024, description="LoRA rank r")
    alpha: float = Field(32, gt=0, description="scaling numerator: the update is scaled by alpha / rank")
    dropout: float = Field(0.05, ge=0, lt=1, description="dropout on the adapter's input")
    target_modules: str | list[str] = Field("all-linear", min_length=1,
                                            description="all-linear, or module names, e.g. q_proj,v_proj")


class EarlyStoppingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patience: int = Field(3, ge=0, description="evaluations without improvement before stopping; 0 = off")
    min_delta: float = Field(0.0, ge=0, description="the smallest drop in validation loss that counts as improvement")


class _CommonSpec(BaseModel):
    """The fields both backends have."""

    model_config = ConfigDict(extra="forbid")

    data: Path = Field(description="a prepared dataset folder (`tunesmith data prepare`)")
    name: str | None = Field(None, description="an alias for the registered model")

    @field_validator("data")
    @classmethod
    def _data_is_prepared(cls, data: Path) -> Path:
        if not (data / "manifest.json").is_file():
            raise ValueError(f"{data} is not a prepared dataset (no manifest.json); make one with `tunesmith data prepare`")
        return data

    @model_validator(mode="before")
    @classmethod
    def _no_fields_of_the_other_backend(cls, raw: Any) -> Any:
        """A field of the other backend is named as such, not as an unknown field."""
        if not isinstance(raw, dict):
            return raw
        own = "local" if cls is LocalSpec else "vertex"
        other = VertexSpec if cls is LocalSpec else LocalSpec
        foreign = [k for k in raw if k not in cls.model_fields and k in other.model_fields
                   and raw[k] not in (None, {})]
        if foreign and own == "local":
            raise ValueError(f"{foreign[0]} applies only to backend: vertex (this spec has backend: local)")
        if foreign:
            raise ValueError(f"{foreign[0]} applies only to backend: local; Vertex AI chooses it itself "
                             "(see docs/managed.md for the vertex fields)")
        return raw


class LocalSpec(_CommonSpec):
    """Supervised fine-tuning on this machine with transformers + PEFT + TRL."""

    backend: Literal["local"] = Field("local", description="local (transformers + PEFT + TRL here) | vertex (Gemini "
                                                           "tuning on Vertex AI, docs/managed.md)")
    base_model: str = Field("smollm2-135m-instruct", description="a catalog name, a local folder or a Hugging Face id")
    method: Literal["lora", "qlora", "full"] = Field("lora", description="lora | qlora (CUDA + bitsandbytes) | full")
    lora: LoraSpec = LoraSpec()
    epochs: float = Field(3, gt=0, le=100, description="passes over the train split (the guide: 2-5)")
    learning_rate: float | None = Field(None, gt=0, lt=1, description="peak learning rate; unset: 2e-4 for "
                                                                      "lora/qlora (5e-4 when the outputs are "
                                                                      "class labels), 2e-5 for full")
    batch_size: int = Field(8, ge=1, le=4096, description="examples per step on each process")
    gradient_accumulation: int = Field(1, ge=1, le=1024, description="steps per optimizer update")
    max_seq_length: int = Field(1024, ge=16, le=1_048_576, description="tokens per example; longer ones are "
                                                                       "truncated (and counted)")
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimizer steps (overrides epochs)")
    seed: int = Field(0, description="for the adapter's initial weights, dropout and the data order")
    group_by_length: bool = Field(False, description="batches of examples of like length: less padding, so faster, "
                                                     "but a higher validation loss (docs/training.md)")
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="auto: bf16 where the hardware runs it fast, else fp32 (fp16 on older GPUs)")
    gradient_checkpointing: Literal["auto"] | bool = Field(
        "auto", description="recompute activations in the backward pass: less memory, about a third more compute; "
                            "auto: on only where the plan's estimate does not fit this machine")
    eval_interval: int | None = Field(None, ge=1, description="steps between evaluations; unset: about 4 per epoch")
    checkpoint_interval: int | None = Field(None, ge=1, description="steps between checkpoints; unset: at every "
                                                                    "evaluation")
    early_stopping: EarlyStoppingSpec = EarlyStoppingSpec()
    select_by: Literal["loss", "accuracy"] = Field(
        "loss", description="what picks the best checkpoint and drives the overfitting watch: validation loss, or "
                            "accuracy (exact label / template fields; needs data with an output space)")
    accuracy_examples: int = Field(64, ge=0, description="validation examples answered at each evaluation to measure "
                                                          "accuracy, where the data has an output space; 0: off")
    warmup_ratio: float = Field(0.03, ge=0, lt=1, description="share of the steps the learning rate warms up over")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    max_grad_norm: float = Field(1.0, gt=0, description="gradient clipping norm")
    # Several processes (docs/multi-gpu.md): the job runs under `accelerate launch`, one process per GPU.
    processes: int = Field(1, ge=1, le=1024, description="training processes, one per GPU; more than 1 runs under "
                                                         "`accelerate launch`")
    accelerate_config: str | None = Field(None, description="ddp | fsdp | deepspeed-zero2 | cpu (shipped, "
                                                            "docs/multi-gpu.md) or an accelerate YAML path; unset: "
                                                            "ddp with GPUs, cpu without")

    @model_validator(mode="before")
    @classmethod
    def _a_local_method(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and raw.get("method") == VERTEX_METHOD:
            raise ValueError("method vertex-sft is the managed path's: set backend: vertex, or use lora, qlora or full")
        return raw

    @field_validator("gradient_checkpointing", mode="before")
    @classmethod
    def _auto_or_a_boolean(cls, value: object) -> object:
        words = {"auto": "auto", "true": True, "on": True, "yes": True, "false": False, "off": False, "no": False}
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in words:
            return words[value.strip().lower()]
        raise ValueError(f"must be auto, true or false (got {value!r})")

    @field_validator("accelerate_config")
    @classmethod
    def _config_exists(cls, config: str | None) -> str | None:
        return resolve_config_name(config) if config is not None else None

    @model_validator(mode="after")
    def _checkpoints_fall_on_evaluations(self) -> "LocalSpec":
        # The best checkpoint is chosen by validation loss, so checkpoints must be taken where it is measured.
        if self.checkpoint_interval and self.eval_interval and self.checkpoint_interval % self.eval_interval:
            raise ValueError("checkpoint_interval must be a multiple of eval_interval (the best checkpoint is picked at evaluations)")
        return self

    @property
    def resolved_learning_rate(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        if _outputs_are_labels(self.data):
            return LABELS_LEARNING_RATE[self.method]
        return DEFAULT_LEARNING_RATE[self.method]

    @property
    def launches(self) -> bool:
        """Whether the job runs under `accelerate launch` (several processes, or a config named)."""
        return self.processes > 1 or self.accelerate_config is not None

    def resolved(self) -> dict:
        """The spec as saved with the job: defaults filled in, paths as strings."""
        return {**self.model_dump(mode="json"), "learning_rate": self.resolved_learning_rate}


def _outputs_are_labels(data: Path) -> bool:
    try:
        space = dataset_output_space(data)
    except (TunesmithError, OSError, ValueError):  # the data's own errors are reported where it is read
        return False
    return space is not None and space.kind == "labels"


class VertexSpec(_CommonSpec):
    """Gemini supervised tuning on Vertex AI (docs/managed.md)."""

    backend: Literal["vertex"] = Field(description="vertex: Gemini supervised tuning on Vertex AI")
    base_model: str = Field(VERTEX_DEFAULT_BASE_MODEL, description="a Gemini model with a target file in "
                                                                   "targets/vertex/")
    method: Literal["vertex-sft"] = Field(VERTEX_METHOD, description="Gemini supervised tuning (the only method there)")
    epochs: float = Field(3, gt=0, le=100, description="a whole number; billed tokens = dataset tokens x epochs")
    project: str | None = Field(None, description="Google Cloud project; unset: GOOGLE_CLOUD_PROJECT")
    location: str | None = Field(None, description="region of the tuning job; unset: GOOGLE_CLOUD_LOCATION, else "
                                                   "us-central1")
    bucket: str | None = Field(None, description="gs://bucket/prefix where the training files are uploaded")
    learning_rate_multiplier: float | None = Field(None, gt=0, le=100, description="unset: the service's (1.0)")
    adapter_size: int | None = Field(None, description="LoRA adapter size on Vertex: 1, 2, 4, 8 or 16; unset: the "
                                                       "service's")
    tuned_model_display_name: str | None = Field(None, min_length=1, max_length=128,
                                                 description="unset: tunesmith JOB-ID")
    labels: dict[str, str] = Field({}, description="Google Cloud labels on the tuning job")
    poll_interval_s: float = Field(15.0, gt=0, description="first wait between status polls; doubles while nothing "
                                                           "changes")
    poll_max_interval_s: float = Field(300.0, gt=0, description="the longest wait between status polls")

    @model_validator(mode="before")
    @classmethod
    def _vertex_defaults(cls, raw: Any) -> Any:
        """A vertex spec starts from the standard environment variables; a local method is named as such."""
        if not isinstance(raw, dict):
            return raw
        raw = dict(raw)
        if raw.get("method") not in (None, VERTEX_METHOD):
            raise ValueError(f"method {raw['method']} is a local method; backend: vertex tunes with vertex-sft")
        if raw.get("project") is None and os.environ.get("GOOGLE_CLOUD_PROJECT"):
            raw["project"] = os.environ["GOOGLE_CLOUD_PROJECT"]
        if raw.get("location") is None:
            raw["location"] = os.environ.get("GOOGLE_CLOUD_LOCATION") or VERTEX_DEFAULT_LOCATION
        return raw

    @field_validator("bucket")
    @classmethod
    def _bucket_is_a_gcs_uri(cls, bucket: str | None) -> str | None:
        if bucket is not None and not BUCKET_URI.match(bucket):
            raise ValueError(f"{bucket!r} is not a Cloud Storage location; write gs://BUCKET or gs://BUCKET/PREFIX")
        return bucket.rstrip("/") if bucket else bucket

    @model_validator(mode="after")
    def _fits_vertex(self) -> "VertexSpec":
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

    def vertex_target(self) -> Target:
        """The limits and price of the Gemini model this spec tunes (targets/vertex/)."""
        name = f"vertex/{self.base_model}"
        if name not in target_names():
            known = ", ".join(n.split("/", 1)[1] for n in target_names() if n.startswith("vertex/"))
            raise ValueError(f"base_model {self.base_model} has no Vertex tuning target (known: {known}; "
                             "a new model is a new file in targets/vertex/)")
        return load_target(name)

    def resolved(self) -> dict:
        """The spec as saved with the job: defaults filled in, paths as strings."""
        return {**self.model_dump(mode="json"), "epochs": int(self.epochs)}


# A spec is one or the other, told apart by `backend`.
TrainSpec = Annotated[Union[LocalSpec, VertexSpec], Field(discriminator="backend")]
SPEC_CLASSES: dict[str, type[LocalSpec] | type[VertexSpec]] = {"local": LocalSpec, "vertex": VertexSpec}


def parse_spec(raw: dict) -> LocalSpec | VertexSpec:
    """The spec a mapping of fields describes (`backend` defaults to local). pydantic's
    ValidationError for bad fields; `load_spec` turns it into sentences."""
    backend = raw.get("backend", "local")
    if backend not in SPEC_CLASSES:
        raise BadInputError(f"backend: {backend!r} is not a backend", f"choose one of {', '.join(SPEC_CLASSES)}")
    return SPEC_CLASSES[backend](**raw)


def load_spec(path: str | Path | None = None, **overrides) -> LocalSpec | VertexSpec:
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
        return parse_spec(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'spec'}: {error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors()
        )
        where = f"{path}: " if path else ""
        raise BadInputError(f"{where}{problems}", "see `tunesmith train --help` for every field and its default") from None
