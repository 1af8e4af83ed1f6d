"""Win rates, Bradley–Terry, mean scores, position bias and power advice: known values and simulations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize

from tunesmith.evaluate.human import preference
from tunesmith.evaluate.human.power import more_ratings
from tunesmith.evaluate.human.preference import (
    Outcome,
    Score,
    bradley_terry,
    mean_scores,
    paired_difference,
    position_bias,
    win_rate,
)


def test_win_rate_counts_ties_half_from_either_side():
    outcomes = [Outcome("x1", "A", "B", 1), Outcome("x2", "B", "A", 0), Outcome("x3", "A", "B", 1),
                Outcome("x4", "B", "A", 1), Outcome("x5", "A", "B", 0.5), Outcome("x6", "B", "A", 0.5)]
    result = win_rate(outcomes, "A", "B")
    assert result["win_rate"] == pytest.approx(4 / 6)
    assert (result["wins"], result["losses"], result["ties"], result["inputs"]) == (3, 1, 2, 6)
    assert win_rate(outcomes, "B", "A")["win_rate"] == pytest.approx(2 / 6)
    assert win_rate(outcomes, "A", "C") is None


def test_the_interval_resamples_inputs_not_ratings():
    """Copying every rating of an input three times adds no information: a bootstrap over
    ratings would narrow the interval by about √3; over inputs it stays the same."""
    rng = np.random.default_rng(0)
    once = [Outcome(f"x{i}", "A", "B", float(rng.random() < 0.6)) for i in range(80)]
    thrice = [o for o in once for _ in range(3)]
    assert win_rate(thrice, "A", "B")["interval"] == pytest.approx(win_rate(once, "A", "B")["interval"], rel=1e-9)


def test_win_rate_interval_covers_the_truth_about_95_percent_of_the_time():
    """Inputs differ in difficulty (two raters of one input agree more than chance): coverage
    stays near 95% because inputs are resampled."""
    rng = np.random.default_rng(1)
    mean_rate, spread, covered, runs = 0.62, 0.25, 0, 300
    truth = np.clip(mean_rate + rng.normal(0, spread, 200_000), 0, 1).mean()  # the population's win rate
    for run in range(runs):
        per_input = np.clip(mean_rate + rng.normal(0, spread, 60), 0, 1)  # each input's own preference
        wins = rng.random((60, 2)) < per_input[:, None]  # two raters per input
        outcomes = [Outcome(f"x{i}", "A", "B", float(w)) for i in range(60) for w in wins[i]]
        low, high = win_rate(outcomes, "A", "B", resamples=1000, seed=run)["interval"]
        covered += low <= truth <= high
    assert 0.90 <= covered / runs <= 0.985


def _bt_outcomes(beta, inputs, seed):
    rng = np.random.default_rng(seed)
    outcomes = []
    models = [f"m{i}" for i in range(len(beta))]
    for n in range(inputs):
        for i in range(len(beta)):
            for j in range(i + 1, len(beta)):
                p = 1 / (1 + math.exp(-(beta[i] - beta[j])))
                draw = rng.random()
                score = 0.5 if abs(draw - p) < 0.03 else float(draw < p)  # a few ties
                outcomes.append(Outcome(f"x{n}", models[i], models[j], score))
    return models, outcomes


def test_bradley_terry_recovers_simulated_strengths_within_their_intervals():
    """Over repeated simulated studies, each true strength lies inside its 95% interval about
    95% of the time, and the order of the models is recovered from a large study."""
    beta = np.array([-0.8, -0.2, 0.3, 0.7])  # centred, like the fit
    covered = total = 0
    for seed in range(80):
        models, outcomes = _bt_outcomes(beta, inputs=60, seed=seed)
        for row in bradley_terry(outcomes, models, resamples=1000, seed=seed):
            low, high = row["interval"]
            covered += low <= beta[models.index(row["model"])] <= high
            total += 1
    assert 0.90 <= covered / total <= 0.985
    models, outcomes = _bt_outcomes(beta, inputs=400, seed=100)
    fitted = bradley_terry(outcomes, models, resamples=1000)
    assert [row["model"] for row in fitted] == ["m3", "m2", "m1", "m0"]
    for row in fitted:
        assert row["strength"] == pytest.approx(beta[models.index(row["model"])], abs=0.2)


def test_bradley_terry_is_the_maximum_likelihood_fit(monkeypatch):
    """Without the prior, the MM iterations land on the likelihood's maximum (found here by scipy)."""
    monkeypatch.setattr(preference, "PRIOR_GAMES", 0.0)
    models, outcomes = _bt_outcomes([0.5, 0.0, -0.5], inputs=40, seed=4)
    index = {m: i for i, m in enumerate(models)}

    def negative_log_likelihood(free):
        b = np.concatenate([free, [-free.sum()]])
        total = 0.0
        for o in outcomes:
            d = b[index[o.first]] - b[index[o.second]]
            total -= o.score * -np.logaddexp(0, -d) + (1 - o.score) * -np.logaddexp(0, d)
        return total

    best = minimize(negative_log_likelihood, np.zeros(2), method="BFGS").x
    expected = np.concatenate([best, [-best.sum()]])
    fitted = {row["model"]: row["strength"] for row in bradley_terry(outcomes, models, resamples=1000)}
    assert [fitted[m] for m in models] == pytest.approx(expected, abs=1e-4)


