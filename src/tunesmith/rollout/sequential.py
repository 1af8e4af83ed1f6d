"""Confidence sequences that stay valid however often someone looks, and the sample-ratio check.

A confidence sequence is a sequence of intervals that contain the true value at every n at
once with probability 1 − α, so checking after every request inflates nothing. We use the
asymptotic confidence sequence of Waudby-Smith et al. (2023, "Time-uniform central limit
theory and asymptotic confidence sequences", the normal-mixture boundary, as GrowthBook and
PostHog use it): after n observations with mean x̄ and standard deviation σ̂,

    x̄ ± σ̂ · √( 2(nρ² + 1) / (n²ρ²) · ln( √(nρ² + 1) / α ) )

ρ sets the sample size where the intervals are tightest; ρ² = (−2 ln α + ln(−2 ln α + 1)) / N*
puts it at a planned N* (the paper's eq. for the optimal ρ; GrowthBook tunes N* = 5,000).

- paired (shadow): the mean of per-pair differences, candidate − production.
- two-sample (A/B): the difference of the arms' means; its variance per observation,
  n·(s²_a/n_a + s²_b/n_b) with n = n_a + n_b, takes the place of σ̂² (the same asymptotic
  argument; tests/rollout/test_simulation.py checks the error rate by simulation).

Every function broadcasts over numpy arrays, so a simulation of thousands of rollouts checked
after every batch is a handful of array operations.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..lazy import numpy as np

DEFAULT_ALPHA = 0.05
DEFAULT_PLANNED_N = 1000  # labeled observations where the intervals are tightest
MIN_N = 30  # no decision on fewer observations per side: the asymptotics need some


def rho_squared(alpha: float, planned_n: float) -> float:
    log_term = -2 * np.log(alpha)
    return float((log_term + np.log(log_term + 1)) / planned_n)


def halfwidth(sd, n, alpha: float = DEFAULT_ALPHA, planned_n: float = DEFAULT_PLANNED_N):
    """Half the width of the confidence sequence at n observations with standard deviation sd."""
    sd, n = np.asarray(sd, dtype=float), np.asarray(n, dtype=float)
    r2 = rho_squared(alpha, planned_n)
    with np.errstate(divide="ignore", invalid="ignore"):
        width = sd * np.sqrt(2 * (n * r2 + 1) / (n ** 2 * r2) * np.log(np.sqrt(n * r2 + 1) / alpha))
    return np.where(n > 0, width, np.inf)


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    n: int  # observations (pairs, or both arms together)
    sd: float  # standard deviation per observation that the width rests on

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(self).items()}


def _interval(estimate: float, sd: float, n: int, alpha: float, planned_n: float) -> Interval:
    width = float(halfwidth(sd, n, alpha, planned_n))
    return Interval(float(estimate), float(estimate - width), float(estimate + width), int(n), float(sd))


def mean_cs(values, alpha: float = DEFAULT_ALPHA, planned_n: float = DEFAULT_PLANNED_N) -> Interval:
    """For the mean of one sample (a paired difference is one)."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n < 2:
        return Interval(float(values.mean()) if n else float("nan"), -np.inf, np.inf, n, float("nan"))
    return _interval(values.mean(), values.std(ddof=1), n, alpha, planned_n)


def two_sample_cs(production, candidate, alpha: float = DEFAULT_ALPHA,
                  planned_n: float = DEFAULT_PLANNED_N) -> Interval:
    """For mean(candidate) − mean(production), independent samples."""
    a, b = np.asarray(production, dtype=float), np.asarray(candidate, dtype=float)
    n = len(a) + len(b)
    if len(a) < 2 or len(b) < 2:
        estimate = b.mean() - a.mean() if len(a) and len(b) else float("nan")
        return Interval(float(estimate), -np.inf, np.inf, n, float("nan"))
    sd = np.sqrt(n * (a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))
    return _interval(b.mean() - a.mean(), sd, n, alpha, planned_n)


def two_sample_cs_from_sums(n_a, sum_a, sumsq_a, n_b, sum_b, sumsq_b, alpha: float = DEFAULT_ALPHA,
                            planned_n: float = DEFAULT_PLANNED_N):
    """(estimate, low, high) from running sums, broadcasting: what the simulations use."""
    n_a, n_b = np.asarray(n_a, dtype=float), np.asarray(n_b, dtype=float)
    mean_a, mean_b = sum_a / n_a, sum_b / n_b
    var_a = np.maximum(sumsq_a - n_a * mean_a ** 2, 0) / np.maximum(n_a - 1, 1)
    var_b = np.maximum(sumsq_b - n_b * mean_b ** 2, 0) / np.maximum(n_b - 1, 1)
    n = n_a + n_b
    width = halfwidth(np.sqrt(n * (var_a / n_a + var_b / n_b)), n, alpha, planned_n)
    estimate = mean_b - mean_a
    return estimate, estimate - width, estimate + width


def mean_cs_from_sums(n, total, total_sq, alpha: float = DEFAULT_ALPHA, planned_n: float = DEFAULT_PLANNED_N):
    """(estimate, low, high) of one sample's mean from running sums, broadcasting."""
    n = np.asarray(n, dtype=float)
    mean = total / n
    var = np.maximum(total_sq - n * mean ** 2, 0) / np.maximum(n - 1, 1)
    width = halfwidth(np.sqrt(var), n, alpha, planned_n)
    return mean, mean - width, mean + width


def observations_needed(margin: float, sd: float, alpha: float = DEFAULT_ALPHA,
                        planned_n: float = DEFAULT_PLANNED_N, power: float = 0.8) -> int | None:
    """About how many observations until an interval around a true difference `margin` away from
    the boundary clears it with probability `power`: the smallest n with
    halfwidth(n) + z_power·sd/√n ≤ margin. None when margin ≤ 0 (it would never clear)."""
    if not margin > 0 or not np.isfinite(sd):
        return None
    if sd == 0:
        return MIN_N
    from scipy import stats  # heavy: imported when first needed

    z = stats.norm.ppf(power)
    low, high = 2, 2
    while float(halfwidth(sd, high, alpha, planned_n)) + z * sd / np.sqrt(high) > margin:
        low, high = high, high * 2
        if high > 10**12:
            return None
    while low < high:  # the smallest n that clears, by bisection (the width shrinks with n past small n)
        middle = (low + high) // 2
        if float(halfwidth(sd, middle, alpha, planned_n)) + z * sd / np.sqrt(middle) <= margin:
            high = middle
        else:
            low = middle + 1
    return max(int(high), MIN_N)


def sample_ratio_pvalue(counts: list[int], shares: list[float]) -> float | None:
    """χ² goodness of fit of assignment counts against the configured shares (sample-ratio mismatch);
    None when there is nothing to test."""
    counts_arr, shares_arr = np.asarray(counts, dtype=float), np.asarray(shares, dtype=float)
    keep = shares_arr > 0
    if counts_arr.sum() == 0 or keep.sum() < 2 or counts_arr[~keep].sum() > 0:
        return None if counts_arr[~keep].sum() == 0 else 0.0
    expected = shares_arr[keep] / shares_arr[keep].sum() * counts_arr[keep].sum()
    from scipy import stats  # heavy: imported when first needed

    return float(stats.chisquare(counts_arr[keep], expected).pvalue)
