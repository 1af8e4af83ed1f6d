"""Quality on fresh labels: the model's logged answers scored against correct outputs people
gave for recent inputs, against the model's evaluation at release.

The score per example is the evaluation's own (tunesmith.evaluate.metrics, chosen from the
training outputs' shape): right or wrong for labels, the share of fields right for templates,
ROUGE-L for free text; the headline is their mean (accuracy for labels).

A monitor runs every day on a growing pile of labels, so a fixed-sample interval checked
daily would cry wolf far more often than its 5%. The interval shown is a confidence sequence
instead: a band around the running mean that holds at every sample size at once (the
two-sided normal-mixture boundary of Howard, Ramdas, McAuliffe and Sekhon (2021) for
observations in [0, 1], which are sub-Gaussian with variance factor 1/4):

    |S_n - n mu| <= sqrt((V + rho) * (log((V + rho) / rho) + 2 log(1 / alpha))),  V = n / 4

By Ville's inequality the chance that the band ever misses the true mean, however often it is
looked at, is at most alpha. The band is what the report shows; it is wide, since it must hold
for any distribution on [0, 1].

The decision is a sequential test of H0: quality >= mu0 = release value - tolerance, by betting
(Waudby-Smith and Ramdas 2023): the wealth

    W_n = mean over k of prod_{i <= n} (1 + lambda_k (mu0 - x_i)),   0 < lambda_k < 1 / (1 - mu0)

is a nonnegative supermartingale under H0 (each factor has expectation at most 1 when
E[x] >= mu0), so by Ville's inequality it ever reaches 1/alpha with probability at most alpha,
however often it is looked at. For right/wrong scores each factor is the likelihood ratio of
accuracy q_k = mu0 (1 - lambda_k (1 - mu0)) against mu0, so the test is as sharp as a
sequential probability ratio test over a grid of drops. Quality has dropped when W_n >= 1/alpha.
tests/monitor/test_quality.py checks both error rates by simulation with a look after every
label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..lazy import numpy as np

from ..evaluate.metrics import Scorer, headline_metrics, score_all
from ..evaluate.stats import wilson_interval

ALPHA = 0.05
TOLERANCE = 0.02  # a drop smaller than this (absolute) is not worth a re-tune
RHO = 12.5  # the mixture's spread: the band is tightest around n = 50 to 500 labels
# The bets, as shares of the largest allowed (1 / (1 - mu0)): small ones for small drops, large ones for large.
BET_SHARES = (0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7)


def cs_radius(n: np.ndarray | int, alpha: float = ALPHA, rho: float = RHO) -> np.ndarray | float:
    """Half-width of the confidence sequence for a mean of n values in [0, 1], at every n."""
    n = np.asarray(n, dtype=float)
    v = n / 4
    bound = np.sqrt((v + rho) * (np.log((v + rho) / rho) + 2 * math.log(1 / alpha)))
    radius = np.where(n > 0, bound / np.maximum(n, 1), np.inf)
    return float(radius) if radius.ndim == 0 else radius


def drop_wealth(values: np.ndarray, mu0: float) -> np.ndarray:
    """The betting wealth W_n against H0: mean >= mu0, after each of the values (in [0, 1], in order)."""
    values = np.asarray(values, dtype=float)
    if mu0 <= 0:
        return np.ones(len(values))  # no drop below zero to find
    lambdas = np.array(BET_SHARES) / max(1 - mu0, 1e-9)
    log_factors = np.log1p(np.outer(mu0 - values, lambdas))  # (n, bets); each factor > 0
    return np.exp(np.cumsum(log_factors, axis=0)).mean(axis=1)


@dataclass
class Quality:
    metric: str
    label: str
    n: int
    value: float
    interval: tuple[float, float]  # fixed-sample 95% interval (Wilson for binary scores)
    sequence_interval: tuple[float, float]  # the confidence sequence at n: valid under daily looks
    release_value: float | None
    release_eval: str | None
    tolerance: float
    wealth: float | None  # the betting test's W_n against release - tolerance (drop when >= 1/alpha)
    dropped: bool

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


def per_example_scores(scorer: Scorer, outputs: list[str], references: list[str]) -> tuple[np.ndarray, str, str]:
    """The headline metric's per-example values in [0, 1], with its name and label."""
    metric = headline_metrics(scorer, references)[0]
    values = metric.values(score_all(scorer, outputs, references)).astype(float)
    return np.clip(values, 0.0, 1.0), metric.name, metric.label


def quality(scorer: Scorer, outputs: list[str], references: list[str], release: tuple[float, str] | None,
            tolerance: float = TOLERANCE) -> Quality:
    """Quality of `outputs` against `references`, in the order they were served."""
    values, name, label = per_example_scores(scorer, outputs, references)
    n = len(values)
    mean = float(values.mean())
    if set(np.unique(values)) <= {0.0, 1.0}:
        interval = wilson_interval(int(values.sum()), n)
    else:
        se = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else float("inf")
        interval = (max(0.0, mean - 1.96 * se), min(1.0, mean + 1.96 * se))
    radius = cs_radius(n)
    sequence = (max(0.0, mean - radius), min(1.0, mean + radius))
    release_value, release_eval = release if release else (None, None)
    wealth = None
    if release_value is not None:
        wealth = float(drop_wealth(values, release_value - tolerance)[-1])
    dropped = wealth is not None and wealth >= 1 / ALPHA
    return Quality(name, label, n, mean, tuple(interval), sequence, release_value, release_eval, tolerance,
                   wealth, bool(dropped))
