"""Output drift: PSI and chi-squared against the training outputs, on Banking77's labels."""

from __future__ import annotations

from collections import Counter

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from tunesmith.monitor.outputs import PSI_MAJOR, OutputProfile, compare_counts, psi

from ._real import banking77


@given(st.lists(st.integers(0, 50), min_size=2, max_size=12), st.lists(st.integers(0, 50), min_size=2, max_size=12))
def test_psi_is_non_negative_and_zero_for_the_same_counts(a, b):
    n = min(len(a), len(b))
    ref, cur = np.array(a[:n], dtype=float), np.array(b[:n], dtype=float)
    assert psi(ref, cur) >= -1e-12  # a symmetrised Kullback-Leibler divergence
    assert abs(psi(ref, ref)) < 1e-12


def test_psi_known_value():
    # Shares (0.5, 0.5) against (0.9, 0.1), counts large enough that the smoothing is negligible.
    value = psi(np.array([50_000.0, 50_000.0]), np.array([90_000.0, 10_000.0]))
    expected = (0.9 - 0.5) * np.log(0.9 / 0.5) + (0.1 - 0.5) * np.log(0.1 / 0.5)
    assert abs(value - expected) < 1e-3


def test_held_out_labels_are_stable_and_a_collapse_is_not():
    _, train = banking77("train")
    _, test = banking77("test")
    profile = OutputProfile(train)
    assert profile.kind == "label"
    rng = np.random.default_rng(0)
    sample = [test[i] for i in rng.choice(len(test), 1000, replace=False)]
    steady = profile.compare(sample)
    # Banking77's test split is balanced (40 a class) and its train split is not (35-187): a
    # real, small shift, plus the noise of 77 classes in 1,000 answers.
    assert steady["valid_share"] == 1.0 and steady["psi"] < PSI_MAJOR
    assert steady["psi"] < 2 * steady["labels"]["psi_noise"]
    # The model starts answering one class for a third of requests, and a tenth off the label shape.
    collapsed = [("card_arrival" if k % 3 == 0 else f"Intent: {o}" if k % 10 == 1 else o) for k, o in enumerate(sample)]
    shifted = profile.compare(collapsed)
    assert shifted["psi"] > PSI_MAJOR and shifted["psi"] > 4 * steady["psi"] and shifted["labels"]["chi2_p"] < 1e-6
    assert abs(shifted["valid_share"] - 0.9) < 0.05
    assert shifted["labels"]["moved"][0]["value"] == "card_arrival"


def test_refusals_and_length_are_counted():
    profile = OutputProfile(["Category: billing\nPriority: high"] * 20 + ["Category: login\nPriority: low"] * 20)
    result = profile.compare(["I'm sorry, I can't help with that."] * 5 + ["Category: billing\nPriority: high"] * 5)
    assert profile.kind == "template" and result["refusal_share"] == 0.5 and result["valid_share"] == 0.5
    assert compare_counts(Counter(a=5), Counter(a=5))["psi"] == 0.0
