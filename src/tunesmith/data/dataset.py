"""A dataset: the examples of one or more files, each file a split, read without loss.

Several files (or a prepared folder) are the splits of one dataset, named after the file
(train, validation, test; "val", "dev" and "eval" count as validation). A .json file holding
an object of named lists ({"train": [...], "val": [...]}, as CLINC150 ships) gives a split
for each list, named after its key."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BadInputError
from .example import Example
from .formats import READABLE_SUFFIXES, ReadResult, Unreadable, read_file
from .labels import assign_labels

SPLITS = ("train", "validation", "test")
_SPLIT_ALIASES = {"training": "train", "val": "validation", "valid": "validation", "dev": "validation", "eval": "validation"}
MANIFEST = "manifest.json"
TIMESTAMP_FIELDS = ("timestamp", "created_at", "created", "date", "time")


@dataclass
class Dataset:
    examples: list[Example]
    files: list[ReadResult]
    unreadable: list[Unreadable]
    label_source: str | None = None  # how labels were found, or None when there are none
    prepared_dir: Path | None = None  # set when read from a `tunesmith data prepare` folder
    manifest: dict | None = None
    splits: list[str] = field(default_factory=list)

    def split(self, name: str) -> list[Example]:
        return [ex for ex in self.examples if ex.split == name]


def split_name(path: str | Path) -> str:
    """A file's split, from its name ("val.jsonl": validation); also a list's, from its key."""
    stem = Path(path).name.split(".")[0].lower()
    return _SPLIT_ALIASES.get(stem, stem)


def expand_paths(paths: list[str | Path]) -> tuple[list[Path], Path | None]:
    """Files to read, in a stable order; a folder means its readable files (for a prepared
    folder: its splits, as its manifest lists them)."""
    files: list[Path] = []
    prepared = None
    for p in map(Path, paths):
        if p.is_dir():
            if (p / MANIFEST).is_file():
                prepared = p
                files += [p / f"{s}.jsonl" for s in SPLITS if (p / f"{s}.jsonl").is_file()]
            else:
                found = sorted(f for f in p.iterdir() if f.suffix.lower() in READABLE_SUFFIXES)
                if not found:
                    raise BadInputError(f"{p}: no data files here ({', '.join(READABLE_SUFFIXES)})")
                files += found
        elif p.exists():
            files.append(p)
        else:
            raise BadInputError(f"{p}: no such file or folder")
    if not files:
        raise BadInputError("no input files given")
    return files, prepared


def load_dataset(
    paths: list[str | Path],
    format: str | None = None,
    columns: dict[str, str] | None = None,
    label_field: str | None = None,
    timestamp_field: str | None = None,
) -> Dataset:
    files, prepared = expand_paths(paths)
    results = [read_file(f, format=format, columns=columns) for f in files]
    examples: list[Example] = []
    owners: list[tuple[str, str | None]] = []  # per example: its file, and its list in a JSON document of lists
    parts: dict[tuple[str, str | None], str] = {}  # each such part: its split name
    for result in results:
        if not result.examples:
            parts.setdefault((result.path, None), split_name(result.path))
        for ex in result.examples:
            part = (result.path, ex.split)  # the reader sets ex.split only for a record of a named list
            parts.setdefault(part, split_name(result.path if ex.split is None else ex.split))
            owners.append(part)
        examples += result.examples
    if len(set(parts.values())) < len(parts):  # two parts, one name (two files with the same stem): keep them apart
        parts = {(path, key): Path(path).name if key is None else f"{Path(path).name}:{key}" for path, key in parts}
    for ex, part in zip(examples, owners):
        ex.split = parts[part]
    names = list(parts.values())
    _make_ids_unique(examples)
    _assign_timestamps(examples, timestamp_field)
    label_source = assign_labels(examples, label_field)
    manifest = None
    if prepared is not None:
        try:
            manifest = json.loads((prepared / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise BadInputError(f"{prepared / MANIFEST}: cannot read the manifest ({exc})") from None
    return Dataset(
        examples=examples,
        files=results,
        unreadable=[u for r in results for u in r.unreadable],
        label_source=label_source,
        prepared_dir=prepared,
        manifest=manifest,
        splits=list(dict.fromkeys(names)),
    )


def _make_ids_unique(examples: list[Example]) -> None:
    """Exact duplicates share a content hash, and files can repeat their own ids; every
    example still needs its own id, so later copies become `<id>.2`, `<id>.3`, … in order."""
    seen: dict[str, int] = {}
    for ex in examples:
        n = seen.get(ex.id, 0) + 1
        seen[ex.id] = n
        if n > 1:
            ex.id = f"{ex.id}.{n}"


def _assign_timestamps(examples: list[Example], timestamp_field: str | None) -> None:
    keys = (timestamp_field,) if timestamp_field else TIMESTAMP_FIELDS
    for ex in examples:
        if ex.timestamp is None:
            value = next((ex.meta[k] for k in keys if ex.meta.get(k) is not None), None)
            ex.timestamp = None if value is None else str(value)
