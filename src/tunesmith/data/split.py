"""Grouped, stratified, seeded splitting.

Near-duplicates, exact duplicates and inputs sharing a 13-word passage form one group and
always land in the same split, so the test set cannot hold a paraphrase of a training example. Groups are stratified by
label: each class is split by the requested fractions, so a rare class still appears in
validation and test when it has the examples for it. The same input and seed give the
same split, whatever else is on the machine."""

from __future__ import annotations

import hashlib
from collections import defaultdict

from .example import Example, full_input
from .near_duplicates import leak_groups

NO_LABEL = "\x00"  # the stratum of unlabelled examples


def group_indices(examples: list[Example]) -> list[list[int]]:
    """Every example's group: inputs that would leak across splits together, singletons alone."""
    grouped = leak_groups([full_input(ex) for ex in examples])
    seen = {i for group in grouped for i in group}
    return grouped + [[i] for i in range(len(examples)) if i not in seen]


def _order_key(seed: int, example: Example) -> str:
    """A seeded shuffle that does not depend on where an example sits in the input."""
    return hashlib.sha256(f"{seed}:{example.content_hash()}".encode()).hexdigest()


def assign_splits(examples: list[Example], validation: float, test: float, seed: int) -> list[str]:
    """The split name of each example ("train" | "validation" | "test"), index-aligned."""
    groups = group_indices(examples)
    strata: dict[str, list[list[int]]] = defaultdict(list)
    for group in groups:
        labels = [examples[i].label for i in group if examples[i].label is not None]
        # A group whose members disagree on the label goes by its most common one.
        label = max(sorted(set(labels)), key=labels.count) if labels else NO_LABEL
        strata[label].append(group)
    names = [""] * len(examples)
    for label in sorted(strata):
        stratum = sorted(strata[label], key=lambda g: _order_key(seed, examples[g[0]]))
        size = sum(len(g) for g in stratum)
        quota = {"test": round(test * size), "validation": round(validation * size)}
        filled = {"test": 0, "validation": 0}
        for group in stratum:
            name = next((s for s in ("test", "validation") if filled[s] + len(group) <= quota[s]), "train")
            if name != "train":
                filled[name] += len(group)
            for i in group:
                names[i] = name
    return names
