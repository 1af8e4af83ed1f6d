"""Tuning targets: the limits, tokenizer and price of one model on one service, as data.

Each target is a YAML file beside this module, `targets/<kind>/<model>.yaml`, named `<kind>/<model>`
(for example `vertex/gemini-2.5-flash`), so supporting a new model is adding a file."""

from __future__ import annotations

from functools import cache
from importlib import resources

from pydantic import BaseModel, ConfigDict

from ..errors import BadInputError
from ..lazy import yaml

DEFAULT_TARGET = "local/smollm2-135m-instruct"


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: str  # "vertex" | "local"
    base_model: str
    format: str  # the data format the service trains from
    tokenizer: str  # "estimate" or a base-model catalog name
    max_tokens_per_example: int
    max_train_examples: int | None = None
    max_validation_examples: int | None = None
    max_file_bytes: int | None = None
    min_examples: int = 100
    recommended_examples: int = 1000
    adapter_sizes: list[int] = []
    price_per_million_training_tokens_usd: float = 0.0
    price_as_of: str | None = None
    price_source: str | None = None


def _root():
    return resources.files("tunesmith.targets")


def target_names() -> list[str]:
    names = []
    for kind_dir in _root().iterdir():
        if kind_dir.is_dir():
            names += [f"{kind_dir.name}/{f.name[:-5]}" for f in kind_dir.iterdir() if f.name.endswith(".yaml")]
    return sorted(names)


@cache
def load_target(name: str = DEFAULT_TARGET) -> Target:
    if "/" not in name:  # "gemini-2.5-flash" is enough when only one kind has it
        matches = [n for n in target_names() if n.split("/", 1)[1] == name]
        name = matches[0] if len(matches) == 1 else name
    kind, _, model = name.partition("/")
    path = _root() / kind / f"{model}.yaml"
    if not model or not path.is_file():
        raise BadInputError(f"unknown tuning target {name!r}", f"choose one of {', '.join(target_names())}")
    return Target(**yaml.safe_load(path.read_text(encoding="utf-8")))
