"""Training files to Cloud Storage, named by their content so a re-run uploads nothing twice.

`upload(path, "gs://bucket/prefix", "train")` puts the file at
`gs://bucket/prefix/train-<first 16 hex digits of its SHA-256>.jsonl`; when an object of that
name with the same MD5 is already there, nothing is sent. STORAGE_EMULATOR_HOST points the
client at an emulator (it then needs no credentials), as google-cloud-storage documents."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

from ...fileio import sha256_file
from ...models.gemini import cloud_error

CONTENT_TYPE = "application/jsonl"
HASH_DIGITS = 16  # 64 bits of SHA-256 in the name: no two different files of one dataset collide


@dataclass
class Uploaded:
    uri: str  # gs://bucket/prefix/train-0123abcd….jsonl
    bytes: int
    sent: bool  # False: the same content was already there


def split_uri(uri: str) -> tuple[str, str]:
    """("bucket", "prefix") of gs://bucket/prefix (the prefix may be empty)."""
    bucket, _, prefix = uri.removeprefix("gs://").partition("/")
    return bucket, prefix.strip("/")


def object_name(path: Path, prefix: str, stem: str) -> str:
    name = f"{stem}-{sha256_file(path)[:HASH_DIGITS]}{path.suffix}"
    return f"{prefix}/{name}" if prefix else name


def upload(path: str | Path, bucket_uri: str, stem: str, project: str | None = None) -> Uploaded:
    from google.cloud import storage

    path = Path(path)
    bucket_name, prefix = split_uri(bucket_uri)
    name = object_name(path, prefix, stem)
    uri = f"gs://{bucket_name}/{name}"
    try:
        bucket = storage.Client(project=project).bucket(bucket_name)
        there = bucket.get_blob(name)
        if there is not None and there.md5_hash == _md5_base64(path):
            return Uploaded(uri, path.stat().st_size, sent=False)
        bucket.blob(name).upload_from_filename(str(path), content_type=CONTENT_TYPE)
    except Exception as exc:
        error = cloud_error(exc, f"uploading {path.name} to {uri}")
        if error is None:
            raise
        raise error from None
    return Uploaded(uri, path.stat().st_size, sent=True)


def _md5_base64(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return base64.b64encode(digest.digest()).decode("ascii")

