"""A rating task's results: what the raters preferred, how far they agree, the verdict sentence.

    results = task_results("rt-2026…")
    print(results["verdict_text"])
    human_verdict("ev-2026…")   # the sentence for the newest rated task of an evaluation run

Gold items are left out of every model statistic: they measure the raters, not the models.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict

from ...store import queries, schema
from . import agreement as ag
from .power import more_ratings
from .preference import (
    Outcome,
    Score,
    bradley_terry,
    mean_scores,
    paired_difference,
    position_bias,
    win_rate,
)
from .tasks import GOLD_PREFIX

CHOICE_SCORE = {"left": 1.0, "right": 0.0, "tie": 0.5, "both_bad": 0.5}  # what the left output earned


def task_results(task_id: str, resamples: int = 2000, seed: int = 0) -> dict:
    """Everything `rate show` prints and `--json` gives, for one task."""
    task = queries.get_rating_task(task_id)
    items = {item.id: item for item in queries.rating_items(task.id)}
    raters = {r.id: r.name for r in queries.task_raters(task.id)}
    ratings = queries.task_ratings(task.id)
    assignments = queries.rating_assignments(task.id)
    keys, labels = task.models["keys"], task.models["labels"]
    model_ratings = [r for r in ratings if not items[r.item_id].first_model.startswith(GOLD_PREFIX)]

    results: dict = {
        "task": {"id": task.id, "mode": task.mode, "status": task.status, "eval_run_id": task.eval_run_id,
                 "models": [labels[k] for k in keys], "created_at": task.created_at.isoformat(),
                 "settings": task.settings},
        "progress": _progress(assignments, ratings, raters),
        "pairwise": None, "scale": None, "agreement": {}, "raters": [], "power": None, "verdict_text": None,
    }
    if task.mode in ("pairwise", "both"):
        outcomes = [Outcome(items[r.item_id].example_id, r.left_model, r.right_model, CHOICE_SCORE[r.choice])
                    for r in model_ratings if r.choice]
        pairs = [win_rate(outcomes, a, b, resamples, seed) for a, b in itertools.combinations(keys, 2)]
        for pair in filter(None, pairs):  # how many more ratings would settle this pair
            pair["power"] = more_ratings(pair["win_rate"], 0.5, pair["interval"], pair["standard_error"],
                                         pair["inputs"], pair["ratings"])
        results["pairwise"] = {
            "win_rates": [_labelled(p, labels) for p in pairs if p],
            "bradley_terry": ([_labelled(row, labels) for row in bradley_terry(outcomes, keys, resamples, seed)]
                              if len(keys) >= 3 and outcomes else None),
            "choices": dict(Counter(r.choice for r in model_ratings if r.choice)),
            "position_bias": position_bias([r.choice for r in model_ratings if r.choice]),
        }
        results["agreement"]["pairwise"] = _agreement(_pairwise_units(model_ratings, items), "nominal", None, raters)
    if task.mode in ("scale", "both"):
        scores = [Score(items[r.item_id].example_id, model, score) for r in model_ratings
                  for model, score in ((r.left_model, r.left_score), (r.right_model, r.right_score)) if score]
        results["scale"] = {
            "means": [_labelled(row, labels) for row in mean_scores(scores, keys, resamples, seed)],
            "differences": [_labelled(d, labels) for a, b in itertools.combinations(keys, 2)
                            if (d := paired_difference(scores, a, b, resamples, seed))],
        }
        results["agreement"]["scale"] = _agreement(_scale_units(model_ratings), "ordinal", "quadratic", raters)
    results["raters"] = _per_rater(ratings, items, raters)
    results["power"], results["verdict_text"] = _verdict(results, keys, labels)
    return results


def human_verdict(eval_run_id: str) -> str | None:
    """The human verdict of an evaluation run in one sentence (from its newest rating task
    with ratings), or None when nobody has rated its outputs yet. For `models show` and
    the web app's evaluation page."""
    for task in queries.list_rating_tasks(eval_run_id=eval_run_id):
        if queries.task_ratings(task.id):
            return task_results(task.id)["verdict_text"]
    return None


