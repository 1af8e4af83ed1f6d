"""Paired statistics: two models scored on the same examples.

Each model's metric gets a 95% interval; the difference (model minus baseline) gets a 95%
interval and a two-sided p-value:

- right/wrong metrics (accuracy, exact match, valid format, a field): McNemar's exact test
  on the examples where exactly one model is right (a binomial test with p = 1/2, which is
  statsmodels' `mcnemar(table, exact=True)`); each model's interval is Wilson's;
- every metric: a paired bootstrap over examples (2,000 resamples, seeded; the same
  resamples for both models, so the pairing is kept). Intervals are percentiles of the
  resampled metric or difference; for continuous metrics the p-value is that of the
  bootstrap test with the difference shifted to zero (Efron & Tibshirani, ch. 16): the share
  of resampled differences at least as far from the observed one as the observed one is
  from zero.

When a difference is not significant, `examples_needed` estimates how many examples would
detect it at the observed size (5% two-sided, 80% power): Connor's (1987) formula for
McNemar, and for other metrics the bootstrap standard error scaled by 1/√n.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..lazy import numpy as np

from .metrics import Metric

ALPHA = 0.05
POWER = 0.8
RESAMPLES = 2000
SEED = 0


def resample_indices(n: int, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """(resamples, n) example indices drawn with replacement: one bootstrap sample per row."""
    if resamples < 1000:
        raise ValueError("use at least 1,000 bootstrap resamples")
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def wilson_interval(successes: int, n: int) -> tuple[float, float]:
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(successes, n, alpha=ALPHA, method="wilson")
    return float(low), float(high)


def mcnemar_exact_p(model_right: np.ndarray, baseline_right: np.ndarray) -> float:
    """Two-sided exact McNemar p-value from per-example 0/1 outcomes."""
    from scipy.stats import binomtest

    only_model = int(((model_right == 1) & (baseline_right == 0)).sum())
    only_baseline = int(((model_right == 0) & (baseline_right == 1)).sum())
    if only_model + only_baseline == 0:
        return 1.0
    return float(binomtest(only_model, only_model + only_baseline, 0.5).pvalue)


def percentile_interval(values: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(values, [100 * ALPHA / 2, 100 * (1 - ALPHA / 2)])
    return float(low), float(high)


def bootstrap_p(resampled_differences: np.ndarray, observed: float) -> float:
    """Two-sided p of the shifted bootstrap test of "no difference"."""
    extreme = np.abs(resampled_differences - observed) >= abs(observed) - 1e-12
    return float((1 + extreme.sum()) / (1 + len(resampled_differences)))


def _z(p: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(p))


def mcnemar_examples_needed(model_right: np.ndarray, baseline_right: np.ndarray) -> int | None:
    """Connor (1987): examples for McNemar's test to detect the observed difference."""
    n = len(model_right)
    p10 = float(((model_right == 1) & (baseline_right == 0)).sum()) / n
    p01 = float(((model_right == 0) & (baseline_right == 1)).sum()) / n
    delta, discordant = p10 - p01, p10 + p01
    if delta == 0:
        return None
    z_a, z_b = _z(1 - ALPHA / 2), _z(POWER)
    return math.ceil((z_a * math.sqrt(discordant) + z_b * math.sqrt(max(discordant - delta**2, 0))) ** 2 / delta**2)


def se_examples_needed(n: int, standard_error: float, delta: float) -> int | None:
    """Examples to detect `delta` when the standard error at n examples is `standard_error`."""
    if delta == 0 or standard_error == 0:
        return None
    return math.ceil(n * ((_z(1 - ALPHA / 2) + _z(POWER)) * standard_error / abs(delta)) ** 2)


@dataclass
class Comparison:
    """One headline metric for a model and its baseline on the same examples."""

    metric: str
    label: str
    model: float
    model_interval: tuple[float, float]
    baseline: float
    baseline_interval: tuple[float, float]
    difference: float
    difference_interval: tuple[float, float]
    p_value: float
    test: str  # "mcnemar-exact" | "paired-bootstrap"
    examples_needed: int | None  # to detect this difference, when it is not significant
    shown: str = "percent"  # how values read (Metric.shown)
    directional: bool = True  # higher is better

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()} | {
            "significant": self.significant}


def single(metric: Metric, scores: list[dict], idx: np.ndarray) -> dict:
    """One model's metric and its 95% interval (no baseline)."""
    values = metric.values(scores)
    value = float(metric.statistic(values, np.arange(len(scores))))
    if metric.binary:
        interval = wilson_interval(int(values.sum()), len(values))
    else:
        interval = percentile_interval(metric.statistic(values, idx))
    return {"metric": metric.name, "label": metric.label, "value": value, "interval": list(interval),
            "shown": metric.shown}


def compare(metric: Metric, model_scores: list[dict], baseline_scores: list[dict], idx: np.ndarray) -> Comparison:
    """The metric for both models, their difference, its interval and p-value."""
    n = len(model_scores)
    a, b = metric.values(model_scores), metric.values(baseline_scores)
    whole = np.arange(n)
    model_value, baseline_value = float(metric.statistic(a, whole)), float(metric.statistic(b, whole))
    resampled_a, resampled_b = metric.statistic(a, idx), metric.statistic(b, idx)
    differences = resampled_a - resampled_b
    observed = model_value - baseline_value
    if metric.binary:
        intervals = wilson_interval(int(a.sum()), n), wilson_interval(int(b.sum()), n)
        p, test = mcnemar_exact_p(a, b), "mcnemar-exact"
        needed = mcnemar_examples_needed(a, b)
    else:
        intervals = percentile_interval(resampled_a), percentile_interval(resampled_b)
        p, test = bootstrap_p(differences, observed), "paired-bootstrap"
        needed = se_examples_needed(n, float(differences.std(ddof=1)), observed)
    return Comparison(
        metric=metric.name, label=metric.label, model=model_value, model_interval=intervals[0],
        baseline=baseline_value, baseline_interval=intervals[1], difference=observed,
        difference_interval=percentile_interval(differences), p_value=p, test=test,
        examples_needed=None if p < ALPHA else needed, shown=metric.shown, directional=metric.directional,
    )
