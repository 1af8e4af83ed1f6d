"""Agreement statistics against textbook values and reference implementations."""

from __future__ import annotations

import math
import warnings

import krippendorff
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss

from tunesmith.evaluate.human.agreement import cohen_kappa, fleiss_kappa, krippendorff_alpha, reading


def test_cohen_kappa_textbook_example():
    # Cohen's κ, the worked example on Wikipedia: 50 proposals, both yes 20, A yes B no 5,
    # A no B yes 10, both no 15: p_o = 0.7, p_e = 0.5, κ = 0.4.
    first = ["yes"] * 25 + ["no"] * 25
    second = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(first, second) == pytest.approx(0.4)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(1, 5)), min_size=2, max_size=40),
       st.sampled_from([None, "linear", "quadratic"]))
def test_cohen_kappa_matches_scikit_learn(pairs, weights):
    first, second = [a for a, _ in pairs], [b for _, b in pairs]
    ours = cohen_kappa(first, second, weights)
    labels = sorted(set(first) | set(second))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = cohen_kappa_score(first, second, weights=weights, labels=labels)
    if math.isnan(theirs):
        assert math.isnan(ours)
    else:
        assert ours == pytest.approx(theirs, abs=1e-9)


# Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters each, 5 categories; κ = 0.210.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]


def test_fleiss_kappa_textbook_example():
    assert fleiss_kappa(FLEISS_TABLE) == pytest.approx(0.210, abs=5e-4)
    assert fleiss_kappa(FLEISS_TABLE) == pytest.approx(statsmodels_fleiss(np.array(FLEISS_TABLE)), abs=1e-12)


def test_fleiss_kappa_needs_the_same_number_of_raters_per_item():
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa([[1, 1], [2, 1]])


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 6), st.integers(2, 30), st.integers(0, 2**32 - 1))
def test_fleiss_kappa_matches_statsmodels(raters, items, seed):
    rng = np.random.default_rng(seed)
    table = np.array([np.bincount(rng.integers(0, 3, raters), minlength=3) for _ in range(items)])
    ours, theirs = fleiss_kappa(table), statsmodels_fleiss(table)
    assert (math.isnan(ours) and math.isnan(theirs)) or ours == pytest.approx(theirs, abs=1e-9)


# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the example with missing
# values: 4 observers, 12 units; α = 0.743 nominal, 0.815 ordinal, 0.849 interval.
NAN = None
KRIPPENDORFF_EXAMPLE = [  # units x observers
    [1, 1, NAN, 1], [2, 2, 3, 2], [3, 3, 3, 3], [3, 3, 3, 3], [2, 2, 2, 2], [1, 2, 3, 4],
    [4, 4, 4, 4], [1, 1, 2, 1], [2, 2, 2, 2], [NAN, 5, 5, 5], [NAN, NAN, 1, 1], [NAN, NAN, 3, NAN],
]


@pytest.mark.parametrize("level, published", [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)])
def test_krippendorff_alpha_published_example(level, published):
    assert krippendorff_alpha(KRIPPENDORFF_EXAMPLE, level) == pytest.approx(published, abs=5e-4)


def _as_reliability_data(units):
    return np.array([[np.nan if v is None else v for v in unit] for unit in units], dtype=float).T


@settings(max_examples=80, deadline=None)
@given(st.integers(2, 5), st.integers(2, 25), st.integers(2, 5), st.floats(0, 0.5),
       st.sampled_from(["nominal", "ordinal", "interval"]), st.integers(0, 2**32 - 1))
def test_krippendorff_alpha_matches_the_krippendorff_package(raters, units, categories, missing, level, seed):
    rng = np.random.default_rng(seed)
    data = [[None if rng.random() < missing else int(rng.integers(1, categories + 1)) for _ in range(raters)]
            for _ in range(units)]
    ours = krippendorff_alpha(data, level)
    values = sorted({v for unit in data for v in unit if v is not None})
    pairable = sum(sum(v is not None for v in unit) >= 2 for unit in data)
    if math.isnan(ours):  # no unit with two values, or one value only: the package refuses or divides by 0
        assert pairable == 0 or len({v for unit in data if sum(x is not None for x in unit) >= 2
                                     for v in unit if v is not None}) < 2
        return
    theirs = krippendorff.alpha(reliability_data=_as_reliability_data(data), level_of_measurement=level,
                                value_domain=values)
    assert ours == pytest.approx(theirs, abs=1e-9)


def test_perfect_agreement_is_one_and_reading_follows_the_thresholds():
    assert krippendorff_alpha([[1, 1], [2, 2], [3, 3]], "ordinal") == pytest.approx(1.0)
    assert [reading(a) for a in (0.9, 0.8, 0.7, 0.667, 0.5, None)] == [
        "reliable", "reliable", "tentative", "tentative", "unreliable", "not measured"]