# --------------------------------------------------------------------------- pieces


def _labelled(row: dict, labels: dict[str, str]) -> dict:
    return {k: labels.get(v, v) if k in ("model", "other") else v for k, v in row.items()}


def _progress(assignments, ratings: list[schema.Rating], raters: dict[int, str]) -> dict:
    total = Counter(a.rater_id for a in assignments)
    done = Counter(r.rater_id for r in ratings)
    return {"assignments": len(assignments), "ratings": len(ratings),
            "per_rater": [{"rater": name, "done": done[rid], "total": total[rid]} for rid, name in raters.items()]}


def _side_value(rating: schema.Rating, item: schema.RatingItem) -> str:
    """The choice in the item's terms ("first", "second", "tie", "both_bad"), whatever side each was on."""
    if rating.choice in ("tie", "both_bad"):
        return rating.choice
    chosen = rating.left_model if rating.choice == "left" else rating.right_model
    return "first" if chosen == item.first_model else "second"


def _pairwise_units(ratings: list[schema.Rating], items: dict[int, schema.RatingItem]) -> dict:
    units: dict = defaultdict(dict)
    for r in ratings:
        if r.choice:
            units[r.item_id][r.rater_id] = _side_value(r, items[r.item_id])
    return units


def _scale_units(ratings: list[schema.Rating]) -> dict:
    units: dict = defaultdict(dict)
    for r in ratings:
        for model, score in ((r.left_model, r.left_score), (r.right_model, r.right_score)):
            if score:
                units[(r.item_id, model)][r.rater_id] = score
    return units


def _agreement(units: dict, level: str, weights: str | None, names: dict[int, str]) -> dict:
    """α over every unit rated twice or more; Fleiss' κ over the units with the most common
    number of raters; Cohen's κ for each two raters who share units."""
    shared = {u: v for u, v in units.items() if len(v) >= 2}
    rater_ids = sorted({r for v in units.values() for r in v})
    alpha = _number(ag.krippendorff_alpha([[v.get(r) for r in rater_ids] for v in shared.values()], level)
                    if shared else None)
    fleiss = None
    if shared:
        m = Counter(len(v) for v in shared.values()).most_common(1)[0][0]
        categories = sorted({x for v in shared.values() for x in v.values()})
        table = [[list(v.values()).count(c) for c in categories] for v in shared.values() if len(v) == m]
        value = ag.fleiss_kappa(table)
        fleiss = {"kappa": _number(value), "units": len(table), "raters_per_unit": m}
    cohen = []
    for a, b in itertools.combinations(rater_ids, 2):
        common = [u for u, v in shared.items() if a in v and b in v]
        if common:
            value = ag.cohen_kappa([units[u][a] for u in common], [units[u][b] for u in common], weights)
            cohen.append({"raters": [names[a], names[b]], "kappa": _number(value), "units": len(common)})
    return {"level": level, "units": len(shared), "alpha": alpha, "reading": ag.reading(alpha), "fleiss": fleiss,
            "cohen": cohen}


def _number(value: float | None) -> float | None:
    """None for NaN (a statistic undefined here, e.g. when every rating was the same): JSON has no NaN."""
    return None if value is None or math.isnan(value) else value


