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
    eval_interval: null            # steps between evaluations; null: about 4 per epoch
    checkpoint_interval: null      # steps between checkpoints; null: at every evaluation
    early_stopping: {patience: 3, min_delta: 0.0}   # patience 0 turns the watch off
    processes: 1                   # training processes (one per GPU); more than 1 runs under `accelerate launch`
    accelerate_config: null        # ddp | fsdp | deepspeed-zero2 | cpu (shipped, see docs/multi-gpu.md) or a YAML path;
                                   # null: ddp on GPUs, cpu without; setting it launches even with processes: 1
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import BadInputError

DEFAULT_LEARNING_RATE = {"lora": 2e-4, "qlora": 2e-4, "full": 2e-5}


class LoraSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rank: int = Field(16, ge=1, le=1024, description="LoRA rank r")
    alpha: float = Field(32, gt=0, description="scaling numerator: the update is scaled by alpha / rank")
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: str | list[str] = Field("all-linear", description='"all-linear" or module names, e.g. [q_proj, v_proj]')


class EarlyStoppingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patience: int = Field(3, ge=0, description="evaluations without improvement before stopping; 0 = off")
    min_delta: float = Field(0.0, ge=0, description="the smallest drop in validation loss that counts as improvement")


class TrainSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["local", "vertex"] = "local"
    base_model: str = "smollm2-135m-instruct"
    data: Path
    method: Literal["lora", "qlora", "full"] = "lora"
    lora: LoraSpec = LoraSpec()
    epochs: float = Field(3, gt=0, le=100)
    learning_rate: float | None = Field(None, gt=0, lt=1)
    batch_size: int = Field(8, ge=1, le=4096)
    gradient_accumulation: int = Field(1, ge=1, le=1024)
    max_seq_length: int = Field(1024, ge=16, le=1_048_576)
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimizer steps (overrides epochs)")
    seed: int = 0
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
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

    @field_validator("data")
    @classmethod
    def _data_is_prepared(cls, data: Path) -> Path:
        if not (data / "manifest.json").is_file():
            raise ValueError(f"{data} is not a prepared dataset (no manifest.json); make one with `tunesmith data prepare`")
        return data

    @field_validator("accelerate_config")
    @classmethod
    def _config_exists(cls, config: str | None) -> str | None:
        from .accelerate import resolve_config_name

        return resolve_config_name(config) if config is not None else None

    @model_validator(mode="after")
    def _checkpoints_fall_on_evaluations(self) -> "TrainSpec":
        # The best checkpoint is chosen by validation loss, so checkpoints must be taken where it is measured.
        if self.checkpoint_interval and self.eval_interval and self.checkpoint_interval % self.eval_interval:
            raise ValueError("checkpoint_interval must be a multiple of eval_interval (the best checkpoint is picked at evaluations)")
        return self

    @property
    def resolved_learning_rate(self) -> float:
        return self.learning_rate if self.learning_rate is not None else DEFAULT_LEARNING_RATE[self.method]

    def resolved(self) -> dict:
        """The spec as saved with the job: defaults filled in, paths as strings."""
        data = self.model_dump(mode="json")
        data["learning_rate"] = self.resolved_learning_rate
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
