"""Reading a small JSONL file of records (labels, gold items) where any bad line must name
its file and line. Datasets have their own readers in data/formats, which quarantine bad
records instead of failing the file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import BadInputError


def json_lines(path: str | Path) -> Iterator[tuple[str, Any]]:
    """Each non-blank line's place ("FILE:LINE") and its parsed JSON value. A missing or
    unreadable file, or a line that is not JSON, is a BadInputError naming the place."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise BadInputError(f"{path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"cannot read {path}: {exc}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            yield where, json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadInputError(f"{where}: not valid JSON ({exc.msg})") from None
