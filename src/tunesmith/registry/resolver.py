"""The one model resolver: what a model reference means, for evaluation, serving, export and
compare alike.

    a registry id, id prefix or alias   its merged weights, else its base + PEFT adapter, else
                                        its Vertex AI endpoint (a row normally has one of them)
    a catalog name                      the embedded base model (converted on first use)
    a folder                            a model saved there
    a Hugging Face id                   a model in the local Hugging Face cache (never downloaded)

Local weights come first because they cost nothing to call. A registered model whose weights
are not on this machine, or whose endpoint is not recorded, is refused with a hint, as is a
name that is none of the above."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.output_space import OUTPUT_SPACE_FILE, OutputSpace, dataset_output_space
from ..errors import BadInputError
from ..models.catalog import CATALOG
from ..models.loading import resolve_model
from ..store import queries


@dataclass(frozen=True)
class LocalWeights:
    """Weights on this machine: `base` is what to load (a base model or a merged model's folder),
    with the PEFT adapter at `adapter_path` on it when there is one."""

    base: str
    adapter_path: str | None = None


@dataclass(frozen=True)
class RemoteEndpoint:
    """A tuned model's Vertex AI endpoint: its resource name, and where the client calls it."""

    endpoint: str  # projects/P/locations/L/endpoints/N
    project: str | None = None  # None: GOOGLE_CLOUD_PROJECT
    location: str | None = None  # None: GOOGLE_CLOUD_LOCATION


@dataclass(frozen=True)
class ResolvedModel:
    ref: str  # as the caller named it
    target: LocalWeights | RemoteEndpoint
    version: Any = None  # the registry's ModelVersion, for a registered model

    @property
    def base_model(self) -> str:
        """The base it was tuned from (itself for a base model)."""
        return self.version.base_model if self.version is not None else self.ref

    @property
    def local(self) -> LocalWeights | None:
        return self.target if isinstance(self.target, LocalWeights) else None

    @property
    def remote(self) -> RemoteEndpoint | None:
        return self.target if isinstance(self.target, RemoteEndpoint) else None

    @property
    def output_space(self) -> OutputSpace | None:
        """What its answers may be: a registered model's learned output space; None for a base model."""
        return model_output_space(self.version) if self.version is not None else None


def resolve(ref: str) -> ResolvedModel:
    """What `ref` names: a registered model, else a base model. Raises BadInputError for neither."""
    try:
        version = queries.get_model(ref)
    except BadInputError:
        check_base_model(ref)
        return ResolvedModel(ref, LocalWeights(ref))
    return resolve_version(version, ref)


def resolve_version(version: Any, ref: str | None = None) -> ResolvedModel:
    """A registry row (a ModelVersion) resolved; `ref` as the caller named it (default: its id)."""
    return ResolvedModel(ref or version.id, registered_target(version), version)


def registered_target(version: Any) -> LocalWeights | RemoteEndpoint:
    """Where a registered model's answers come from: merged weights, else base + adapter, else
    its endpoint. Raises BadInputError when it has none of them on this machine."""
    for path, marker in ((version.merged_path, "config.json"), (version.adapter_path, "adapter_config.json")):
        if path and not (Path(path) / marker).is_file():
            raise BadInputError(f"model {version.id}: its weights are not on this machine ({path})",
                                "use it where it was trained, or copy the folder there")
    if version.merged_path:
        return LocalWeights(version.merged_path)
    if version.adapter_path:
        return LocalWeights(version.base_model, version.adapter_path)
    if version.remote_endpoint:
        spec = version.spec or {}
        return RemoteEndpoint(version.remote_endpoint, spec.get("project"), spec.get("location"))
    if version.remote_model:
        raise BadInputError(f"model {version.id} is tuned on Vertex AI but has no endpoint recorded",
                            "deploy it to an endpoint and register the endpoint's resource name")
    raise BadInputError(f"model {version.id} has no weights recorded", "train it again or register its weights")


def model_output_space(version: Any) -> OutputSpace | None:
    """A registered model's output space: its registry row, else output_space.json beside its
    weights, else its training data's (a model registered before output spaces were kept)."""
    if getattr(version, "output_space", None):
        return OutputSpace.from_dict(version.output_space)
    for folder in (version.merged_path, version.adapter_path):
        path = Path(folder) / OUTPUT_SPACE_FILE if folder else None
        if path is not None and path.is_file():
            return OutputSpace.from_dict(json.loads(path.read_text(encoding="utf-8")))
    data = (version.lineage or {}).get("data") or (version.spec or {}).get("data")
    if data and (Path(data) / "manifest.json").is_file():
        return dataset_output_space(data)
    return None


def check_base_model(source: str) -> None:
    """A catalog name, a model folder, or a Hugging Face id in the local cache; else bad input."""
    if source in CATALOG:
        return  # converted on first use
    resolved = resolve_model(source)  # BadInputError for a path that is not a model folder
    if isinstance(resolved, Path):
        return
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(resolved, "config.json"), str):
        raise BadInputError(
            f"unknown model {source!r}: not in the registry, not a folder, not a catalog model, "
            "not in the local Hugging Face cache",
            "`tunesmith models list` shows registered models; gemini:MODEL and openai:MODEL name remote ones",
        )
