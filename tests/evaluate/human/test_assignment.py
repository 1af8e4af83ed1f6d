"""Who rates what: coverage, overlap, even load, gold to everyone, balanced left/right."""

from __future__ import annotations

import math
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from tunesmith.evaluate.human.assignment import plan_assignments


@settings(max_examples=150, deadline=None)
@given(items=st.integers(1, 120), gold=st.integers(0, 5), raters=st.integers(1, 7),
       overlap=st.floats(0, 1), per_item=st.integers(2, 4), seed=st.integers(0, 10**6))
def test_assignment_invariants(items, gold, raters, overlap, per_item, seed):
    plan = plan_assignments(items, gold, raters, overlap, per_item, seed)
    per = Counter(a.item for a in plan if a.item < items)
    shared = math.ceil(overlap * items) if min(per_item, raters) >= 2 else 0
    # every item at least once; `shared` of them by min(per_item, raters) raters, the rest once
    assert set(per) == set(range(items))
    expected = [min(per_item, raters)] * shared + [1] * (items - shared) if shared else [1] * items
    assert sorted(per.values(), reverse=True) == expected
    # no rater sees an item twice; every rater sees every gold item
    assert len({(a.item, a.rater) for a in plan}) == len(plan)
    for g in range(items, items + gold):
        assert sorted(a.rater for a in plan if a.item == g) == list(range(raters))
    # even load, and queues numbered 1..k
    load = Counter(a.rater for a in plan if a.item < items)
    assert max(load.values()) - min(load.get(r, 0) for r in range(raters)) <= 1
    for r in range(raters):
        assert sorted(a.sequence for a in plan if a.rater == r) == list(range(1, sum(a.rater == r for a in plan) + 1))
    # left/right balanced over the model items, and opposite sides for two raters of one item
    lefts = sum(a.first_on_left for a in plan if a.item < items)
    rights = sum(not a.first_on_left for a in plan if a.item < items)
    assert abs(lefts - rights) <= 2
    for item, count in per.items():
        if count == 2:
            assert {a.first_on_left for a in plan if a.item == item} == {True, False}


def test_the_plan_follows_from_the_seed():
    assert plan_assignments(30, 2, 3, 0.3, seed=7) == plan_assignments(30, 2, 3, 0.3, seed=7)
    assert plan_assignments(30, 2, 3, 0.3, seed=7) != plan_assignments(30, 2, 3, 0.3, seed=8)
