"""Scoring outputs against references, with metrics chosen by the shape of the references.

Three kinds, found from the references alone (or named with --metrics):

- "label": few distinct short outputs (intent classification, the data layer's rule in
  data/labels.py). Per example: right or wrong. Headline: accuracy, macro-F1 over the
  reference classes; also per-class precision, recall, F1 and the confusion matrix.
- "template": outputs that share a template ("Category: …\\nPriority: …" lines, or a JSON
  object), as the format check infers it (data/checks/format_drift.py). Per example: the
  share of fields right, exact match, whether the output follows the template, each field
  right or wrong. Headline: field accuracy, exact match, valid-format rate, each field.
- "free-text": anything else. Per example: ROUGE-L F1 (rouge_score, stemmed), chrF
  (sacrebleu, sentence level, 0-100) and the length ratio (output words / reference words).
  Headline: mean ROUGE-L, mean chrF, and the corpus length ratio (all output words over all
  reference words).

Texts are compared after collapsing whitespace and ignoring case: "billing " is "Billing".
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from ..lazy import numpy as np

from ..data.checks.format_drift import (
    JsonObject,
    KeyLines,
    dominant_signature,
    output_signature,
    template_from_signature,
)
from ..data.labels import key_values, label_like
from ..errors import BadInputError

KINDS = ("label", "template", "free-text")


def normalize(text: str) -> str:
    return " ".join(str(text).split()).casefold()


# --------------------------------------------------------------------------- the kind


@dataclass(frozen=True)
class Scorer:
    """How one kind of reference is scored; `fields` and `template` for templated outputs."""

    kind: str
    template_spec: str | None = None
    classes: tuple[str, ...] = ()  # label kind: the reference classes, as first written

    @property
    def template(self):
        return template_from_signature(self.template_spec) if self.template_spec else None

    @property
    def fields(self) -> tuple[str, ...]:
        template = self.template
        return tuple(template.keys or ()) if isinstance(template, (KeyLines, JsonObject)) else ()

    def describe(self) -> str:
        if self.kind == "label":
            return f"label-like outputs ({len(self.classes)} classes)"
        if self.kind == "template":
            return f"templated outputs: {self.template.describe()}"
        return "free text"


def choose_scorer(references: list[str], kind: str = "auto") -> Scorer:
    """The scorer for these references; `kind` "auto" decides from their shape."""
    if kind not in ("auto", *KINDS):
        raise BadInputError(f"unknown metrics {kind!r}", f"use auto or one of: {', '.join(KINDS)}")
    stripped = [r.strip() for r in references]
    if kind in ("auto", "label") and (kind == "label" or label_like(stripped)):
        classes = {}
        for r in stripped:
            classes.setdefault(normalize(r), r)
        return Scorer("label", classes=tuple(sorted(classes.values(), key=normalize)))
    if kind in ("auto", "template"):
        signature = _template_signature(stripped)
        if signature is not None:
            return Scorer("template", template_spec=signature)
        if kind == "template":
            raise BadInputError("--metrics template: the references do not share a template",
                                "use --metrics auto, label or free-text")
    return Scorer("free-text")


def _template_signature(references: list[str]) -> str | None:
    dominant = dominant_signature(references)  # needs 10 references; fewer must all agree
    if dominant is not None:
        return dominant[0]
    signatures = Counter(output_signature(r) for r in references)
    if len(signatures) == 1:
        (signature,) = signatures
        if signature.split(":", 1)[0] in ("json", "keys", "fence", "bullets", "numbered"):
            return signature
    return None


# ------------------------------------------------------------------ per-example scores


def score(scorer: Scorer, output: str, reference: str) -> dict:
    """One output's scores: every number the headline metrics are computed from."""
    if scorer.kind == "label":
        return {"correct": int(normalize(output) == normalize(reference))}
    if scorer.kind == "template":
        return _template_scores(scorer, output, reference)
    return _free_text_scores(output, reference)


def template_fields(text: str, template) -> dict[str, str]:
    """An answer's fields by name, as text (a JSON template's non-string values as JSON); {} for
    an answer that is not a JSON object where one was expected."""
    if isinstance(template, JsonObject):
        try:
            value = json.loads(text.strip())
        except ValueError:
            return {}
        return {str(k): json.dumps(v, sort_keys=True) if not isinstance(v, str) else v
                for k, v in value.items()} if isinstance(value, dict) else {}
    return key_values(text)


def _template_scores(scorer: Scorer, output: str, reference: str) -> dict:
    template = scorer.template
    expected, got = template_fields(reference, template), template_fields(output, template)
    fields = {k: int(k in got and normalize(got[k]) == normalize(v)) for k, v in expected.items()}
    return {
        "exact": int(normalize(output) == normalize(reference)),
        "valid": int(template.matches(output)),
        "field_accuracy": sum(fields.values()) / len(fields) if fields else float(normalize(output) == normalize(reference)),
        "fields": fields,
    }


def _free_text_scores(output: str, reference: str) -> dict:
    from sacrebleu.metrics import CHRF

    ref_words = len(reference.split())
    return {
        "rougeL": _rouge_scorer().score(reference, output)["rougeL"].fmeasure,
        "chrf": CHRF().sentence_score(output, [reference]).score,
        "output_words": len(output.split()),
        "reference_words": ref_words,
    }


