"""The guide's pitfalls, made executable.

A check is a plain function `(examples, ctx) -> list[Finding]`. Each module lists its
checks in `CHECKS`; `ALL_CHECKS` runs them in a fixed order. `ctx` carries what checks
need beyond the examples: the tuning target, token counts, user options, the clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from ...targets import Target
from ..example import Example
from ..findings import Finding
from ..formats import Unreadable
from ..tokens import TokenCounts


@dataclass
class CheckContext:
    target: Target
    tokens: TokenCounts  # aligned with the examples list
    now: datetime  # timezone-aware UTC; tests pin it
    template: str | None = None  # --template: the expected output format
    max_age_days: float | None = None  # --max-age
    label_source: str | None = None  # how labels were found; None: no labels, skip label checks
    splits: list[str] = field(default_factory=list)  # split names present, in file order
    unreadable: list[Unreadable] = field(default_factory=list)
    prepared_dir: Path | None = None  # set when checking a prepared folder
    manifest: dict | None = None  # its manifest.json


Check = Callable[[list[Example], CheckContext], list[Finding]]
