"""`tunesmith data prepare`: from raw files to a sealed dataset version.

Reads the inputs, applies the fixes the user opted into (each recorded with the ids it
touched), splits into train / validation / test (grouped and stratified, seeded), writes
the splits as canonical JSONL, everything removed to `quarantine.jsonl` with the reason,
and `manifest.json` with hashes that seal every split. Nothing is lost:
records in = train + validation + test + quarantine - oversampled copies."""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .. import __version__
from ..errors import BadInputError
from ..fileio import atomic_write_text, sha256_file, sha256_text
from .checks.format_drift import dominant_signature, parse_template, template_from_signature
from .checks.pii import redact_pii
from .checks.staleness import age_days, parse_timestamp
from .dataset import MANIFEST, SPLITS, Dataset, load_dataset
from .example import MODEL, USER, Example, Turn, full_input
from .formats import canonical
from .label_shape import LabelDrift, find_label_drift
from .output_space import learn_output_space
from .near_duplicates import normalize_text
from .seal import split_seal
from .split import assign_splits

QUARANTINE = "quarantine.jsonl"


class PrepareOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    validation: float = Field(0.15, ge=0, lt=1, description="share of examples for validation (the guide: 10-20%)")
    test: float = Field(0.10, ge=0, lt=1, description="share of examples for the sealed test split")
    seed: int = 0
    dedupe: bool = Field(False, description="keep one copy of exact duplicates")
    drop_conflicts: bool = Field(False, description="quarantine every example whose input has conflicting outputs")
    enforce_template: bool = Field(False, description="quarantine outputs off the template (--template, else the dominant one); "
                                   "in a classification set, outputs off the label shape")
    label_drift: Literal["map", "quarantine"] = Field(
        "map", description="with enforce_template, an output off the label shape that names a class: rewrite it as "
                           "that label (the original is kept in the manifest) or quarantine it")
    template: str | None = None
    oversample: bool = Field(False, description="repeat minority-class examples in train up to the median class size")
    max_age_days: float | None = Field(None, gt=0, description="quarantine examples older than this")
    redact_pii: bool = Field(False, description="replace emails, phone and card numbers with [EMAIL], [PHONE], [CARD]")
    format: str | None = None
    columns: dict[str, str] | None = None
    label_field: str | None = None
    timestamp_field: str | None = None

    @model_validator(mode="after")
    def _shares_leave_training_data(self) -> "PrepareOptions":
        if self.validation + self.test >= 1:
            raise ValueError("validation + test must leave some examples for training (their sum is >= 1)")
        return self


@dataclass
class PrepareResult:
    out_dir: Path
    manifest: dict

    @property
    def counts(self) -> dict:
        return self.manifest["counts"]


class _Ledger:
    """What the fixes did: quarantined examples with reasons, and ids touched per fix."""

    def __init__(self) -> None:
        self.quarantine: list[dict] = []
        self.touched: dict[str, list[str]] = defaultdict(list)
        self.changes: dict[str, list[dict]] = defaultdict(list)  # what a fix rewrote: id, from, to

    def remove(self, fix: str, example: Example, reason: str) -> None:
        self.quarantine.append({"fix": fix, "reason": reason, "example": canonical.to_record(example)})
        self.touched[fix].append(example.id)

    def keep_changed(self, fix: str, example: Example) -> None:
        self.touched[fix].append(example.id)

    def rewrite(self, fix: str, example: Example, before: str, after: str) -> None:
        self.touched[fix].append(example.id)
        self.changes[fix].append({"id": example.id, "where": example.where, "from": before, "to": after})


def prepare(paths: list[str | Path], out_dir: str | Path, options: PrepareOptions | None = None,
            force: bool = False, now: datetime | None = None) -> PrepareResult:
    options = options or PrepareOptions()
    out_dir = Path(out_dir)
    _refuse_to_clobber(out_dir, force)
    dataset = load_dataset(paths, options.format, options.columns, options.label_field, options.timestamp_field)
    ledger = _Ledger()
    for u in dataset.unreadable:
        ledger.quarantine.append({"fix": "unreadable", "reason": u.reason, "file": u.file, "line": u.line, **raw_record(u.raw)})

    examples = dataset.examples
    if options.redact_pii:
        _redact(examples, ledger)
    examples = _drop_bad_structure(examples, ledger)
    if options.max_age_days is not None:
        examples = _drop_stale(examples, options.max_age_days, now or datetime.now(timezone.utc), ledger)
    if options.enforce_template:
        examples = _drop_off_template(examples, options.template, options.label_drift, ledger)
    if options.drop_conflicts:
        examples = _drop_conflicts(examples, ledger)
    if options.dedupe:
        examples = _drop_duplicates(examples, ledger)

    names = assign_splits(examples, options.validation, options.test, options.seed)
    splits = {s: [ex for ex, n in zip(examples, names) if n == s] for s in SPLITS}
    if options.oversample:
        splits["train"] = _oversample(splits["train"], ledger)
    manifest = _write(out_dir, dataset, splits, ledger, options, force)
    return PrepareResult(out_dir, manifest)