_ROUGE = None


def _rouge_scorer():
    global _ROUGE
    if _ROUGE is None:
        from rouge_score import rouge_scorer

        _ROUGE = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return _ROUGE


# --------------------------------------------------------------------- headline metrics


@dataclass(frozen=True)
class Metric:
    """A headline metric: how to compute it on any resample of the examples.

    `values(scores)` turns the per-example scores of one model into an array (one row per
    example, or several columns for a ratio); `statistic(array, idx)` computes the metric on
    the examples `idx` (a (resamples, n) index array: vectorized over resamples). `binary`
    metrics are means of 0/1 values, for which McNemar's test applies. `shown`: how a value
    reads ("percent" for shares, "number" for chrF's 0-100, "ratio"). A `directional` metric
    is better when higher; the length ratio is not (closest to 1 is best)."""

    name: str
    label: str
    values: Callable[[list[dict]], np.ndarray]
    statistic: Callable[[np.ndarray, np.ndarray], np.ndarray]
    binary: bool = False
    shown: str = "percent"
    directional: bool = True


def _mean(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return a[idx].mean(axis=-1)


def _ratio(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    resampled = a[idx]  # (..., n, 2): output words, reference words
    return resampled[..., 0].sum(axis=-1) / np.maximum(resampled[..., 1].sum(axis=-1), 1)


def _column(name: str) -> Callable[[list[dict]], np.ndarray]:
    return lambda scores: np.array([float(s[name]) for s in scores])


def _field_column(field: str) -> Callable[[list[dict]], np.ndarray]:
    return lambda scores: np.array([float(s["fields"].get(field, 0)) for s in scores])


def macro_f1_statistic(classes: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Macro-F1 over the reference classes 0..classes-1 on resamples; the array holds
    (reference class, predicted class) per example, -1 for a prediction outside the classes."""

    def statistic(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
        truth, pred = a[idx][..., 0], a[idx][..., 1]
        f1 = []
        for c in range(classes):
            tp = ((truth == c) & (pred == c)).sum(axis=-1)
            fp = ((truth != c) & (pred == c)).sum(axis=-1)
            fn = ((truth == c) & (pred != c)).sum(axis=-1)
            denominator = 2 * tp + fp + fn
            f1.append(np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0))
        return np.mean(f1, axis=0)

    return statistic


def headline_metrics(scorer: Scorer, references: list[str]) -> list[Metric]:
    """The headline metrics of this kind; the first one decides the verdict."""
    if scorer.kind == "label":
        index = {normalize(c): i for i, c in enumerate(scorer.classes)}

        def class_pairs(scores: list[dict]) -> np.ndarray:
            return np.array([[index.get(normalize(r), -1), index.get(normalize(s["prediction"]), -1)]
                             for r, s in zip(references, scores)])

        return [
            Metric("accuracy", "accuracy", _column("correct"), _mean, binary=True),
            Metric("macro_f1", "macro-F1", class_pairs, macro_f1_statistic(len(scorer.classes))),
        ]
    if scorer.kind == "template":
        return [
            Metric("field_accuracy", "field accuracy", _column("field_accuracy"), _mean),
            Metric("exact_match", "exact match", _column("exact"), _mean, binary=True),
            Metric("valid_format", "valid format", _column("valid"), _mean, binary=True),
            *[Metric(f"field:{f}", f"{f} accuracy", _field_column(f), _mean, binary=True) for f in scorer.fields],
        ]
    return [
        Metric("rougeL", "ROUGE-L", _column("rougeL"), _mean),
        Metric("chrf", "chrF", _column("chrf"), _mean, shown="number"),
        Metric("length_ratio", "length ratio",
               lambda scores: np.array([[s["output_words"], s["reference_words"]] for s in scores], dtype=float), _ratio,
               shown="ratio", directional=False),
    ]


def score_all(scorer: Scorer, outputs: list[str], references: list[str]) -> list[dict]:
    scores = [score(scorer, o, r) for o, r in zip(outputs, references)]
    if scorer.kind == "label":
        for s, o in zip(scores, outputs):
            s["prediction"] = o.strip()
    return scores


# ---------------------------------------------------------------- label-kind details


def per_class(scorer: Scorer, references: list[str], outputs: list[str]) -> dict:
    """Per-class precision, recall, F1 and support, and the confusion matrix (rows: the
    reference class; columns: the predicted class, "other" for anything else)."""
    index = {normalize(c): i for i, c in enumerate(scorer.classes)}
    k = len(scorer.classes)
    matrix = np.zeros((k, k + 1), dtype=int)
    for r, o in zip(references, outputs):
        matrix[index[normalize(r)], index.get(normalize(o), k)] += 1
    rows = []
    for i, name in enumerate(scorer.classes):
        tp, support, predicted = matrix[i, i], matrix[i].sum(), matrix[:, i].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append({"class": name, "precision": float(precision), "recall": float(recall), "f1": float(f1),
                     "support": int(support)})
    return {"classes": rows, "confusion": {"labels": [*scorer.classes, "other"], "matrix": matrix.tolist()}}
