"""Who rates what, in which order, and which output is shown on the left.

- Every item is rated by one rater; a share `overlap` of the items (rounded up) by
  `overlap_raters` raters, for agreement. Items go to the raters with the least work so far
  (ties broken at random), so the load is even to within one item.
- Every gold item goes to every rater, at a random place in the queue.
- Left and right are balanced: over the items (shuffled), the item's first output is on
  the left for every other one; a second rater of the same item sees it the other way
  round, so a preference for one side cannot pass for a preference for one model.
- Each rater's queue is shuffled. All of it follows from `seed`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Assignment:
    item: int  # index into the task's items (models first, then gold)
    rater: int  # index into the raters
    sequence: int  # 1-based place in the rater's queue
    first_on_left: bool


def plan_assignments(items: int, gold: int, raters: int, overlap: float, overlap_raters: int = 2,
                     seed: int = 0) -> list[Assignment]:
    """Assignments for `items` model items (indices 0..items-1) and `gold` gold items (indices
    items..items+gold-1) among `raters` raters."""
    if raters < 1:
        raise ValueError("at least one rater")
    if not 0 <= overlap <= 1:
        raise ValueError("overlap is a share between 0 and 1")
    rng = random.Random(seed)
    per_item = min(overlap_raters, raters)
    shared = math.ceil(overlap * items) if per_item >= 2 else 0
    order = list(range(items))
    rng.shuffle(order)
    load = [0] * raters
    given: list[list[tuple[int, bool]]] = [[] for _ in range(raters)]
    for place, item in enumerate(order):
        count = per_item if place < shared else 1
        chosen = sorted(range(raters), key=lambda r: (load[r], rng.random()))[:count]
        first_on_left = place % 2 == 0
        for turn, rater in enumerate(chosen):
            given[rater].append((item, first_on_left != (turn % 2 == 1)))
            load[rater] += 1
    for g in range(gold):
        for rater in range(raters):
            given[rater].append((items + g, (g + rater) % 2 == 0))
    assignments = []
    for rater, queue in enumerate(given):
        rng.shuffle(queue)
        assignments += [Assignment(item, rater, n, left) for n, (item, left) in enumerate(queue, 1)]
    return assignments
