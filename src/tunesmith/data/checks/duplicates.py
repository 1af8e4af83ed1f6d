"""Duplicates: exact copies, near-duplicates, and inputs shared across splits.

Each check compares the text that matters for it:
- duplicate-example: the whole example (system instruction and turns, whitespace collapsed), exactly.
- near-duplicate: the whole example, normalised (`normalize_text`), by MinHash.
- split-leak: the input (system instruction and user turns, `full_input`), by MinHash (at
  0.9, see LEAK_THRESHOLD) and by shared 13-word passages. A test input the model has seen in training, with its answer,
  inflates the test score; a shared answer alone ("Yes.", a label) is no leak. The grouped
  split of `tunesmith data prepare` compares the same text, so what it prepares has no leak.

Near-duplicates are found by the engine in `tunesmith.data.near_duplicates` (MinHash with
LSH banding, confirmed by exact shingle sets); short texts are also joined when one lies
almost wholly inside the other (a courtesy phrase added, a word changed).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from ..example import Example, full_input
from ..findings import Finding, about
from ..near_duplicates import (
    LEAK_NGRAM_WORDS,
    LEAK_THRESHOLD,
    NEAR_DUPLICATE_THRESHOLD,
    SHORT_CONTAINMENT,
    exact_groups,
    near_duplicate_groups,
    shared_passage_groups,
)
from .messages import count, count_examples, plural, quote, wheres

if TYPE_CHECKING:
    from . import CheckContext

TRAIN = "train"
SHORT_REPLY_WORDS = 3  # copies of inputs this short are a note

# Checks ----------------------------------------------------------------------------------


def check_duplicate_examples(examples: list[Example], ctx: CheckContext) -> list[Finding]:
    """duplicate-example: examples whose system instruction and turns are the same. Copies of
    a reply of a few words ("yes", "6") are common in dialogue data (Restaurant-8k: 3% of its
    examples) and weigh little: a note; other copies a warning."""
    groups = exact_groups([_example_key(ex) for ex in examples])
    short = [g for g in groups if len(examples[g[0]].input_text.split()) <= SHORT_REPLY_WORDS]
    findings = []
    for severity, chosen in (("warning", [g for g in groups if g not in short]), ("info", short)):
        if not chosen:
            continue
        copies = sum(len(group) - 1 for group in chosen)
        first = chosen[0]
        message = (
            f"{count_examples(copies)} {'is an exact copy' if copies == 1 else 'are exact copies'} of another "
            f"({len(chosen):,} {plural(len(chosen), 'group')}, {sum(map(len, chosen)):,} lines in all), "
            f"e.g. {wheres(examples, first)}: {quote(examples[first[0]].input_text)}. "
            + ("Copies weigh those examples more in training and can land on both sides of a split."
               if severity == "warning" else
               f"The inputs are replies of {SHORT_REPLY_WORDS} words or fewer, which dialogue data repeats.")
        )
        hint = "Run tunesmith data prepare --dedupe to keep one copy of each."
        affected = [examples[i] for group in chosen for i in group]
        findings.append(about("duplicate-example", severity, message, hint, affected, count=copies))
    return findings


def check_near_duplicates(examples: list[Example], ctx: CheckContext) -> list[Finding]:
    """near-duplicate: examples (system instruction and turns) nearly the same, exact copies aside."""
    keys = [_example_key(ex) for ex in examples]
    groups = [
        group
        for group in near_duplicate_groups([_example_text(ex) for ex in examples], containment=SHORT_CONTAINMENT)
        if len({keys[i] for i in group}) > 1  # more than one distinct example: not only exact copies
    ]
    if not groups:
        return []
    first = groups[0]
    members = sum(map(len, groups))
    message = (
        f"{count_examples(members)} in {len(groups):,} {plural(len(groups), 'group')} are near-duplicates "
        f"(at least {NEAR_DUPLICATE_THRESHOLD:.0%} of their wording in common), e.g. {wheres(examples, first)}: "
        f"{quote(examples[first[0]].input_text)} and {quote(examples[first[1]].input_text)}. "
        "Many near-copies weigh one case more than the rest and add little new."
    )
    hint = (
        "Review the groups and keep the variants that teach something different; "
        "tunesmith data prepare keeps each group in one split."
    )
    return [about("near-duplicate", "info", message, hint, [examples[i] for group in groups for i in group])]


def check_split_leaks(examples: list[Example], ctx: CheckContext) -> list[Finding]:
    """split-leak: inputs that appear in more than one split, the same or nearly, or that share
    a 13-word passage."""
    splits = [ex.split or "" for ex in examples]
    if len(set(splits)) < 2:
        return []
    inputs = [full_input(ex) for ex in examples]
    similar = [g for g in near_duplicate_groups(inputs, LEAK_THRESHOLD) if _spans_splits(g, splits)]
    reported = {i for group in similar for i in group}
    passages = [g for g in shared_passage_groups(inputs, splits) if not reported.issuperset(g)]
    findings = []
    hint = (
        "Re-split with tunesmith data prepare, which keeps near-duplicates in one split, "
        "or remove these examples from the evaluation split."
    )
    if similar:
        message = (
            f"{count(len(similar), 'input')} {'appears' if len(similar) == 1 else 'appear'} in more than one split, "
            f"the same or nearly ({_split_pairs(similar, splits)}), e.g. {wheres(examples, similar[0])}: "
            f"{quote(examples[similar[0][0]].input_text)}. A model that saw these in training is tested on "
            "memory, not skill."
        )
        findings.append(about("split-leak", "error", message, hint, [examples[i] for g in similar for i in g]))
    if passages:
        message = (
            f"{count_examples(sum(map(len, passages)))} share a passage of {LEAK_NGRAM_WORDS} or more words with "
            f"an example in another split ({_split_pairs(passages, splits)}), e.g. {wheres(examples, passages[0])}. "
            "A test input whose text was trained on is no longer unseen."
        )
        findings.append(about("split-leak", "error", message, hint, [examples[i] for g in passages for i in g]))
    return findings


# Texts and messages ----------------------------------------------------------------------


def _example_key(ex: Example) -> tuple:
    """What makes two examples the same: system instruction and turns, whitespace collapsed."""
    return " ".join((ex.system or "").split()), tuple((t.role, " ".join(t.text.split())) for t in ex.turns)


def _example_text(ex: Example) -> str:
    return "\n\n".join([ex.system or "", *(t.text for t in ex.turns)])


def _spans_splits(group: list[int], splits: list[str]) -> bool:
    return len({splits[i] for i in group}) > 1


def _split_pairs(groups: list[list[int]], splits: list[str]) -> str:
    """'train+test: 3, train+validation: 5': how many groups join which splits."""
    counts = Counter(_split_names(group, splits) for group in groups)
    return ", ".join(f"{names}: {n:,}" for names, n in sorted(counts.items()))


def _split_names(group: list[int], splits: list[str]) -> str:
    names = {splits[i] or "(no split)" for i in group}
    return "+".join(sorted(names, key=lambda name: (name != TRAIN, name)))


CHECKS = [check_duplicate_examples, check_near_duplicates, check_split_leaks]
