"""What the ratings say about the models: pairwise win rates, Bradley–Terry strengths,
mean scores, and a check for a preference for the left side.

Every interval is a 95% percentile bootstrap that resamples inputs, not ratings: the
ratings of one input (by several raters, or of several pairs of models) are not
independent, so the input is the unit that is drawn (a cluster bootstrap). Ties and
"both bad" count half a win for each side (as Chatbot Arena counts ties).

Bradley–Terry: P(i preferred to j) = σ(β_i - β_j), fitted by maximum likelihood with
Hunter's (2004) MM iterations; β is centred to mean 0 and also shown on the Elo-like scale
1000 + 400·β/ln 10. A weak prior (PRIOR_GAMES half-won games between every two models)
keeps a model that never won finite; it is negligible beside a few dozen real ratings.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from ...lazy import numpy as np

from ..stats import ALPHA, RESAMPLES, SEED, percentile_interval, wilson_interval

PRIOR_GAMES = 0.5
BT_ITERATIONS, BT_TOLERANCE = 500, 1e-9


@dataclass(frozen=True)
class Outcome:
    """One pairwise judgement in model terms: `score` is what `first` earned (1, 0.5 or 0)."""

    cluster: str  # the input
    first: str
    second: str
    score: float


def _clusters(keys: list[str]) -> tuple[np.ndarray, int]:
    index: dict[str, int] = {}
    codes = np.array([index.setdefault(k, len(index)) for k in keys], dtype=int)
    return codes, len(index)


def _cluster_draws(clusters: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, clusters) counts: how often each input is drawn in each bootstrap sample."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, clusters, size=(resamples, clusters))
    counts = np.zeros((resamples, clusters))
    np.add.at(counts, (np.repeat(np.arange(resamples), clusters), draws.ravel()), 1)
    return counts


def win_rate(outcomes: list[Outcome], model: str, other: str, resamples: int = RESAMPLES,
             seed: int = SEED) -> dict | None:
    """How often `model` was preferred to `other` (ties half), with a cluster-bootstrap interval."""
    oriented = [(o.cluster, o.score if o.first == model else 1 - o.score) for o in outcomes
                if {o.first, o.second} == {model, other}]
    if not oriented:
        return None
    codes, clusters = _clusters([c for c, _ in oriented])
    scores = np.array([s for _, s in oriented])
    wins_by_cluster = np.bincount(codes, weights=scores, minlength=clusters)
    ratings_by_cluster = np.bincount(codes, minlength=clusters).astype(float)
    counts = _cluster_draws(clusters, resamples, seed)
    resampled = (counts @ wins_by_cluster) / (counts @ ratings_by_cluster)
    rate = float(scores.sum() / len(scores))
    low, high = percentile_interval(resampled)
    return {"model": model, "other": other, "win_rate": rate, "interval": [low, high],
            "standard_error": float(resampled.std(ddof=1)), "ratings": len(scores), "inputs": clusters,
            "wins": int((scores == 1).sum()), "losses": int((scores == 0).sum()), "ties": int((scores == 0.5).sum())}


def _bt_fit(wins: np.ndarray, games: np.ndarray) -> np.ndarray:
    """β from (..., k, k) matrices: wins[i, j] = what i earned against j, games = wins + wins.T.
    Vectorised over leading axes, so all bootstrap samples are fitted at once."""
    k = wins.shape[-1]
    wins = wins + PRIOR_GAMES / 2 * (1 - np.eye(k))
    games = games + PRIOR_GAMES * (1 - np.eye(k))
    total_wins = wins.sum(axis=-1)
    p = np.ones(wins.shape[:-1])
    for _ in range(BT_ITERATIONS):
        denominator = (games / (p[..., :, None] + p[..., None, :])).sum(axis=-1)
        new = total_wins / denominator
        new /= np.exp(np.log(new).mean(axis=-1, keepdims=True))  # geometric mean 1: β centred
        if np.max(np.abs(new - p)) < BT_TOLERANCE:
            p = new
            break
        p = new
    return np.log(p)


def bradley_terry(outcomes: list[Outcome], models: list[str], resamples: int = RESAMPLES,
                  seed: int = SEED) -> list[dict]:
    """Bradley–Terry strengths of `models` with cluster-bootstrap intervals, strongest first."""
    index = {m: i for i, m in enumerate(models)}
    used = [o for o in outcomes if o.first in index and o.second in index]
    if not used:
        return []
    k = len(models)
    codes, clusters = _clusters([o.cluster for o in used])
    # Per input, a (k, k) matrix of what each model earned against each other.
    per_cluster = np.zeros((clusters, k, k))
    for code, o in zip(codes, used):
        i, j = index[o.first], index[o.second]
        per_cluster[code, i, j] += o.score
        per_cluster[code, j, i] += 1 - o.score
    wins = per_cluster.sum(axis=0)
    beta = _bt_fit(wins, wins + wins.T)
    counts = _cluster_draws(clusters, resamples, seed)
    resampled_wins = np.einsum("rc,cij->rij", counts, per_cluster)
    resampled = _bt_fit(resampled_wins, resampled_wins + np.swapaxes(resampled_wins, -1, -2))
    rows = []
    for i, model in enumerate(models):
        low, high = percentile_interval(resampled[:, i])
        rows.append({"model": model, "strength": float(beta[i]), "interval": [low, high],
                     "elo": _elo(beta[i]), "elo_interval": [_elo(low), _elo(high)]})
    return sorted(rows, key=lambda r: -r["strength"])


def _elo(beta: float) -> float:
    return float(1000 + 400 * beta / math.log(10))


@dataclass(frozen=True)
class Score:
    cluster: str
    model: str
    score: float  # 1 to 5


def mean_scores(scores: list[Score], models: list[str], resamples: int = RESAMPLES, seed: int = SEED) -> list[dict]:
    """Each model's mean score with a cluster-bootstrap interval."""
    rows = []
    for model in models:
        own = [s for s in scores if s.model == model]
        if not own:
            continue
        codes, clusters = _clusters([s.cluster for s in own])
        values = np.array([s.score for s in own])
        sums = np.bincount(codes, weights=values, minlength=clusters)
        ns = np.bincount(codes, minlength=clusters).astype(float)
        counts = _cluster_draws(clusters, resamples, seed)
        low, high = percentile_interval((counts @ sums) / (counts @ ns))
        rows.append({"model": model, "mean": float(values.mean()), "interval": [low, high], "ratings": len(values),
                     "inputs": clusters})
    return rows


