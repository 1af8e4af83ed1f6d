"""Agreement between raters: Cohen's κ (two raters), Fleiss' κ (a fixed number of raters
per item) and Krippendorff's α (any number of raters, missing ratings allowed).

All three are 1 - observed disagreement / disagreement expected by chance: 1 is perfect
agreement, 0 is what raters who ignored the items would reach, below 0 is systematic
disagreement. How to read α (Krippendorff 2004): at least 0.8 reliable, 0.667 to 0.8
tentative, below 0.667 do not rely on the ratings.

Krippendorff's α is computed from the coincidence matrix (Krippendorff, "Computing
Krippendorff's Alpha-Reliability", 2011): every ordered pair of values that two different
raters gave one unit adds 1/(m_u - 1) to o[c, k], where m_u is the number of values the
unit has; n_c are the matrix's margins. Then α = 1 - (n - 1) Σ o·δ² / Σ n_c n_k δ².
The distances δ²: nominal 0 or 1; ordinal (Σ_{g=c..k} n_g - (n_c + n_k)/2)², over the
values in rank order; interval (c - k)². The `krippendorff` package is the reference in
the tests.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

from ...lazy import numpy as np

RELIABLE, TENTATIVE = 0.8, 0.667
LEVELS = ("nominal", "ordinal", "interval")


def reading(alpha: float | None) -> str:
    """"reliable", "tentative" or "unreliable" by Krippendorff's thresholds; "not measured" without α."""
    if alpha is None or math.isnan(alpha):
        return "not measured"
    if alpha >= RELIABLE:
        return "reliable"
    return "tentative" if alpha >= TENTATIVE else "unreliable"


def krippendorff_alpha(units: Sequence[Sequence[Hashable | None]], level: str = "nominal") -> float:
    """α over `units`, each the values the raters gave it (None: not rated by that rater).

    Units with fewer than two values carry no pair and are left out. Returns NaN when no
    unit has two values or all values are the same (no disagreement is possible)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}")
    pairable = [[v for v in unit if v is not None and not _is_nan(v)] for unit in units]
    pairable = [values for values in pairable if len(values) >= 2]
    categories = sorted({v for values in pairable for v in values})
    if len(categories) < 2:
        return float("nan")
    index = {c: i for i, c in enumerate(categories)}
    o = np.zeros((len(categories), len(categories)))
    for values in pairable:
        counts = np.bincount([index[v] for v in values], minlength=len(categories)).astype(float)
        # Pairs from different raters: all ordered pairs less each value paired with itself.
        o += (np.outer(counts, counts) - np.diag(counts)) / (len(values) - 1)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    delta2 = _distances(categories, n_c, level)
    expected = (np.outer(n_c, n_c) * delta2).sum()
    if expected == 0:
        return float("nan")
    return float(1 - (n - 1) * (o * delta2).sum() / expected)


def _distances(categories: list, n_c: np.ndarray, level: str) -> np.ndarray:
    k = len(categories)
    if level == "nominal":
        return 1.0 - np.eye(k)
    if level == "interval":
        values = np.asarray(categories, dtype=float)
        return (values[:, None] - values[None, :]) ** 2
    cumulative = np.concatenate([[0.0], np.cumsum(n_c)])  # cumulative[i] = Σ n_g for g < i
    d = np.zeros((k, k))
    for c in range(k):
        for j in range(c, k):
            d[c, j] = d[j, c] = (cumulative[j + 1] - cumulative[c] - (n_c[c] + n_c[j]) / 2) ** 2
    return d


def cohen_kappa(first: Sequence[Hashable], second: Sequence[Hashable], weights: str | None = None) -> float:
    """Cohen's κ of two raters on the same items; `weights` "linear" or "quadratic" for an
    ordinal scale (the categories' rank order gives the distance). NaN when chance
    agreement is perfect (one category only)."""
    if len(first) != len(second):
        raise ValueError("the two raters must rate the same items")
    if not first:
        return float("nan")
    categories = sorted(set(first) | set(second))
    index = {c: i for i, c in enumerate(categories)}
    k = len(categories)
    observed = np.zeros((k, k))
    for a, b in zip(first, second):
        observed[index[a], index[b]] += 1
    observed /= observed.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    ranks = np.arange(k)
    if weights is None:
        w = 1.0 - np.eye(k)
    elif weights == "linear":
        w = np.abs(ranks[:, None] - ranks[None, :]).astype(float)
    elif weights == "quadratic":
        w = ((ranks[:, None] - ranks[None, :]) ** 2).astype(float)
    else:
        raise ValueError("weights must be None, 'linear' or 'quadratic'")
    chance = (w * expected).sum()
    return float("nan") if chance == 0 else float(1 - (w * observed).sum() / chance)


def fleiss_kappa(counts: np.ndarray | Sequence[Sequence[int]]) -> float:
    """Fleiss' κ from an (items, categories) table of how many raters put each item in each
    category; every item needs the same number of raters. NaN when chance agreement is perfect."""
    table = np.asarray(counts, dtype=float)
    if table.ndim != 2 or table.shape[0] == 0:
        return float("nan")
    raters = table.sum(axis=1)
    if not np.all(raters == raters[0]) or raters[0] < 2:
        raise ValueError("Fleiss' kappa needs the same number (two or more) of raters on every item")
    m = raters[0]
    p_item = ((table * (table - 1)).sum(axis=1)) / (m * (m - 1))
    p_category = table.sum(axis=0) / table.sum()
    p_observed, p_chance = p_item.mean(), (p_category**2).sum()
    return float("nan") if p_chance == 1 else float((p_observed - p_chance) / (1 - p_chance))


def _is_nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)
