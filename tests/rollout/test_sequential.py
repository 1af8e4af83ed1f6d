"""The confidence sequences and the gate's statistics are claims: checked here against known
values and by simulation (thousands of rollouts, looked at after every batch, vectorised)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from tunesmith.rollout import sequential as seq

ALPHA = 0.05
ROLLOUTS = 4000
BATCH = 20  # observations per arm between two looks
LOOKS = 100  # looks per rollout: up to 2,000 observations per arm


def _first_decisions(low, high, n_per_arm, delta=0.0):
    """Per rollout: +1 promoted (low > −δ), −1 rolled back (high < −δ), 0 undecided; and the look."""
    allowed = n_per_arm[None, :] >= seq.MIN_N
    promote = (low > -delta) & allowed
    rollback = (high < -delta) & allowed
    decided = promote | rollback
    first = np.where(decided.any(axis=1), decided.argmax(axis=1), -1)
    rows = np.arange(low.shape[0])
    outcome = np.where(first < 0, 0, np.where(promote[rows, first], 1, -1))
    return outcome, first


def test_halfwidth_matches_the_normal_mixture_boundary_by_hand():
    # α = 0.05, N* = 1000: ρ² = (−2 ln .05 + ln(−2 ln .05 + 1)) / 1000
    r2 = (-2 * np.log(0.05) + np.log(-2 * np.log(0.05) + 1)) / 1000
    n = 400
    expected = 2.0 * np.sqrt(2 * (n * r2 + 1) / (n**2 * r2) * np.log(np.sqrt(n * r2 + 1) / 0.05))
    assert seq.halfwidth(2.0, n, 0.05, 1000) == pytest.approx(expected)
    # wider than the fixed-n 95% interval (the price of peeking), narrower than a Bonferroni-like 10x
    assert 1.96 * 2 / np.sqrt(n) < expected < 4.5 * 2 / np.sqrt(n)
    assert np.isinf(seq.halfwidth(1.0, 0))


def test_two_sample_interval_from_arrays_equals_the_one_from_running_sums():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 300), rng.normal(0.2, 2, 200)
    interval = seq.two_sample_cs(a, b)
    estimate, low, high = seq.two_sample_cs_from_sums(300, a.sum(), (a**2).sum(), 200, b.sum(), (b**2).sum())
    assert (interval.estimate, interval.low, interval.high) == pytest.approx((estimate, low, high))


def test_a_a_two_sample_rollouts_looked_at_after_every_batch_decide_falsely_at_most_alpha():
    rng = np.random.default_rng(17)
    p = 0.7  # both arms: the same accuracy
    sums_a = rng.binomial(BATCH, p, (ROLLOUTS, LOOKS)).cumsum(axis=1)
    sums_b = rng.binomial(BATCH, p, (ROLLOUTS, LOOKS)).cumsum(axis=1)
    n = BATCH * np.arange(1, LOOKS + 1)
    _, low, high = seq.two_sample_cs_from_sums(n, sums_a, sums_a, n, sums_b, sums_b, ALPHA)  # x² = x for 0/1
    outcome, _ = _first_decisions(low, high, n)
    false_rate = np.mean(outcome != 0)
    assert false_rate <= ALPHA, false_rate
    # and the peeking is what the sequence pays for: a fixed-n 95% interval checked at every look errs far more often
    z = stats.norm.ppf(1 - ALPHA / 2)
    estimate = sums_b / n - sums_a / n
    se = np.sqrt((sums_a / n * (1 - sums_a / n) + sums_b / n * (1 - sums_b / n)) / n)
    naive = (np.abs(estimate) > z * se)[:, 1:].any(axis=1).mean()
    assert naive > 3 * ALPHA


def test_a_a_paired_shadow_rollouts_decide_falsely_at_most_alpha():
    rng = np.random.default_rng(18)
    pairs = BATCH * LOOKS
    production = rng.random((ROLLOUTS, pairs)) < 0.6
    same = rng.random((ROLLOUTS, pairs)) < 0.7  # the two models often agree on a request
    candidate = np.where(same, production, rng.random((ROLLOUTS, pairs)) < 0.6)
    diffs = candidate.astype(np.int8) - production.astype(np.int8)
    n = BATCH * np.arange(1, LOOKS + 1)
    total = diffs.cumsum(axis=1, dtype=np.int32)[:, n - 1]
    total_sq = np.abs(diffs).cumsum(axis=1, dtype=np.int32)[:, n - 1]
    _, low, high = seq.mean_cs_from_sums(n, total, total_sq, ALPHA)
    outcome, _ = _first_decisions(low, high, n)
    assert np.mean(outcome != 0) <= ALPHA


def test_a_real_difference_is_promoted_within_the_predicted_sample_size():
    rng = np.random.default_rng(19)
    p_a, p_b = 0.60, 0.68
    sd = np.sqrt(2 * (p_a * (1 - p_a) + p_b * (1 - p_b)))  # per observation of both arms together
    predicted_total = seq.observations_needed(p_b - p_a, sd, ALPHA, power=0.8)
    looks = int(np.ceil(predicted_total / (2 * BATCH)))
    sums_a = rng.binomial(BATCH, p_a, (ROLLOUTS, looks)).cumsum(axis=1)
    sums_b = rng.binomial(BATCH, p_b, (ROLLOUTS, looks)).cumsum(axis=1)
    n = BATCH * np.arange(1, looks + 1)
    _, low, high = seq.two_sample_cs_from_sums(n, sums_a, sums_a, n, sums_b, sums_b, ALPHA)
    outcome, _ = _first_decisions(low, high, n)
    assert np.mean(outcome == 1) >= 0.8  # the power the prediction was made for
    assert np.mean(outcome == -1) <= ALPHA / 2


def test_a_worse_candidate_is_rolled_back_not_promoted():
    rng = np.random.default_rng(20)
    sums_a = rng.binomial(BATCH, 0.7, (ROLLOUTS, LOOKS)).cumsum(axis=1)
    sums_b = rng.binomial(BATCH, 0.6, (ROLLOUTS, LOOKS)).cumsum(axis=1)
    n = BATCH * np.arange(1, LOOKS + 1)
    _, low, high = seq.two_sample_cs_from_sums(n, sums_a, sums_a, n, sums_b, sums_b, ALPHA)
    outcome, _ = _first_decisions(low, high, n)
    assert np.mean(outcome == -1) >= 0.95 and np.mean(outcome == 1) == 0


def test_observations_needed_shrinks_with_the_effect_and_is_none_without_one():
    assert seq.observations_needed(0.0, 1.0) is None
    big, small = seq.observations_needed(0.2, 1.0), seq.observations_needed(0.1, 1.0)
    assert seq.MIN_N <= big < small
    # at the predicted n the interval plus the power's margin just fits
    z = stats.norm.ppf(0.8)
    assert seq.halfwidth(1.0, small) + z / np.sqrt(small) <= 0.1 < seq.halfwidth(1.0, small - 1) + z / np.sqrt(small - 1)


def test_sample_ratio_check_flags_a_skewed_split_only():
    assert seq.sample_ratio_pvalue([900, 100], [0.9, 0.1]) > 0.5
    assert seq.sample_ratio_pvalue([800, 200], [0.9, 0.1]) < 1e-6
    assert seq.sample_ratio_pvalue([0, 0], [0.5, 0.5]) is None
    rng = np.random.default_rng(3)  # under a correct split the p-value is uniform: rejections at 5% ≈ 5%
    counts = rng.binomial(1000, 0.2, 2000)
    pvalues = [seq.sample_ratio_pvalue([1000 - c, c], [0.8, 0.2]) for c in counts]
    assert 0.03 < np.mean(np.array(pvalues) < 0.05) < 0.07
