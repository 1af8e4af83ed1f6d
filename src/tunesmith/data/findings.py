"""What a check reports: a `Finding` with a stable code, a severity and every place it concerns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Literal

from .example import Example

Severity = Literal["error", "warning", "info"]
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclass(slots=True, frozen=True)
class Location:
    file: str
    line: int

    def to_dict(self) -> dict:
        return {"file": self.file, "line": self.line}


@dataclass(slots=True)
class Finding:
    code: str
    severity: Severity
    message: str
    hint: str = ""
    examples: list[str] = field(default_factory=list)  # example ids, all of them
    locations: list[Location] = field(default_factory=list)  # every affected line
    count: int | None = None  # defaults to the number of locations (or examples)

    def __post_init__(self) -> None:
        if self.count is None:
            self.count = len(self.locations) or len(self.examples)

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "hint": self.hint,
            "count": self.count,
            "examples": list(self.examples),
            "locations": [loc.to_dict() for loc in self.locations],
        }


def about(
    code: str,
    severity: Severity,
    message: str,
    hint: str,
    examples: Iterable[Example],
    count: int | None = None,
) -> Finding:
    """A finding about these examples, with their ids and locations (de-duplicated, in order)."""
    ids: dict[str, None] = {}
    locs: dict[Location, None] = {}
    for ex in examples:
        ids.setdefault(ex.id, None)
        locs.setdefault(Location(ex.source, ex.line), None)
    return Finding(code, severity, message, hint, list(ids), list(locs), count)


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Most severe first, then the most widespread."""
    return sorted(findings, key=lambda f: (SEVERITY_ORDER[f.severity], -(f.count or 0), f.code))
