"""Paired statistics against statsmodels, scipy and hand computations; the verdict."""

from __future__ import annotations

import numpy as np
import pytest

from tunesmith.evaluate import metrics as m
from tunesmith.evaluate import stats
from tunesmith.evaluate.verdict import verdict


def _binary(n_both: int, n_model_only: int, n_baseline_only: int, n_neither: int):
    model = [1] * n_both + [1] * n_model_only + [0] * n_baseline_only + [0] * n_neither
    baseline = [1] * n_both + [0] * n_model_only + [1] * n_baseline_only + [0] * n_neither
    return np.array(model), np.array(baseline)


@pytest.mark.parametrize("cells", [(10, 9, 2, 4), (3, 0, 0, 5), (0, 12, 0, 0), (20, 4, 6, 1)])
def test_mcnemar_exact_matches_statsmodels(cells):
    from statsmodels.stats.contingency_tables import mcnemar

    model, baseline = _binary(*cells)
    table = [[cells[0], cells[1]], [cells[2], cells[3]]]
    assert stats.mcnemar_exact_p(model, baseline) == pytest.approx(mcnemar(table, exact=True).pvalue)


def test_wilson_interval_known_value():
    # 8 of 10: Wilson's 95% interval is 0.4902 to 0.9433 (e.g. Newcombe 1998, table I)
    assert stats.wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)


def test_bootstrap_interval_agrees_with_scipy():
    from scipy.stats import bootstrap

    rng = np.random.default_rng(3)
    differences = rng.normal(0.1, 0.3, size=80)
    idx = stats.resample_indices(80, 4000, seed=0)
    ours = stats.percentile_interval(differences[idx].mean(axis=1))
    theirs = bootstrap((differences,), np.mean, n_resamples=4000, method="percentile", rng=np.random.default_rng(1))
    assert ours == pytest.approx((theirs.confidence_interval.low, theirs.confidence_interval.high), abs=0.01)


def test_bootstrap_p_by_hand():
    # shifted test: the share of resampled differences at least |observed| away from the observed one
    resampled = np.array([0.5, 0.1, 0.3, -0.1, 0.2])
    # resampled - 0.2 = 0.3, -0.1, 0.1, -0.3, 0.0: two are at least 0.2 from zero
    assert stats.bootstrap_p(resampled, 0.2) == pytest.approx((1 + 2) / 6)
    assert stats.bootstrap_p(np.full(1000, 1.0), 1.0) == pytest.approx(1 / 1001)
    assert stats.bootstrap_p(np.zeros(1000), 0.0) == 1.0
    with pytest.raises(ValueError):
        stats.resample_indices(10, 999)


def test_examples_needed_by_hand():
    # Connor (1987): p10 = 0.2, p01 = 0.1 -> (1.96 sqrt(.3) + 0.8416 sqrt(.29))^2 / 0.01 = 233.1 -> 234
    model, baseline = _binary(0, 20, 10, 70)
    assert stats.mcnemar_examples_needed(model, baseline) == 234
    assert stats.se_examples_needed(100, 0.05, 0.05) == int(np.ceil(100 * (1.959964 + 0.841621) ** 2))
    assert stats.mcnemar_examples_needed(*_binary(5, 0, 0, 5)) is None


def _comparisons(model_scores, baseline_scores, references):
    scorer = m.choose_scorer(references, "label")
    headline = m.headline_metrics(scorer, references)
    idx = stats.resample_indices(len(references))
    return [stats.compare(metric, m.score_all(scorer, model_scores, references),
                          m.score_all(scorer, baseline_scores, references), idx) for metric in headline]


def test_verdicts():
    refs = ["yes", "no"] * 20
    better = _comparisons(refs, ["no", "no"] * 20, refs)
    code, text = verdict(better, 40, "tuned", "base")
    assert code == "better" and "ready for limited production testing" in text and "p < 0.001" in text
    assert better[0].model == 1.0 and better[0].baseline == 0.5 and better[0].test == "mcnemar-exact"
    assert better[1].test == "paired-bootstrap" and better[1].significant

    code, text = verdict(_comparisons(["no", "no"] * 20, refs, refs), 40, "tuned", "base")
    assert code == "worse" and text.startswith("Worse")

    few = ["yes", "no", "yes", "no", "yes", "no", "no", "no"]  # 6 of 8 right against 5 of 8
    small = _comparisons(few[:4] + ["yes", "no", "yes", "yes"], ["yes", "no", "yes", "no", "no", "yes", "no", "no"],
                         ["yes", "no", "yes", "no", "yes", "no", "yes", "no"])
    code, text = verdict(small, 8, "tuned", "base")
    assert code == "no_difference" and "examples would be needed" in text
    assert small[0].examples_needed > 8

    code, text = verdict(_comparisons(refs, refs, refs), 40, "tuned", "base")
    assert code == "no_difference" and "score the same" in text
