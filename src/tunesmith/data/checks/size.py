"""Size and limits: enough examples, not more than the target accepts, none over its token
limit; and the edge cases of length (outputs far longer or shorter than the rest, inputs
with next to nothing in them).

The counts judge the training split when there is one ("train"), else the whole dataset.
The limits come from the tuning target's file (`targets/`), not from code."""

from __future__ import annotations

import math
import os
import statistics
from typing import TYPE_CHECKING

from ..example import Example
from ..findings import Finding, about
from .messages import count_examples

if TYPE_CHECKING:
    from ...targets import Target
    from . import CheckContext

TRAIN = "train"
VALIDATION = "validation"

# Length outliers must be extreme both ways: beyond Tukey's "far out" fence (3 IQR past the
# quartiles) on the logarithm of the length, and more than 5x the median (or under a tenth
# of it). Lengths are skewed, roughly log-normal: on the raw scale the fence flags the
# ordinary long tail once there are thousands of examples; on the log scale it sits about
# 4.7 standard deviations out. The ratios keep a tight distribution (labels of 3 to 6
# tokens) from calling a 9-token label an outlier; short answers are common in chat data
# (a clarifying question at a fifth of the median length), cut-off ones are shorter still.
OUTLIER_MIN_EXAMPLES = 20
OUTLIER_IQR_FENCE = 3.0
OUTLIER_LONG_RATIO = 5.0
OUTLIER_SHORT_RATIO = 10.0

# A near-empty input has at most 2 characters, or no letter or digit at all. It is reported
# only where inputs are otherwise substantial (median of 20 characters or more) and such
# inputs are rare (at most 1%); where they are common they are a deliberate part of the data
# (short answers in a dialogue).
NEAR_EMPTY_MAX_CHARS = 2
NEAR_EMPTY_MIN_MEDIAN_CHARS = 20
NEAR_EMPTY_MAX_SHARE = 0.01


def check_example_count(examples: list[Example], ctx: CheckContext) -> list[Finding]:
    """too-few-examples (error under the minimum, info under the recommendation) and
    too-many-examples (over the target's train or validation limit)."""
    target = ctx.target
    has_train = TRAIN in ctx.splits or any(ex.split == TRAIN for ex in examples)
    train = [ex for ex in examples if ex.split == TRAIN] if has_train else examples
    name = "The training split" if has_train else "The dataset"
    validation = [ex for ex in examples if ex.split == VALIDATION]
    findings = _too_few(name, len(train), target)
    if target.max_train_examples is not None and len(train) > target.max_train_examples:
        hint = "Sample it down to the limit; removing duplicates (tunesmith data prepare --dedupe) may be enough."
        findings.append(_too_many(name, len(train), target.max_train_examples, target, hint))
    if target.max_validation_examples is not None and len(validation) > target.max_validation_examples:
        limit = target.max_validation_examples
        hint = f"Keep {limit:,} validation examples and move the rest to train or test."
        findings.append(_too_many("The validation split", len(validation), limit, target, hint))
    return findings


def _too_few(name: str, n: int, target: Target) -> list[Finding]:
    least, recommended = target.min_examples, target.recommended_examples
    advice = f"the guide: at least {least:,}, {recommended:,} or more recommended"
    if n < least:
        message = f"{name} has {count_examples(n)}; tuning needs at least {least:,}."
        return [Finding("too-few-examples", "error", message, f"Collect more examples ({advice}).", count=n)]
    if n < recommended:
        message = f"{name} has {count_examples(n)}: enough to tune, but more reliable results take {recommended:,} or more."
        return [Finding("too-few-examples", "info", message, f"If you can, collect more examples ({advice}).", count=n)]
    return []


def _too_many(name: str, n: int, limit: int, target: Target, hint: str) -> Finding:
    message = f"{name} has {count_examples(n)}; {target.name} accepts at most {limit:,}."
    return Finding("too-many-examples", "error", message, hint, count=n)


def check_file_size(examples: list[Example], ctx: CheckContext) -> list[Finding]:
    """too-many-examples for an input file over the target's file size limit."""
    limit = ctx.target.max_file_bytes
    if limit is None:
        return []
    by_file: dict[str, list[Example]] = {}
    for ex in examples:
        if ex.source:
            by_file.setdefault(ex.source, []).append(ex)
    findings = []
    for path, in_file in by_file.items():
        size = os.path.getsize(path) if os.path.isfile(path) else 0
        if size > limit:
            findings.append(
                Finding(
                    "too-many-examples",
                    "error",
                    f"{path} is {_size(size)}; {ctx.target.name} accepts files of at most {_size(limit)}.",
                    "Sample the data down, or remove duplicates with tunesmith data prepare --dedupe.",
                    count=len(in_file),
                )
            )
    return findings


