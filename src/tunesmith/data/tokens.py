"""Counting tokens the way the tuning target will.

Local targets use the base model's own tokenizer (cached from the embedded GGUF file).
Gemini has no offline tokenizer, so Gemini targets use an estimate of one token per four
characters, Google's documented rule of thumb; the report states which method was used."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from ..errors import TunesmithError
from ..targets import Target
from .example import Example

CHARS_PER_TOKEN = 4
# Chat-template tokens around each turn (for SmolLM2: "<|im_start|>", role, "\n", "<|im_end|>", "\n").
TURN_OVERHEAD_TOKENS = 5


@dataclass
class TokenCounter:
    method: str  # said in reports: how the numbers were obtained
    count_many: Callable[[list[str]], list[int]]


def estimate_counter() -> TokenCounter:
    return TokenCounter(
        method=f"estimate: 1 token per {CHARS_PER_TOKEN} characters (no offline tokenizer for this target)",
        count_many=lambda texts: [math.ceil(len(t) / CHARS_PER_TOKEN) for t in texts],
    )


def counter_for(target: Target) -> TokenCounter:
    if target.tokenizer == "estimate":
        return estimate_counter()
    from tokenizers import Tokenizer

    from ..models.embedded import tokenizer_dir

    try:
        tokenizer = Tokenizer.from_file(str(tokenizer_dir(target.tokenizer) / "tokenizer.json"))
    except TunesmithError as exc:
        fallback = estimate_counter()
        fallback.method += f"; the {target.tokenizer} tokenizer is unavailable: {exc.message}"
        return fallback

    def count_many(texts: list[str]) -> list[int]:
        return [len(enc.ids) for enc in tokenizer.encode_batch(texts, add_special_tokens=False)]

    return TokenCounter(method=f"{target.tokenizer} tokenizer (exact, plus {TURN_OVERHEAD_TOKENS} template tokens per turn)", count_many=count_many)


@dataclass
class TokenCounts:
    """Per example: tokens of the system instruction, the user turns, the model turns, and the
    total the target counts against its per-example limit (template overhead included)."""

    system: list[int]
    user: list[int]
    model: list[int]
    total: list[int]


def count_tokens(examples: list[Example], counter: TokenCounter) -> TokenCounts:
    texts: list[str] = []
    for ex in examples:  # one batch for everything: far faster than a call per text
        texts.append(ex.system or "")
        texts += [t.text for t in ex.turns]
    counts = counter.count_many(texts)
    system, user, model, total = [], [], [], []
    i = 0
    for ex in examples:
        sys_n = counts[i]
        i += 1
        per_role = {"user": 0, "model": 0}
        for t in ex.turns:
            per_role[t.role if t.role in per_role else "user"] += counts[i]
            i += 1
        n_turns = len(ex.turns) + (1 if ex.system else 0)
        system.append(sys_n)
        user.append(per_role["user"])
        model.append(per_role["model"])
        total.append(sys_n + per_role["user"] + per_role["model"] + TURN_OVERHEAD_TOKENS * n_turns)
    return TokenCounts(system, user, model, total)
