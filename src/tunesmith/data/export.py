"""`tunesmith data export`: the train and validation splits of a prepared folder, in the
format a tuning service expects. The test split stays sealed where it is.

For Gemini the records are checked with the rules Google's own validator applies
(`validate_dataset_format` in Google's tuning notebook: contents present, roles user/model
alternating, non-empty text parts, systemInstruction with text parts) and the target's
limits (tokens per example, validation size, file size). Invalid data is never written."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import BadInputError, ExportError
from ..fileio import atomic_write_text
from ..targets import Target, load_target
from .dataset import MANIFEST, load_dataset
from .formats import FORMAT_NAMES, csv_format, to_record, write_file
from .formats._common import CannotRepresent
from .seal import verify_seal
from .tokens import count_tokens, counter_for

EXPORTED_SPLITS = ("train", "validation")


def validate_gemini_record(record: object) -> list[str]:
    """The error keys Google's validator would report for one record (empty: valid)."""
    if not isinstance(record, dict):
        return ["invalid_input"]
    errors = []
    contents = record.get("contents")
    if contents is None:
        return ["missing_contents_list"]
    if not isinstance(contents, list) or not contents:
        return ["invalid_contents_list"]
    previous = None
    for item in contents:
        if not isinstance(item, dict):
            errors.append("invalid_content_item")
            continue
        if "role" not in item or "parts" not in item:
            errors.append("content_item_missing_key")
            continue
        if item["role"] not in ("user", "model"):
            errors.append("unrecognized_role")
        errors += _parts_errors(item["parts"])
        if item["role"] == previous:
            errors.append("consecutive_turns")
        previous = item["role"]
    if "systemInstruction" in record:
        system = record["systemInstruction"]
        if not isinstance(system, dict) or _parts_errors(system.get("parts")):
            errors.append("invalid_system_instruction")
    return list(dict.fromkeys(errors))


def _parts_errors(parts: object) -> list[str]:
    if not isinstance(parts, list) or not parts:
        return ["missing_or_invalid_parts"]
    errors = []
    for part in parts:
        if not isinstance(part, dict) or "text" not in part:
            errors.append("invalid_part")
        elif not isinstance(part["text"], str) or not part["text"].strip():
            errors.append("missing_text")
    return errors


def export(prepared_dir: str | Path, to: str, out_dir: str | Path, target: str | None = None) -> dict:
    """Write train and validation of `prepared_dir` as format `to` into `out_dir`; return a
    summary (files written, counts, the manifest's dataset version)."""
    prepared_dir, out_dir = Path(prepared_dir), Path(out_dir)
    if to not in FORMAT_NAMES:
        raise BadInputError(f"unknown format {to!r}", f"choose one of {', '.join(FORMAT_NAMES)}")
    if not (prepared_dir / MANIFEST).is_file():
        raise BadInputError(f"{prepared_dir} is not a prepared dataset (no {MANIFEST})",
                            "make one with `tunesmith data prepare FILE... --out DIR`")
    dataset = load_dataset([prepared_dir])
    broken = verify_seal(prepared_dir, dataset.manifest or {}, dataset.examples)
    if broken:
        raise ExportError(broken[0].message, broken[0].hint)
    if dataset.unreadable:
        u = dataset.unreadable[0]
        raise ExportError(f"{u.file}:{u.line}: {u.reason}", "the prepared folder was edited; re-run prepare")
    resolved = load_target(target) if target else None
    suffix = ".csv" if to == csv_format.NAME else ".jsonl"
    written = {}
    for split in EXPORTED_SPLITS:
        examples = dataset.split(split)
        if to == "gemini":
            _check_gemini(examples, split, resolved or load_target("vertex/gemini-2.5-flash"))
        path = out_dir / f"{split}{suffix}"
        write_file(examples, path, to)
        size = path.stat().st_size
        if resolved and resolved.max_file_bytes and size > resolved.max_file_bytes:
            path.unlink()
            raise ExportError(f"{path} would be {size:,} bytes, over {resolved.name}'s limit of "
                              f"{resolved.max_file_bytes:,}", "prepare a smaller dataset")
        written[split] = {"file": str(path), "examples": len(examples)}
    summary = {"format": to, "source": str(prepared_dir),
               "dataset_version": (dataset.manifest or {}).get("dataset_version"), "splits": written}
    atomic_write_text(out_dir / "export.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _check_gemini(examples, split: str, target: Target) -> None:
    for ex in examples:
        try:
            errors = validate_gemini_record(to_record(ex, "gemini"))
        except CannotRepresent as exc:
            errors = [str(exc)]
        if errors:
            raise ExportError(f"example {ex.id} ({ex.where}) fails Gemini's validation: {', '.join(errors)}",
                              "fix or quarantine it, then prepare again")
    if split == "validation" and target.max_validation_examples and len(examples) > target.max_validation_examples:
        raise ExportError(f"the validation split has {len(examples):,} examples; {target.name} accepts at most "
                          f"{target.max_validation_examples:,}", "prepare again with a smaller --validation share")
    totals = count_tokens(examples, counter_for(target)).total
    over = [(ex, n) for ex, n in zip(examples, totals) if n > target.max_tokens_per_example]
    if over:
        ex, n = over[0]
        raise ExportError(f"{len(over)} {split} example(s) exceed {target.name}'s {target.max_tokens_per_example:,} "
                          f"tokens per example; the first is {ex.id} ({ex.where}, about {n:,} tokens)",
                          "shorten or quarantine them, then prepare again")
