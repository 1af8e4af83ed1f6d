"""Rating tasks: the items raters see, where they come from, and who gets which.

    task = create_task(eval_run="ev-2026…", raters=["ana", "ben"], mode="both")
    for rater, link in task.links: print(rater, link)

An item is one input with two outputs (of two models, or a gold pair with a known
answer). With two models each input gives one item; with more, one per pair of models.
The outputs come from an evaluation run (its model and baseline) or are generated here
for `models` on `data` with the evaluation's providers.
"""

from __future__ import annotations

import itertools
import os
import random
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from ...data.json_lines import json_lines
from ...errors import BadInputError
from ...store import queries, schema
from ..providers import Resolver
from ..runner import default_max_new_tokens, generate_all, load_eval_data
from .assignment import plan_assignments

DEFAULT_UI_URL = "http://127.0.0.1:7860"  # where `tunesmith ui` listens unless told otherwise
GOLD_PREFIX = "gold:"
TOKEN_BYTES = 18  # 144 random bits per link


@dataclass
class CreatedTask:
    task: schema.RatingTask
    links: list[tuple[str, str]]  # (rater, private link)
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Source:
    keys: list[str]  # output keys, in a fixed order
    labels: dict[str, str]  # key -> the name a person reads in results (never on the page)
    inputs: list[dict]  # {"example_id", "input", "reference", "outputs": {key: text}}
    eval_run_id: str | None = None


def ui_url() -> str:
    return os.environ.get("TUNESMITH_UI_URL", DEFAULT_UI_URL).rstrip("/")


def rating_link(token: str, link_base: str | None = None) -> str:
    return f"{(link_base or ui_url()).rstrip('/')}/rate/{token}"


def create_task(*, raters: list[str], eval_run: str | None = None, models: list[str] | None = None,
                data: str | Path | None = None, split: str | None = None, mode: str = "both",
                items: int | None = None, overlap: float = 0.2, overlap_raters: int = 2,
                gold: str | Path | None = None, instructions: str | None = None, expires_days: float | None = None,
                seed: int = 0, link_base: str | None = None, progress=None, base_url: str | None = None,
                api_key: str | None = None, max_new_tokens: int | None = None,
                pairs: dict | None = None) -> CreatedTask:
    """Create a rating task and its private links; nothing is written unless all of it is valid.

    `link_base` is the web app's address in the links (default `ui_url()`); `base_url`,
    `api_key` and `max_new_tokens` (default: as `tunesmith eval`) are for generating the
    outputs of `models`. `pairs` gives the outputs directly instead: {"labels": {key: name},
    "inputs": [{"example_id", "input", "reference", "outputs": {key: text}}], "source": what they are}
    (a rollout's shadow pairs)."""
    raters = _check_raters(raters)
    if mode not in schema.RATING_MODES:
        raise BadInputError(f"unknown mode {mode!r}", f"use one of: {', '.join(schema.RATING_MODES)}")
    if not 0 <= overlap <= 1:
        raise BadInputError(f"--overlap {overlap} is not a share between 0 and 1", "e.g. --overlap 0.2")
    if overlap_raters < 2:
        raise BadInputError("an overlapping item needs at least two raters", "use --overlap-raters 2 or more")
    if items is not None and items < 1:
        raise BadInputError("--items must be at least 1")
    if expires_days is not None and expires_days <= 0:
        raise BadInputError("--expires-days must be positive")
    gold_items = load_gold(gold) if gold else []  # read before any generation: a bad file fails fast
    if sum(x is not None for x in (eval_run, models, pairs)) != 1:
        raise BadInputError("name an evaluation run or --models (not both)",
                            "tunesmith rate create EVAL_RUN … or tunesmith rate create --models A B --data DIR …")
    if pairs is not None:
        if not pairs["inputs"]:
            raise BadInputError("no pairs of outputs to rate")
        source = _Source(list(pairs["labels"]), dict(pairs["labels"]), _sample(pairs["inputs"], items, seed))
    elif eval_run is not None:
        source = _from_eval_run(eval_run)
        source.inputs = _sample(source.inputs, items, seed)
    else:
        source = _generate(models, data, split, items, seed, progress, max_new_tokens,
                           base_url=base_url, api_key=api_key)

    rows = [{"example_id": inp["example_id"], "input_text": inp["input"], "reference": inp["reference"],
             "first_model": a, "second_model": b, "first_output": inp["outputs"][a],
             "second_output": inp["outputs"][b], "gold": None}
            for inp in source.inputs for a, b in itertools.combinations(source.keys, 2)]
    model_items = len(rows)
    rows += gold_items
    warnings = []
    if overlap > 0 and len(raters) < 2:
        warnings.append("one rater only: no item is rated twice, so agreement cannot be measured")
    plan = plan_assignments(model_items, len(gold_items), len(raters), overlap, overlap_raters, seed)
    tokens = [secrets.token_urlsafe(TOKEN_BYTES) for _ in raters]
    settings = {"overlap": overlap, "overlap_raters": overlap_raters, "seed": seed, "inputs": len(source.inputs),
                "items": model_items, "gold_items": len(gold_items),
                "source": "eval_run" if eval_run else pairs["source"] if pairs else
                {"models": models, "data": str(data), "split": split}}
    task = queries.record_rating_task(
        mode=mode, models={"keys": source.keys, "labels": source.labels}, settings=settings, items=rows,
        raters=[{"name": name, "token": token} for name, token in zip(raters, tokens)],
        assignments=[a.__dict__ for a in plan], eval_run_id=source.eval_run_id, instructions=instructions,
        expires_at=schema.utc_now() + timedelta(days=expires_days) if expires_days else None)
    return CreatedTask(task, [(name, rating_link(token, link_base)) for name, token in zip(raters, tokens)], warnings)


