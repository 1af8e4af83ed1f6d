"""Sealing a prepared dataset: the manifest records the sha256 of every split file and the
content hash of every example, so any later change to a split is found and named."""

from __future__ import annotations

from pathlib import Path

from ..fileio import sha256_file
from .example import Example
from .findings import Finding, Location, about

HASH_CHARS = 16  # of an example's content sha256: enough to tell 10^9 examples apart


def split_seal(path: Path, examples: list[Example]) -> dict:
    return {
        "file": path.name,
        "sha256": sha256_file(path),
        "count": len(examples),
        "content_hashes": sorted(ex.content_hash()[:HASH_CHARS] for ex in examples),
    }


def verify_seal(prepared_dir: Path, manifest: dict, examples: list[Example]) -> list[Finding]:
    """`seal-broken` findings for every split whose file no longer matches the manifest."""
    findings = []
    for name, seal in (manifest.get("splits") or {}).items():
        path = prepared_dir / seal["file"]
        if not path.is_file():
            findings.append(Finding(
                "seal-broken", "error",
                f"the {name} split ({path}) is missing; the manifest lists {seal['count']} examples in it",
                "re-run `tunesmith data prepare` to rebuild the folder",
                count=seal["count"],
            ))
            continue
        if sha256_file(path) == seal["sha256"]:
            continue
        sealed = set(seal["content_hashes"])
        current = [ex for ex in examples if ex.source == str(path)]
        current_hashes = {ex.content_hash()[:HASH_CHARS] for ex in current}
        changed = [ex for ex in current if ex.content_hash()[:HASH_CHARS] not in sealed]
        removed = len(sealed - current_hashes)
        detail = f"{len(changed)} example(s) added or edited, {removed} removed"
        finding = about(
            "seal-broken", "error",
            f"the {name} split ({path}) changed after it was sealed: {detail}"
            + (" — the test set must not be touched, or evaluation results cannot be trusted" if name == "test" else ""),
            "restore the file, or re-run `tunesmith data prepare` and train again on the new version",
            changed,
        )
        if not changed:  # only removals or a re-ordering: point at the file itself
            finding.locations = [Location(str(path), 0)]
            finding.count = max(removed, 1)
        findings.append(finding)
    return findings
