"""The contamination guard: an evaluation on examples the model was trained on proves nothing.

A registered model knows its dataset version; the manifest of that prepared dataset (kept
in the store, or beside the training data) holds the content hash of every example of its
train and validation splits (validation chose the weights kept, so it counts). An
evaluation example whose content hash (data/seal.py) is among them overlaps."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..data.example import Example
from ..data.seal import HASH_CHARS
from ..errors import BadInputError
from ..store import queries

TRAINING_SPLITS = ("train", "validation")
SHOWN = 10  # overlapping examples named in the message


@dataclass(frozen=True)
class Overlap:
    example_id: str
    where: str
    split: str  # the training split it is in


def training_manifest(model) -> dict | None:
    """The manifest of the dataset a registered model was trained on, if it can be found."""

    if model.dataset_version:
        row = queries.get_dataset_version(model.dataset_version)
        if row is not None:
            return row.manifest
    folder = (model.lineage or {}).get("data")
    path = Path(folder) / "manifest.json" if folder else None
    if path is not None and path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    return None


def find_overlap(examples: list[Example], manifest: dict) -> list[Overlap]:
    splits = manifest.get("splits") or {}
    hashes = {h: name for name in TRAINING_SPLITS for h in (splits.get(name) or {}).get("content_hashes", [])}
    found = []
    for ex in examples:
        split = hashes.get(ex.content_hash()[:HASH_CHARS])
        if split is not None:
            found.append(Overlap(ex.id, ex.where, split))
    return found


def guard(examples: list[Example], model, allow: bool) -> list[Overlap]:
    """The examples `model` was trained on; BadInputError when there are any and `allow` is off."""
    manifest = training_manifest(model) if model is not None else None
    if manifest is None:
        return []
    found = find_overlap(examples, manifest)
    if found and not allow:
        named = ", ".join(f"{o.example_id} ({o.where}, in {o.split})" for o in found[:SHOWN])
        more = f" and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
        raise BadInputError(
            f"{len(found)} of {len(examples)} evaluation examples are in the training data of {model.id}: {named}{more}",
            "evaluate on the sealed test split (the default), or pass --allow-overlap to evaluate anyway",
        )
    return found
