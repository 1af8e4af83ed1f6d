"""`evaluate`: a model against its baseline on held-out examples, with a verdict; `compare`:
several models on the same examples, ranked.

    result = evaluate("tickets-v1")                 # its base model, on its sealed test split
    print(result.verdict_text, result.report_path)

The steps, in order: find the data (default: the test split of the dataset the model was
trained on) -> refuse examples the model was trained on -> choose the metrics from the
references -> generate every answer (greedy, batched) -> score each example -> paired
statistics and the verdict -> write results.jsonl (every number recomputable from it),
summary.json and report.html to $TUNESMITH_HOME/evals/<eval-id>/ -> record the run.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from ..data.dataset import load_dataset
from ..data.example import Example
from ..data.seal import verify_seal
from ..errors import BadInputError
from ..fileio import atomic_write_text
from ..models.generate import DEFAULT_BATCH_SIZE
from ..paths import evals_dir
from ..store import queries
from . import metrics as m
from . import stats
from .decoding import space_scores
from .overlap import guard
from .providers import Provider, Resolver
from .report import render_report
from .verdict import verdict

MAX_NEW_TOKENS_CAP = 512
TOKEN_MARGIN = 16  # beyond 1.5 x the longest reference: room to finish a sentence
SHOWN_EXAMPLES = 10  # largest wins and regressions in the summary and the report
RESULTS_FILE, SUMMARY_FILE, REPORT_FILE = "results.jsonl", "summary.json", "report.html"

Progress = Callable[[str], None]


@dataclass
class EvalData:
    examples: list[Example]
    path: str
    split: str | None
    dataset_version: str | None
    skipped: int  # examples without a reference answer
    warnings: list[str] = field(default_factory=list)


@dataclass
class EvalResult:
    """One evaluation: what was compared, on what, the statistics and the verdict."""

    id: str
    summary: dict  # everything in summary.json
    items: list[dict]  # per example: id, input, reference, outputs and scores by role
    folder: Path

    def __getattr__(self, name: str):
        try:
            return self.__dict__["summary"][name]
        except KeyError:
            raise AttributeError(name) from None


# ------------------------------------------------------------------------------ data


def load_eval_data(data: str | Path | None, split: str | None, limit: int | None, anchor=None) -> EvalData:
    """The examples to evaluate on: `split` (default: test) of `data` (default: the dataset
    `anchor` was trained on), those with a reference answer, the first `limit` of them."""
    if data is None:
        data = _training_data(anchor)
    dataset = load_dataset([data])
    if split is None:
        if "test" in dataset.splits or len(dataset.splits) != 1:
            split = "test"
        else:
            split = dataset.splits[0]  # a single file that is not named after a split: all of it
    if split not in dataset.splits:
        raise BadInputError(f"{data} has no {split!r} split (it has: {', '.join(dataset.splits) or 'none'})",
                            "name one with --split")
    examples = dataset.split(split)
    answered = [ex for ex in examples if ex.last_model_index() is not None and ex.output_text.strip()
                and ex.input_text.strip()]
    skipped = len(examples) - len(answered)
    if limit is not None:
        answered = answered[:limit]
    if not answered:
        raise BadInputError(f"the {split} split of {data} has no example with a prompt and a reference answer")
    warnings = []
    if dataset.prepared_dir is not None and dataset.manifest:

        warnings = [f.message for f in verify_seal(dataset.prepared_dir, dataset.manifest, dataset.examples)
                    if f"the {split} split" in f.message]
    version = (dataset.manifest or {}).get("dataset_version")
    return EvalData(answered, str(data), split, version, skipped, warnings)


def _training_data(anchor) -> Path:

    if anchor is None:
        raise BadInputError("no data to evaluate on", "name a prepared folder or a file with --data")
    candidates = []
    if anchor.dataset_version:
        row = queries.get_dataset_version(anchor.dataset_version)
        candidates.append(row.path if row else None)
    candidates.append((anchor.lineage or {}).get("data"))
    for folder in candidates:
        if folder and Path(folder).is_dir():
            return Path(folder)
    raise BadInputError(f"the data {anchor.id} was trained on is not on this machine",
                        "name a prepared folder or a file with --data")


# ------------------------------------------------------------------------ generation


def default_max_new_tokens(provider: Provider, references: list[str]) -> int:
    longest = max(provider.count_tokens(r) for r in references)
    return min(math.ceil(longest * 1.5) + TOKEN_MARGIN, MAX_NEW_TOKENS_CAP)


def generate_all(providers: list[Provider], examples: list[Example], max_new_tokens: int,
                 progress: Progress | None = None) -> tuple[list[list[str]], list[dict]]:
    """Every provider's answers to every example, and how long each took."""
    outputs, timings = [], []
    for provider in providers:
        if progress:
            progress(f"generating {len(examples)} answers with {provider.name} (at most {max_new_tokens} tokens each)")
        start = time.perf_counter()
        outputs.append(provider.generate(examples, max_new_tokens))
        seconds = time.perf_counter() - start
        timings.append({"model": provider.name, "seconds": round(seconds, 3),
                        "examples_per_s": round(len(examples) / seconds, 3) if seconds else None})
    return outputs, timings