def check_token_limit(examples: list[Example], ctx: CheckContext) -> list[Finding]:
    """too-long: examples over the target's tokens-per-example limit."""
    limit = ctx.target.max_tokens_per_example
    over = [i for i, total in enumerate(ctx.tokens.total) if total > limit]
    if not over:
        return []
    longest = max(ctx.tokens.total[i] for i in over)
    message = (
        f"{count_examples(len(over))} {'is' if len(over) == 1 else 'are'} longer than the {limit:,} tokens "
        f"{ctx.target.name} allows per example (the longest has {longest:,}); "
        "the service truncates or drops them."
    )
    hint = "Shorten these examples (trim the system instruction or earlier turns), split them, or remove them."
    return [about("too-long", "error", message, hint, [examples[i] for i in over])]


def check_length_outliers(examples: list[Example], ctx: CheckContext) -> list[Finding]:
    """length-outlier: outputs far longer or far shorter than the rest, in model-turn tokens."""
    indices = [i for i, ex in enumerate(examples) if ex.output_text.strip()]
    if len(indices) < OUTLIER_MIN_EXAMPLES:
        return []
    tokens = [max(ctx.tokens.model[i], 1) for i in indices]
    q1, median, q3 = statistics.quantiles(tokens, n=4, method="inclusive")
    fence = math.exp(OUTLIER_IQR_FENCE * math.log(q3 / q1))  # 3 IQR on the log scale, as a factor
    high = max(q3 * fence, OUTLIER_LONG_RATIO * median)
    low = min(q1 / fence, median / OUTLIER_SHORT_RATIO)
    long_ones = [i for i, n in zip(indices, tokens) if n > high]
    short_ones = [i for i, n in zip(indices, tokens) if n < low]
    findings = []
    if long_ones:
        most = max(ctx.tokens.model[i] for i in long_ones)
        message = (
            f"{_outputs(len(long_ones))} far longer than the rest (up to {most:,} tokens; "
            f"the median output has {median:,.0f} and three quarters have at most {q3:,.0f})."
        )
        hint = "Check that they are answers the model should learn to give, not pasted logs or several answers in one."
        findings.append(about("length-outlier", "info", message, hint, [examples[i] for i in long_ones]))
    if short_ones:
        least = min(ctx.tokens.model[i] for i in short_ones)
        message = (
            f"{_outputs(len(short_ones))} far shorter than the rest (down to {least:,} tokens; "
            f"the median output has {median:,.0f} and three quarters have at least {q1:,.0f})."
        )
        hint = "Check that they are not cut off or placeholders."
        findings.append(about("length-outlier", "info", message, hint, [examples[i] for i in short_ones]))
    return findings


def check_near_empty_inputs(examples: list[Example], ctx: CheckContext) -> list[Finding]:
    """near-empty-input: inputs with next to nothing in them, where the others say more."""
    inputs = [(ex, ex.input_text.strip()) for ex in examples]
    present = [(ex, text) for ex, text in inputs if text]  # empty inputs are bad-structure's
    if len(present) < OUTLIER_MIN_EXAMPLES:
        return []
    median_chars = statistics.median(len(text) for _, text in present)
    near_empty = [(ex, text) for ex, text in present if _near_empty(text)]
    rare = len(near_empty) <= NEAR_EMPTY_MAX_SHARE * len(present)
    if not near_empty or not rare or median_chars < NEAR_EMPTY_MIN_MEDIAN_CHARS:
        return []
    shown = ", ".join(sorted({repr(text) for _, text in near_empty})[:5])
    n = len(near_empty)
    message = (
        f"{count_examples(n)} {'has' if n == 1 else 'have'} an input with next to nothing in it "
        f"({shown}), where the median input has {median_chars:,.0f} characters."
    )
    hint = "Check that these inputs were not cut off; an answer to almost nothing teaches the model to guess."
    return [about("near-empty-input", "info", message, hint, [ex for ex, _ in near_empty])]


def _near_empty(text: str) -> bool:
    return len(text) <= NEAR_EMPTY_MAX_CHARS or not any(ch.isalnum() for ch in text)


def _outputs(n: int) -> str:
    return "1 output is" if n == 1 else f"{n:,} outputs are"


def _size(n_bytes: int) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:,.1f} {unit}".replace(".0 ", " ")
    return f"{n_bytes:,} bytes"


CHECKS = [check_example_count, check_file_size, check_token_limit, check_length_outliers, check_near_empty_inputs]