def _per_rater(ratings: list[schema.Rating], items: dict[int, schema.RatingItem], raters: dict[int, str]) -> list[dict]:
    """Each rater's agreement with the others on shared items, and with the gold answers."""
    choices: dict = defaultdict(dict)  # item -> rater -> choice in item terms
    scores: dict = defaultdict(dict)  # (item, model) -> rater -> score
    for r in ratings:
        if r.choice:
            choices[r.item_id][r.rater_id] = _side_value(r, items[r.item_id])
        for model, score in ((r.left_model, r.left_score), (r.right_model, r.right_score)):
            if score:
                scores[(r.item_id, model)][r.rater_id] = score
    rows = []
    for rid, name in raters.items():
        row: dict = {"rater": name, "ratings": sum(r.rater_id == rid for r in ratings)}
        same = [v[rid] == other for item_id, v in choices.items() if rid in v
                and not items[item_id].gold for o, other in v.items() if o != rid]
        gaps = [abs(v[rid] - other) for (item_id, _), v in scores.items() if rid in v
                and not items[item_id].gold for o, other in v.items() if o != rid]
        row["choice_agreement"] = sum(same) / len(same) if same else None
        row["score_gap"] = sum(gaps) / len(gaps) if gaps else None  # mean |score difference| with the others
        row["compared"] = max(len(same), len(gaps))
        gold_choices = [v[rid] == items[item_id].gold["choice"] for item_id, v in choices.items()
                        if rid in v and items[item_id].gold]
        gold_gaps = [abs(v[rid] - items[item_id].gold["scores"][0 if model.endswith("better") else 1])
                     for (item_id, model), v in scores.items()
                     if rid in v and items[item_id].gold and items[item_id].gold.get("scores")]
        row["gold"] = {"items": len(gold_choices) or len(gold_gaps) // 2,
                       "choice_accuracy": sum(gold_choices) / len(gold_choices) if gold_choices else None,
                       "score_error": sum(gold_gaps) / len(gold_gaps) if gold_gaps else None}
        rows.append(row)
    return rows


def _percent(x: float) -> str:
    return f"{x * 100:.0f}%"


def _agreement_phrase(agreement: dict | None) -> str:
    if not agreement or not agreement["units"]:
        return "agreement not measured yet (no item rated twice)"
    if agreement["alpha"] is None:
        return f"agreement α undefined (every rating of the {agreement['units']} shared items the same)"
    return f"agreement α = {agreement['alpha']:.2f} ({agreement['reading']})"


def _verdict(results: dict, keys: list[str], labels: dict[str, str]) -> tuple[dict | None, str | None]:
    """(power advice, the sentence) from the headline statistic."""
    pairwise, scale, agreement = results["pairwise"], results["scale"], results["agreement"]
    if pairwise and pairwise["win_rates"] and len(keys) == 2:
        w = pairwise["win_rates"][0]
        rate, (low, high), model = w["win_rate"], w["interval"], w["model"]
        if rate < 0.5:
            rate, low, high, model = 1 - rate, 1 - high, 1 - low, w["other"]
        power = more_ratings(rate, 0.5, [low, high], w["standard_error"], w["inputs"], w["ratings"])
        head = (f"Raters preferred {model} on {_percent(rate)} of {w['inputs']:,} inputs "
                f"(95% CI {_percent(low)}–{_percent(high)})" if rate > 0.5 else
                f"Raters preferred neither {w['model']} nor {w['other']} on {w['inputs']:,} inputs "
                f"(50%, 95% CI {_percent(low)}–{_percent(high)})")
        return power, f"{head}, {_agreement_phrase(agreement.get('pairwise'))}."
    if pairwise and pairwise["bradley_terry"]:
        best = pairwise["bradley_terry"][0]
        low, high = best["interval"]
        inputs = max((w["inputs"] for w in pairwise["win_rates"]), default=0)
        return None, (f"Raters ranked {best['model']} first of {len(keys)} models on {inputs:,} inputs "
                      f"(Bradley–Terry strength {best['strength']:+.2f}, 95% CI {low:+.2f} to {high:+.2f}), "
                      f"{_agreement_phrase(agreement.get('pairwise'))}.")
    if scale and scale["differences"] and len(keys) == 2:
        d = scale["differences"][0]
        means = {row["model"]: row["mean"] for row in scale["means"]}
        low, high = d["interval"]
        power = more_ratings(d["difference"], 0.0, [low, high], d["standard_error"], d["inputs"],
                             results["progress"]["ratings"])
        return power, (f"Raters scored {d['model']} {means[d['model']]:.1f} and {d['other']} "
                       f"{means[d['other']]:.1f} out of 5 on {d['inputs']:,} inputs (difference "
                       f"{d['difference']:+.2f}, 95% CI {low:+.2f} to {high:+.2f}), "
                       f"{_agreement_phrase(agreement.get('scale'))}.")
    return None, None
