"""Fresh-label quality: the confidence sequence's error rate under daily looks, and a planted
10-point drop on Banking77 detected (no drop: nothing advised)."""

from __future__ import annotations

import numpy as np

from tunesmith.evaluate.metrics import choose_scorer
from tunesmith.monitor.quality import ALPHA, cs_radius, quality

from ._real import banking77


def test_confidence_sequence_holds_under_a_look_after_every_label():
    """2,000 streams of 2,000 labels at accuracy 0.85, checked after every label: the band
    misses the true mean at any look in at most alpha of the streams (a fixed-n interval checked
    this often would miss in far more)."""
    rng = np.random.default_rng(0)
    streams, n, p = 2000, 2000, 0.85
    x = rng.random((streams, n)) < p
    means = np.cumsum(x, axis=1) / np.arange(1, n + 1)
    radius = cs_radius(np.arange(1, n + 1))
    ever_missed = (np.abs(means - p) > radius).any(axis=1)
    assert ever_missed.mean() <= ALPHA
    fixed = 1.96 * np.sqrt(p * (1 - p) / np.arange(1, n + 1))
    assert (np.abs(means - p) > fixed)[:, 30:].any(axis=1).mean() > 2 * ALPHA  # why the sequence is needed


def _model_answers(truth: list[str], classes: list[str], accuracy: float, rng) -> list[str]:
    """A model that answers right with probability `accuracy`, else a wrong class."""
    answers = []
    for label in truth:
        if rng.random() < accuracy:
            answers.append(label)
        else:
            answers.append(rng.choice([c for c in classes if c != label]))
    return answers


def test_planted_drop_is_detected_and_no_drop_is_not():
    texts, truth = banking77("test")
    _, train_labels = banking77("train")
    classes = sorted(set(train_labels))
    scorer = choose_scorer(train_labels)
    rng = np.random.default_rng(1)
    idx = rng.choice(len(truth), 800, replace=False)
    labels = [truth[i] for i in idx]
    release = (0.88, "ev-release")
    dropped = quality(scorer, _model_answers(labels, classes, 0.78, rng), labels, release)
    steady = quality(scorer, _model_answers(labels, classes, 0.88, rng), labels, release)
    assert dropped.metric == "accuracy" and dropped.dropped
    assert not steady.dropped
    assert steady.sequence_interval[0] < 0.88 < steady.sequence_interval[1]


def _ever_rejects(p: float, mu0: float, streams: int, n: int, seed: int) -> float:
    from tunesmith.monitor.quality import BET_SHARES

    rng = np.random.default_rng(seed)
    x = (rng.random((streams, n)) < p).astype(float)
    lambdas = np.array(BET_SHARES) / (1 - mu0)
    log_factors = np.log1p((mu0 - x)[..., None] * lambdas)  # (streams, n, bets)
    wealth = np.exp(np.cumsum(log_factors, axis=1)).mean(axis=2)
    return float((wealth >= 1 / ALPHA).any(axis=1).mean())


def test_drop_test_holds_its_level_under_a_look_after_every_label():
    """At the boundary of the null (accuracy exactly release - tolerance), 2,000 streams of
    1,500 labels, a look after each: the test ever says "dropped" in at most alpha of them;
    above the boundary, less often still."""
    assert _ever_rejects(0.86, 0.86, 2000, 1500, 1) <= ALPHA
    assert _ever_rejects(0.90, 0.86, 1000, 1500, 2) <= ALPHA / 5


def test_drop_test_finds_a_ten_point_drop_within_a_few_hundred_labels():
    """Release 0.88, tolerance 0.02: a drop to 0.78 is found within 600 labels in nearly every
    stream (measured: 93% within 400)."""
    assert _ever_rejects(0.78, 0.86, 1000, 600, 3) >= 0.95


def test_wealth_matches_the_likelihood_ratio_for_right_or_wrong_scores():
    from tunesmith.monitor.quality import BET_SHARES, drop_wealth

    x = np.array([1, 0, 0, 1, 0], dtype=float)
    mu0 = 0.8
    q = mu0 * (1 - np.array(BET_SHARES) / (1 - mu0) * (1 - mu0))  # the alternative each bet stands for
    ratio = np.prod([np.where(xi == 1, q / mu0, (1 - q) / (1 - mu0)) for xi in x], axis=0).mean()
    assert abs(drop_wealth(x, mu0)[-1] - ratio) < 1e-9
