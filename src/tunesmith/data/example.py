"""The canonical data model every format reads into and writes from.

An `Example` is one training conversation: an optional system instruction and a list of
turns whose roles are "user" and "model" (Gemini's word for the assistant). Formats that
say "assistant" map to "model" on read and back on write.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

USER = "user"
MODEL = "model"
ROLES = (USER, MODEL)


@dataclass(slots=True, frozen=True)
class Turn:
    role: str
    text: str


@dataclass(slots=True)
class Example:
    turns: list[Turn]
    system: str | None = None
    id: str = ""
    label: str | None = None
    timestamp: str | None = None  # as written in the input; parsed by the checks that need it
    meta: dict[str, Any] = field(default_factory=dict)  # fields the format does not know
    source: str = ""  # the file it was read from
    line: int = 0  # 1-based line (JSONL) or row (CSV, counting the header as line 1)
    split: str | None = None  # "train" | "validation" | "test" | a file stem

    def __post_init__(self) -> None:
        if not self.id:
            self.id = self.content_hash()[:16]

    def content_hash(self) -> str:
        """sha256 of what is trained on: system instruction and turns, nothing else."""
        payload = json.dumps(
            [self.system, [[t.role, t.text] for t in self.turns]],
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    @property
    def input_text(self) -> str:
        """Everything before the last model turn, user turns joined by blank lines."""
        last_model = self.last_model_index()
        before = self.turns if last_model is None else self.turns[:last_model]
        return "\n\n".join(t.text for t in before if t.role == USER)

    @property
    def output_text(self) -> str:
        """The last model turn: what a single-turn tuning example teaches."""
        last_model = self.last_model_index()
        return "" if last_model is None else self.turns[last_model].text

    def last_model_index(self) -> int | None:
        for i in range(len(self.turns) - 1, -1, -1):
            if self.turns[i].role == MODEL:
                return i
        return None

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}" if self.source else f"example {self.id}"


def full_input(ex: Example) -> str:
    """What an example gives the model to answer: its system instruction and user turns."""
    return (ex.system or "") + "\n" + ex.input_text