def paired_difference(scores: list[Score], model: str, other: str, resamples: int = RESAMPLES,
                      seed: int = SEED) -> dict | None:
    """Mean over inputs of (model's mean score - other's mean score on that input), on the
    inputs where both were scored, with a cluster-bootstrap interval."""
    by_input: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for s in scores:
        if s.model in (model, other):
            by_input[s.cluster][s.model].append(s.score)
    differences = np.array([np.mean(v[model]) - np.mean(v[other]) for v in by_input.values()
                            if v.get(model) and v.get(other)])
    if len(differences) == 0:
        return None
    counts = _cluster_draws(len(differences), resamples, seed)
    resampled = (counts @ differences) / len(differences)
    low, high = percentile_interval(resampled)
    return {"model": model, "other": other, "difference": float(differences.mean()), "interval": [low, high],
            "standard_error": float(resampled.std(ddof=1)), "inputs": len(differences)}


def position_bias(choices: list[str]) -> dict | None:
    """Among strict preferences ("left" or "right"), the share of "left", its interval and the
    exact binomial test against one half. With the order balanced, a share far from one
    half means raters favour a side, not a model."""
    from scipy.stats import binomtest

    left = sum(c == "left" for c in choices)
    strict = left + sum(c == "right" for c in choices)
    if strict == 0:
        return None
    p = float(binomtest(left, strict, 0.5).pvalue)
    low, high = wilson_interval(left, strict)
    return {"left": left, "strict_preferences": strict, "left_share": left / strict, "interval": [low, high],
            "p_value": p, "biased": p < ALPHA}