def test_mean_scores_and_paired_difference_known_values():
    scores = [Score("x1", "A", 4), Score("x1", "B", 2), Score("x2", "A", 5), Score("x2", "B", 5),
              Score("x3", "A", 3), Score("x3", "B", 1), Score("x3", "A", 5), Score("x4", "B", 3)]
    means = {row["model"]: row for row in mean_scores(scores, ["A", "B"])}
    assert means["A"]["mean"] == pytest.approx(17 / 4) and means["B"]["mean"] == pytest.approx(11 / 4)
    d = paired_difference(scores, "A", "B")
    # Inputs with both: x1 (+2), x2 (0), x3 (mean A 4 - 1 = +3); x4 has B only.
    assert d["difference"] == pytest.approx(5 / 3) and d["inputs"] == 3
    assert d["interval"][0] <= d["difference"] <= d["interval"][1]


def test_position_bias_flags_a_side_preference_only_when_it_is_there():
    assert position_bias(["left"] * 32 + ["right"] * 8 + ["tie"] * 5)["biased"]
    fair = position_bias(["left"] * 21 + ["right"] * 19 + ["both_bad"] * 3)
    assert not fair["biased"] and fair["left_share"] == pytest.approx(21 / 40)
    assert position_bias(["tie", "both_bad"]) is None


def test_power_advice_formula_and_its_cases():
    # p̂ = 0.6 with SE 0.05 at 100 inputs: 100·((1.960 + 0.842)·0.05/0.1)² = 196.2 -> 197 inputs.
    advice = more_ratings(0.6, 0.5, [0.49, 0.70], 0.05, inputs=100, ratings=150)
    assert (advice["inputs_needed"], advice["more_inputs"], advice["more_ratings"]) == (197, 97, 146)
    assert more_ratings(0.7, 0.5, [0.6, 0.8], 0.05, 100, 100)["status"] == "decided"
    assert more_ratings(0.5, 0.5, [0.4, 0.6], 0.05, 100, 100)["status"] == "no_effect"


def test_power_advice_gives_about_80_percent_power_in_simulation():
    """Rate the advised number of inputs at the true preference: the interval excludes a tie
    in about 80% of repeated studies."""
    rng = np.random.default_rng(5)
    true_rate = 0.6
    pilot = [Outcome(f"x{i}", "A", "B", float(rng.random() < true_rate)) for i in range(60)]
    w = win_rate(pilot, "A", "B")
    # The advice from a pilot at the true rate (the advice assumes the preference stays this size).
    advice = more_ratings(true_rate, 0.5, [0.45, 0.75], w["standard_error"] * math.sqrt(
        true_rate * (1 - true_rate) / (w["win_rate"] * (1 - w["win_rate"]))), 60, 60)
    n = advice["inputs_needed"]
    decided, runs = 0, 200
    for run in range(runs):
        study = [Outcome(f"x{i}", "A", "B", float(rng.random() < true_rate)) for i in range(n)]
        low, _ = win_rate(study, "A", "B", resamples=1000, seed=run)["interval"]
        decided += low > 0.5
    assert 0.70 <= decided / runs <= 0.90
