"""Input drift on real shift: a dataset's own held-out split (no drift), another dataset
(drift), a growing mixture (a forecast that comes earlier as the share grows)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache

import numpy as np
import pytest

from tunesmith.monitor import advice, drift
from tunesmith.monitor.coverage import ReferenceIndex, coverage

from ._real import banking77, bitext, clinc150, restaurant8k

N = 200


def _draw(texts: list[str], n: int, rng: np.random.Generator) -> list[str]:
    return [texts[i] for i in rng.choice(len(texts), n, replace=False)]


def test_held_out_split_raises_few_false_alarms():
    """Banking77's train split against its test inputs, 200 a side, 200 draws: drift is
    reported in at most alpha of them (measured: 1 in 100 before this test was written)."""
    train, _ = banking77("train")
    test, _ = banking77("test")
    rng = np.random.default_rng(2026)
    draws = 100
    alarms = sum(drift.two_sample_test(_draw(train, N, rng), _draw(test, N, rng), seed=d).drifted
                 for d in range(draws))
    assert alarms / draws <= drift.ALPHA


def test_two_halves_of_one_split_keep_the_p_value_honest():
    """Exchangeable samples (two halves of the train split): the p-value against AUC 0.5 is
    below alpha in at most about alpha of draws (normal approximation, no permutations)."""
    train, _ = banking77("train")
    rng = np.random.default_rng(7)
    draws = 150
    p = []
    for d in range(draws):
        order = rng.permutation(len(train))[: 2 * N]
        p.append(drift.two_sample_test([train[i] for i in order[:N]], [train[i] for i in order[N:]], seed=d,
                                       permutations=0).p_value)
    # 150 draws: a rate of 5% gives at most 13 with probability 0.97.
    assert np.sum(np.array(p) < drift.ALPHA) <= 13


@pytest.mark.parametrize("other", ["clinc150", "bitext"])
def test_another_domain_is_detected_at_200_requests(other):
    train, _ = banking77("train")
    current = clinc150("test") if other == "clinc150" else bitext()
    rng = np.random.default_rng(3)
    draws = 20
    detected = [drift.two_sample_test(_draw(train, 400, rng), _draw(current, N, rng), seed=d) for d in range(draws)]
    power = np.mean([r.drifted for r in detected])
    assert power >= 0.95
    assert detected[0].current_terms and detected[0].examples
    assert {r.test for r in detected} == {"permutation"}  # 200 requests: the small-sample check decides


def test_coverage_finds_the_other_domain_and_not_the_held_out_split():
    test, _ = banking77("test")
    index = _index()
    rng = np.random.default_rng(5)
    same = coverage(index, _draw(test, 500, rng))
    mixed_inputs = _draw(test, 400, rng) + _draw(restaurant8k("test"), 100, rng)
    mixed = coverage(index, mixed_inputs)
    assert same.far_share < 0.1 and same.excess_far_share < 0.05
    assert mixed.excess_far_share > 0.05  # measured 0.074: half the restaurant inputs share words with banking ones
    assert mixed.gaps, "the far inputs should form at least one gap"
    gap_texts = {q["text"] for g in mixed.gaps for q in g.queue}
    other = set(mixed_inputs[400:])
    assert len(gap_texts & other) / len(gap_texts) > 0.7  # the queue is mostly the other domain


@lru_cache
def _index() -> ReferenceIndex:
    return ReferenceIndex(banking77("train")[0])


def _mixture_forecast(growth_per_day: float, rng: np.random.Generator) -> datetime | None:
    """Seven daily windows whose share of restaurant-booking inputs grows by `growth_per_day`."""
    test, _ = banking77("test")
    index = _index()
    now = datetime(2026, 12, 7, tzinfo=timezone.utc)
    times, uncovered = [], []
    for day in range(7):
        share = growth_per_day * day
        n_other = int(round(share * 600))
        inputs = _draw(test, 600 - n_other, rng) + _draw(restaurant8k("test"), n_other, rng)
        times.append(now - timedelta(days=6 - day))
        uncovered.append(coverage(index, inputs).excess_far_share)
    result = advice.forecast(times, uncovered, now)
    return result.date if result else None


def test_forecast_comes_earlier_as_the_share_grows_faster():
    rng = np.random.default_rng(11)
    slow, fast, faster = (_mixture_forecast(g, rng) for g in (0.015, 0.025, 0.04))
    assert slow is not None and fast is not None and faster is not None
    assert faster < fast < slow


def test_no_mixture_gives_no_forecast():
    rng = np.random.default_rng(12)
    assert _mixture_forecast(0.0, rng) is None
