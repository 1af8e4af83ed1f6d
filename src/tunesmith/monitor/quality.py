"""Quality on fresh labels: the model's logged answers scored against correct outputs people
gave for recent inputs, against the model's evaluation at release.

The score per example is the evaluation's own (tunesmith.evaluate.metrics, chosen from the
training outputs' shape): right or wrong for labels, the share of fields right for templates,
ROUGE-L for free text; the headline is their mean (accuracy for labels).

A monitor runs every day on a growing pile of labels, so a fixed-sample interval checked
daily would cry wolf far more often than its 5%. The decision uses a confidence sequence
instead: a band around the running mean that holds at every sample size at once (the
two-sided normal-mixture boundary of Howard, Ramdas, McAuliffe and Sekhon (2021) for
observations in [0, 1], which are sub-Gaussian with variance factor 1/4):

    |S_n - n mu| <= sqrt((V + rho) * (log((V + rho) / rho) + 2 log(1 / alpha))),  V = n / 4

By Ville's inequality the chance that the band ever misses the true mean, however often it is
looked at, is at most alpha. Quality has dropped when the band's upper end lies below the
release value minus the tolerance. tests/monitor/test_quality.py checks the error rate by
simulation with a look after every label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..evaluate.metrics import Scorer, headline_metrics, score_all
from ..evaluate.stats import wilson_interval

ALPHA = 0.05
TOLERANCE = 0.02  # a drop smaller than this (absolute) is not worth a re-tune
RHO = 12.5  # the mixture's spread: the band is tightest around n = 50 to 500 labels


def cs_radius(n: np.ndarray | int, alpha: float = ALPHA, rho: float = RHO) -> np.ndarray | float:
    """Half-width of the confidence sequence for a mean of n values in [0, 1], at every n."""
    n = np.asarray(n, dtype=float)
    v = n / 4
    bound = np.sqrt((v + rho) * (np.log((v + rho) / rho) + 2 * math.log(1 / alpha)))
    radius = np.where(n > 0, bound / np.maximum(n, 1), np.inf)
    return float(radius) if radius.ndim == 0 else radius


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
    dropped: bool  # the sequence's upper end below release - tolerance

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
    dropped = release_value is not None and sequence[1] < release_value - tolerance
    return Quality(name, label, n, mean, tuple(interval), sequence, release_value, release_eval, tolerance,
                   bool(dropped))