def raw_record(raw: str) -> dict:
    """A line as read, for the quarantine. Text that is valid Unicode is kept as it is; a line
    holding bytes that are not UTF-8 (read as surrogate escapes) keeps its original bytes
    losslessly in `raw_base64`, beside a readable preview with U+FFFD for each bad byte."""
    try:
        raw.encode("utf-8")
        return {"raw": raw}
    except UnicodeEncodeError:
        try:
            original = raw.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # not from a file's bytes: a lone surrogate code point, kept as such
            original = raw.encode("utf-8", "surrogatepass")
        return {"raw": original.decode("utf-8", "replace"), "raw_base64": base64.b64encode(original).decode("ascii")}


def _refuse_to_clobber(out_dir: Path, force: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise BadInputError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        what = "a prepared dataset" if (out_dir / MANIFEST).exists() else "files"
        raise BadInputError(f"{out_dir} already holds {what}", "choose a new --out folder, or pass --force to replace it")


def _redact(examples: list[Example], ledger: _Ledger) -> None:
    for ex in examples:
        changed = False
        turns = []
        for t in ex.turns:
            text, counts = redact_pii(t.text)
            changed |= bool(counts)
            turns.append(Turn(t.role, text))
        system = ex.system
        if system:
            system, counts = redact_pii(system)
            changed |= bool(counts)
        if changed:
            ex.turns, ex.system = turns, system
            ledger.keep_changed("redact-pii", ex)


def structure_problem(ex: Example) -> str | None:
    """Why an example cannot be trained on as it is, or None."""
    roles = [t.role for t in ex.turns]
    if not any(r == MODEL for r in roles):
        return "no model turn"
    unknown = sorted({r for r in roles if r not in (USER, MODEL)})
    if unknown:
        return f"unknown role(s) {', '.join(unknown)}"
    if any(r == roles[i - 1] for i, r in enumerate(roles) if i) or roles[0] != USER:
        return "roles do not alternate user/model starting with user"
    if any(not t.text.strip() for t in ex.turns):
        return "a turn has empty text"
    return None


def _drop_bad_structure(examples: list[Example], ledger: _Ledger) -> list[Example]:
    kept = []
    for ex in examples:
        problem = structure_problem(ex)
        if problem:
            ledger.remove("bad-structure", ex, problem)
        else:
            kept.append(ex)
    return kept


def _drop_stale(examples: list[Example], max_age_days: float, now: datetime, ledger: _Ledger) -> list[Example]:
    kept = []
    for ex in examples:
        ts = parse_timestamp(ex.timestamp) if ex.timestamp else None
        age = age_days(ts, now) if ts else None
        if age is not None and age > max_age_days:
            ledger.remove("max-age", ex, f"{age:.0f} days old (limit {max_age_days:g})")
        else:
            kept.append(ex)
    return kept


def _drop_off_template(examples: list[Example], spec: str | None, label_drift: str, ledger: _Ledger) -> list[Example]:
    if spec:
        template = parse_template(spec)
    else:
        drift = find_label_drift([ex.output_text.strip() for ex in examples])
        if drift is not None:
            return _fix_label_drift(examples, drift, label_drift, ledger)
        dominant = dominant_signature([ex.output_text for ex in examples])
        if dominant is None:
            raise BadInputError(
                "--enforce-template: the outputs have no dominant format to enforce",
                "give the expected format with --template",
            )
        template = template_from_signature(dominant[0])
    kept = []
    for ex in examples:
        if template.matches(ex.output_text):
            kept.append(ex)
        else:
            ledger.remove("enforce-template", ex, f"output does not match {template.describe()}")
    return kept


def _fix_label_drift(examples: list[Example], drift: LabelDrift, mode: str, ledger: _Ledger) -> list[Example]:
    """Outputs off the label shape: rewritten as the class they name (mode "map"), or
    quarantined (mode "quarantine", and any that name no class)."""
    kept = []
    for i, ex in enumerate(examples):
        if i not in drift.off_shape:
            kept.append(ex)
            continue
        label, output = drift.off_shape[i], ex.output_text
        if label is not None and mode == "map":
            last = ex.last_model_index()
            ex.turns = [*ex.turns[:last], Turn(MODEL, label), *ex.turns[last + 1 :]]
            ex.label = label
            ledger.rewrite("label-shape", ex, output, label)
            kept.append(ex)
        else:
            means = f"it names {label}" if label is not None else f"it names no class (as a label: {drift.suggestion(output)})"
            ledger.remove("enforce-template", ex, f"output {output.strip()!r} is not written as a label "
                                                  f"({drift.shape.describe()}); {means}")
    return kept


def _input_key(ex: Example) -> str:
    return normalize_text(full_input(ex))


def _drop_conflicts(examples: list[Example], ledger: _Ledger) -> list[Example]:
    outputs: dict[str, set[str]] = defaultdict(set)
    for ex in examples:
        outputs[_input_key(ex)].add(normalize_text(ex.output_text))
    kept = []
    for ex in examples:
        n = len(outputs[_input_key(ex)])
        if n > 1:
            ledger.remove("drop-conflicts", ex, f"the same input has {n} different outputs")
        else:
            kept.append(ex)
    return kept


def _drop_duplicates(examples: list[Example], ledger: _Ledger) -> list[Example]:
    first: dict[str, Example] = {}
    kept = []
    for ex in examples:
        key = ex.content_hash()
        if key in first:
            ledger.remove("dedupe", ex, f"exact duplicate of {first[key].id} ({first[key].where})")
        else:
            first[key] = ex
            kept.append(ex)
    return kept


def _oversample(train: list[Example], ledger: _Ledger) -> list[Example]:
    """Repeat each class below the median class size, round-robin, up to the median: enough
    to be seen, without turning seven examples into hundreds of copies."""
    by_label: dict[str, list[Example]] = defaultdict(list)
    for ex in train:
        if ex.label is not None:
            by_label[ex.label].append(ex)
    if len(by_label) < 2:
        return train
    sizes = sorted(len(v) for v in by_label.values())
    median = sizes[len(sizes) // 2]
    copies = []
    for label in sorted(by_label):
        members = by_label[label]
        for k in range(median - len(members)):
            source = members[k % len(members)]
            copy = Example(
                turns=source.turns, system=source.system, id=f"{source.id}~{k // len(members) + 1}",
                label=source.label, timestamp=source.timestamp,
                meta={**source.meta, "oversampled_from": source.id}, source=source.source, line=source.line,
            )
            copies.append(copy)
            ledger.keep_changed("oversample", copy)
    return train + copies


def _write(out_dir: Path, dataset: Dataset, splits: dict[str, list[Example]], ledger: _Ledger,
           options: PrepareOptions, force: bool) -> dict:
    """Write everything into a fresh folder beside the target, then move it into place,
    so a failure leaves no half-prepared dataset behind."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    try:
        seals = {}
        for name in SPLITS:
            path = tmp / f"{name}.jsonl"
            atomic_write_text(path, _jsonl(canonical.to_record(ex) for ex in splits[name]))
            seals[name] = split_seal(path, splits[name])
        atomic_write_text(tmp / QUARANTINE, _jsonl(ledger.quarantine))
        manifest = _manifest(dataset, splits, seals, ledger, options)
        atomic_write_text(tmp / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)  # only reached with force=True (checked before any work)
        os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def _jsonl(records) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def _manifest(dataset: Dataset, splits: dict[str, list[Example]], seals: dict, ledger: _Ledger,
              options: PrepareOptions) -> dict:
    oversampled = len(ledger.touched.get("oversample", []))
    records_in = sum(f.records for f in dataset.files)
    counts = {name: len(splits[name]) for name in SPLITS}
    counts.update(quarantine=len(ledger.quarantine), oversampled_copies=oversampled, input_records=records_in)
    assert records_in == counts["train"] + counts["validation"] + counts["test"] + counts["quarantine"] - oversampled
    version = sha256_text("".join(seals[s]["sha256"] for s in SPLITS))
    return {
        "schema_version": 1,
        "tool": f"tunesmith {__version__}",
        "dataset_version": version[:16],
        "inputs": [
            {"file": f.path, "sha256": sha256_file(f.path), "format": f.format, "records": f.records,
             "examples": len(f.examples), "unreadable": len(f.unreadable)}
            for f in dataset.files
        ],
        "options": options.model_dump(),
        "seed": options.seed,
        "label_source": dataset.label_source,
        "counts": counts,
        "label_distribution": {
            name: dict(sorted(Counter(ex.label for ex in splits[name] if ex.label is not None).items()))
            for name in SPLITS
        },
        "fixes": [{"fix": fix, "count": len(ids), "ids": ids, **({"changes": ledger.changes[fix]} if fix in ledger.changes else {})}
                  for fix, ids in ledger.touched.items()],
        "quarantine": {"file": QUARANTINE, "count": len(ledger.quarantine),
                       "by_reason": dict(Counter(q["fix"] for q in ledger.quarantine))},
        "splits": seals,
        "sealed": ["test"],
        # What the outputs may be (labels, a template, JSON fields), learned from the train split:
        # evaluation and serving hold decoding to it (models/constrain.py). None: free text.
        "output_space": _space_dict(learn_output_space([ex.output_text for ex in splits["train"]])),
    }


def _space_dict(space) -> dict | None:
    return space.to_dict() if space is not None else None