@dataclass
class Answers:
    """Every model's answers to the same examples, scored, with the resamples for the statistics."""

    references: list[str]
    scorer: m.Scorer
    headline: list[m.Metric]
    outputs: list[list[str]]  # per provider, per example
    scores: list[list[dict]]
    timings: list[dict]
    max_new_tokens: int
    idx: object  # (resamples, examples) bootstrap indices

    def lines(self, examples: list[Example], keys: list[str]) -> list[dict]:
        """results.jsonl: per example its id, input, reference, and each model's output and scores by `keys`."""
        return [{"id": ex.id, "input": ex.input_text, "reference": ex.output_text,
                 "outputs": {key: self.outputs[r][i] for r, key in enumerate(keys)},
                 "scores": {key: self.scores[r][i] for r, key in enumerate(keys)}} for i, ex in enumerate(examples)]


def answer_and_score(providers: list[Provider], examples: list[Example], metrics: str, max_new_tokens: int | None,
                     resamples: int, seed: int, progress: Progress | None) -> Answers:
    references = [ex.output_text for ex in examples]
    scorer = m.choose_scorer(references, metrics)
    max_new_tokens = max_new_tokens or default_max_new_tokens(providers[0], references)
    outputs, timings = generate_all(providers, examples, max_new_tokens, progress)
    return Answers(references, scorer, m.headline_metrics(scorer, references), outputs,
                   [m.score_all(scorer, out, references) for out in outputs], timings, max_new_tokens,
                   stats.resample_indices(len(references), resamples, seed))