def _check_raters(raters: list[str]) -> list[str]:
    names = [r.strip() for r in raters if r.strip()]
    if not names:
        raise BadInputError("no raters named", "e.g. --raters ana,ben")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise BadInputError(f"rater named twice: {', '.join(repeated)}", "give each rater one name")
    return names


def _sample(inputs: list[dict], items: int | None, seed: int) -> list[dict]:
    """`items` inputs drawn at random (seeded), kept in their original order."""
    if items is None or items >= len(inputs):
        return inputs
    chosen = sorted(random.Random(seed).sample(range(len(inputs)), items))
    return [inputs[i] for i in chosen]


def _from_eval_run(ref: str) -> _Source:
    run = queries.get_eval_run(ref)
    rows = queries.eval_items(run.id)
    if not rows:
        raise BadInputError(f"evaluation run {run.id} has no outputs to rate",
                            "run `tunesmith eval MODEL` (it records every output), then rate that run")
    keys = [key for key in ("model", "baseline") if all(key in (r.outputs or {}) for r in rows)]
    if len(keys) < 2:
        raise BadInputError(f"evaluation run {run.id} has the outputs of one model only: nothing to compare",
                            "rate a run made with a baseline (tunesmith eval MODEL --baseline base), "
                            "or use --models A B --data DIR")
    baseline = (run.summary or {}).get("baseline") or run.baseline_ref or "baseline"
    labels = {"model": run.model_ref, "baseline": baseline}
    inputs = [{"example_id": r.example_id, "input": r.input_text, "reference": r.reference or None,
               "outputs": {k: r.outputs[k] or "" for k in keys}} for r in rows]
    return _Source(keys, labels, inputs, run.id)


def _generate(models: list[str], data, split, items, seed, progress, max_new_tokens, **provider_options) -> _Source:

    if len(models) < 2:
        raise BadInputError("rating needs at least two models", "e.g. --models tuned-v1 base")
    if len(set(models)) != len(models):
        raise BadInputError("a model is named twice in --models")
    if data is None:
        raise BadInputError("--models needs --data (a prepared folder or a file)")
    resolver = Resolver(**provider_options)
    anchors = [resolver.registry_model(ref) for ref in models]
    anchor = next((a for a in anchors if a is not None), None)
    evaluation = load_eval_data(data, split, None, anchor)
    examples = _sample(evaluation.examples, items, seed)
    providers = [resolver.provider(ref, a or anchor) for ref, a in zip(models, anchors)]
    references = [ex.output_text for ex in examples]
    max_new_tokens = max_new_tokens or default_max_new_tokens(providers[0], references)
    outputs, _ = generate_all(providers, examples, max_new_tokens, progress)
    inputs = [{"example_id": ex.id, "input": ex.input_text, "reference": ex.output_text,
               "outputs": {ref: outputs[m][i] for m, ref in enumerate(models)}} for i, ex in enumerate(examples)]
    return _Source(list(models), {ref: ref for ref in models}, inputs)


def load_gold(path: str | Path) -> list[dict]:
    """Gold items from JSONL, one per line: {"input", "better", "worse"} with optional
    "reference", "tie": true (both equally good: the right answer is a tie) and
    "scores": [score of better, score of worse] (1–5). Any bad line fails the whole file."""
    rows = []
    for number, (where, record) in enumerate(json_lines(path), 1):
        if not isinstance(record, dict):
            raise BadInputError(f"{where}: a gold item is a JSON object")
        missing = [k for k in ("input", "better", "worse") if not isinstance(record.get(k), str) or not record[k].strip()]
        if missing:
            raise BadInputError(f"{where}: missing or empty {', '.join(missing)}",
                                'a gold line is {"input": …, "better": …, "worse": …}')
        scores = record.get("scores")
        if scores is not None and not (isinstance(scores, list) and len(scores) == 2
                                       and all(isinstance(s, int) and 1 <= s <= 5 for s in scores)):
            raise BadInputError(f"{where}: scores must be two whole numbers from 1 to 5 (better, worse)")
        rows.append({"example_id": f"{GOLD_PREFIX}{number}", "input_text": record["input"],
                     "reference": record.get("reference") or None, "first_model": f"{GOLD_PREFIX}better",
                     "second_model": f"{GOLD_PREFIX}worse", "first_output": record["better"],
                     "second_output": record["worse"],
                     "gold": {"choice": "tie" if record.get("tie") else "first", "scores": scores}})
    if not rows:
        raise BadInputError(f"gold file {path} has no items")
    return rows
