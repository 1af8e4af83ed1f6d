"""The registry's model versions from Python: find one, list them, move one between stages.

The rows live in the store (`store.queries`); these are the public API's names for them, and
importing this module does not load the store (see `tunesmith.lazy`)."""

from __future__ import annotations

from typing import Any

from ..store import queries


def get_model(ref: str) -> Any:
    """The model version with this id or name, or the only one whose id starts with `ref`
    (BadInputError otherwise). Its columns are attributes: `.id`, `.name`, `.base_model`, `.stage`,
    `.adapter_path`, `.metrics`, ... (`.to_dict()` for all of them)."""
    return queries.get_model(ref)


def list_models(limit: int = 50) -> list[Any]:
    """Model versions, newest first."""
    return queries.list_models(limit)


def set_model_stage(ref: str, stage: str) -> Any:
    """Move a model to `stage` (candidate, staging, production or archived). A second model of the same
    family in production is refused: the one there must leave first."""
    return queries.set_model_stage(ref, stage)