def _write_results(results_path: Path, lines: list[dict], summary_path: Path, summary: dict) -> None:
    atomic_write_text(results_path, "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
    atomic_write_text(summary_path, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")


def _largest(per_example_gain, items: list[dict], sign: int) -> list[dict]:
    chosen = [i for i in sorted(range(len(items)), key=lambda i: -sign * per_example_gain[i]) if sign * per_example_gain[i] > 0]
    return [{**items[i], "gain": float(per_example_gain[i])} for i in chosen[:SHOWN_EXAMPLES]]


# ---------------------------------------------------------------------------- evaluate


def evaluate(model: str, baseline: str | None = "base", data: str | Path | None = None, split: str | None = None,
             metrics: str = "auto", limit: int | None = None, json_out: str | Path | None = None,
             html_out: str | Path | None = None, allow_overlap: bool = False, base_url: str | None = None,
             api_key: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE, max_new_tokens: int | None = None,
             resamples: int = stats.RESAMPLES, seed: int = stats.SEED, progress: Progress | None = None,
             free: bool = False, weights: str = "auto", engine: str = "local",
             llama_server: str | None = None) -> EvalResult:
    """Evaluate `model` against `baseline` ("base": its base model; None: no comparison).
    A model whose training data had an output space answers held to it unless `free`; the
    first evaluation of such a model also runs it free, and `summary["decoding"]` shows both.
    `weights`: how local models hold their weights (auto, fp32, bf16, int8: models/loading.py).
    `engine`: what generates for local models: local, llama.cpp (`llama_server`: its binary) or
    auto (models/llama_server.py)."""

    with Resolver(base_url=base_url, api_key=api_key, batch_size=batch_size, free=free, weights=weights,
                  engine=engine, llama_server=llama_server) as resolver:
        anchor = resolver.registry_model(model)
        evaluation = load_eval_data(data, split, limit, anchor)
        overlap = guard(evaluation.examples, anchor, allow_overlap)
        providers = [resolver.provider(model, anchor)] + ([resolver.provider(baseline, anchor)] if baseline else [])
        answers = answer_and_score(providers, evaluation.examples, metrics, max_new_tokens, resamples, seed, progress)
        decoding = _decoding(providers[0], anchor, resolver, evaluation.examples, answers, free, progress)
    references, scorer, headline, scores, idx = (answers.references, answers.scorer, answers.headline,
                                                 answers.scores, answers.idx)
    roles = ["model", "baseline"][: len(providers)]
    items = answers.lines(evaluation.examples, roles)
    eval_id = queries.new_id("ev")
    summary = {
        "id": eval_id, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": model, "model_id": anchor.id if anchor else None, "baseline": providers[1].name if baseline else None,
        "baseline_ref": baseline, "data": evaluation.path, "split": evaluation.split,
        "dataset_version": evaluation.dataset_version, "examples": len(references), "skipped": evaluation.skipped,
        "kind": scorer.kind, "scorer": scorer.describe(), "max_new_tokens": answers.max_new_tokens,
        "bootstrap": {"resamples": resamples, "seed": seed}, "generation": answers.timings, "weights": weights,
        "engine": resolver.engine_used, "overlap": [o.__dict__ for o in overlap], "warnings": evaluation.warnings,
        "verdict": None, "verdict_text": None,
    }
    if baseline:
        comparisons = [stats.compare(metric, scores[0], scores[1], idx) for metric in headline]
        summary["metrics"] = [c.to_dict() for c in comparisons]
        summary["verdict"], summary["verdict_text"] = verdict(comparisons, len(references), model, providers[1].name)
        gain = headline[0].values(scores[0]) - headline[0].values(scores[1])
        summary["wins"], summary["regressions"] = _largest(gain, items, +1), _largest(gain, items, -1)
    else:
        summary["metrics"] = [stats.single(metric, scores[0], idx) for metric in headline]
    if scorer.kind == "label":
        summary["per_class"] = {role: m.per_class(scorer, references, answers.outputs[r]) for r, role in enumerate(roles)}
    summary["decoding"] = decoding

    folder = evals_dir() / eval_id
    results_path, summary_path = folder / RESULTS_FILE, Path(json_out or folder / SUMMARY_FILE).resolve()
    report_path = Path(html_out or folder / REPORT_FILE).resolve()
    summary.update(results_path=str(results_path), summary_path=str(summary_path), report_path=str(report_path))
    _write_results(results_path, items, summary_path, summary)

    atomic_write_text(report_path, render_report(summary, anchor))
    queries.record_eval_run(
        id=eval_id, model_id=summary["model_id"], model_ref=model, baseline_ref=baseline, data_path=evaluation.path,
        dataset_version=evaluation.dataset_version, split=evaluation.split, metrics_kind=scorer.kind,
        examples=len(references), verdict=summary["verdict"], verdict_text=summary["verdict_text"],
        summary=summary, results_path=str(results_path), report_path=str(report_path),
        items=[{"example_id": it["id"], "input_text": it["input"], "reference": it["reference"],
                "outputs": it["outputs"], "scores": it["scores"]} for it in items],
    )
    return EvalResult(eval_id, summary, items, folder)


def _decoding(provider: Provider, anchor, resolver: Resolver, examples: list[Example], answers: Answers,
              free: bool, progress: Progress | None) -> dict | None:
    """Constrained against free decoding of the model, where it has an output space: the
    constrained run is the evaluation's; the first time, the model also answers free."""
    space = provider.space
    if space is None:
        space = None if anchor is None else resolver.output_space(anchor)
        if space is None:
            return None
        return {"space": space.describe(), "mode": "free", "free": space_scores(space, answers.outputs[0],
                                                                                 answers.references)}
    out = {"space": space.describe(), "mode": "constrained",
           "constrained": space_scores(space, answers.outputs[0], answers.references)}
    first = anchor is None or not queries.list_eval_runs(anchor.id, limit=1)
    if first and not free:
        if progress:
            progress(f"the first evaluation of {provider.name}: answering once more without the output space")
        unconstrained = resolver.unconstrained(provider)
        outputs = unconstrained.generate(examples, answers.max_new_tokens)
        out["free"] = space_scores(space, outputs, answers.references)
    return out


# ----------------------------------------------------------------------------- compare


def compare(models: list[str], data: str | Path | None = None, split: str | None = None, metrics: str = "auto",
            limit: int | None = None, json_out: str | Path | None = None, allow_overlap: bool = False,
            base_url: str | None = None, api_key: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
            max_new_tokens: int | None = None, resamples: int = stats.RESAMPLES, seed: int = stats.SEED,
            progress: Progress | None = None, weights: str = "auto", engine: str = "local",
            llama_server: str | None = None) -> dict:
    """Several models on the same examples, ranked by the first headline metric; each is
    compared with the best (difference, interval, p). "base" means the first registered
    model's base. Writes results.jsonl and summary.json to $TUNESMITH_HOME/evals/<id>/."""

    if len(models) < 2:
        raise BadInputError("compare needs at least two models")
    with Resolver(base_url=base_url, api_key=api_key, batch_size=batch_size, weights=weights, engine=engine,
                  llama_server=llama_server) as resolver:
        anchors = [resolver.registry_model(ref) for ref in models]
        anchor = next((a for a in anchors if a is not None), None)
        evaluation = load_eval_data(data, split, limit, anchor)
        overlap = {a.id: [o.__dict__ for o in guard(evaluation.examples, a, allow_overlap)] for a in anchors if a}
        providers = [resolver.provider(ref, a or anchor) for ref, a in zip(models, anchors)]
        answers = answer_and_score(providers, evaluation.examples, metrics, max_new_tokens, resamples, seed, progress)
    headline, scores, idx = answers.headline, answers.scores, answers.idx
    values = [stats.single(headline[0], s, idx)["value"] for s in scores]
    order = sorted(range(len(models)), key=lambda i: -values[i])
    best = order[0]
    ranking = []
    for rank, i in enumerate(order, 1):
        entry = {"rank": rank, "model": models[i], "provider": providers[i].name,
                 "metrics": [stats.single(metric, scores[i], idx) for metric in headline]}
        if i != best:
            entry["against_best"] = stats.compare(headline[0], scores[i], scores[best], idx).to_dict()
        ranking.append(entry)
    compare_id = queries.new_id("cmp")
    folder = evals_dir() / compare_id
    results_path, summary_path = folder / RESULTS_FILE, Path(json_out or folder / SUMMARY_FILE).resolve()
    summary = {"id": compare_id, "models": models, "data": evaluation.path, "split": evaluation.split,
               "dataset_version": evaluation.dataset_version, "examples": len(answers.references),
               "kind": answers.scorer.kind, "scorer": answers.scorer.describe(), "ranked_by": headline[0].label,
               "ranking": ranking, "generation": answers.timings, "engine": resolver.engine_used, "overlap": overlap, "warnings": evaluation.warnings,
               "max_new_tokens": answers.max_new_tokens, "results_path": str(results_path),
               "summary_path": str(summary_path)}
    _write_results(results_path, answers.lines(evaluation.examples, models), summary_path, summary)
    return summary
