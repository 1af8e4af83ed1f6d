"""Output drift: do the model's answers still look like the training outputs?

The training outputs decide what is compared (evaluation's scorer decides their shape):
- label outputs: the distribution of predicted labels against the training labels, with
  anything that is not a training class counted as "(other)";
- template outputs: the share that follow the template, and for each field with few distinct
  values in training (a label-like field) its distribution against training;
- every shape: output length in words (binned at the training outputs' deciles) and the share
  of refusals.

Each distribution gets the population stability index (PSI, with half a count added to every
bin so an empty bin stays finite; below 0.1 stable, 0.1-0.25 moderate, above 0.25 a major
shift, the usual reading; beside it the PSI sampling alone would give, which many classes and
few requests raise) and a chi-squared test of homogeneity of the two samples' counts.
"""

from __future__ import annotations

import re
from collections import Counter

from ..lazy import numpy as np

from ..evaluate.metrics import Scorer, choose_scorer, normalize, template_fields

OTHER = "(other)"
PSI_MODERATE, PSI_MAJOR = 0.1, 0.25
FIELD_MAX_VALUES = 30  # a template field with at most this many distinct training values is label-like
REFUSAL = re.compile(r"^\W*(?:i'?m sorry|i am sorry|sorry, i|i can(?:'|no)t|i cannot|i am unable|i'm unable|"
                     r"as an ai\b|i'?m not able)", re.IGNORECASE)


def psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    r = (reference_counts + 0.5) / (reference_counts.sum() + 0.5 * len(reference_counts))
    c = (current_counts + 0.5) / (current_counts.sum() + 0.5 * len(current_counts))
    return float(np.sum((c - r) * np.log(c / r)))


def compare_counts(reference: Counter, current: Counter, order: list[str] | None = None) -> dict:
    """PSI and chi-squared of two samples of categories; the bins that moved most."""
    from scipy.stats import chi2_contingency  # heavy: imported when first needed

    bins = order or sorted(set(reference) | set(current))
    ref = np.array([reference.get(b, 0) for b in bins], dtype=float)
    cur = np.array([current.get(b, 0) for b in bins], dtype=float)
    keep = (ref + cur) > 0
    p_value = None
    if keep.sum() >= 2 and ref.sum() > 0 and cur.sum() > 0:
        p_value = float(chi2_contingency(np.vstack([ref[keep], cur[keep]]), correction=False)[1])
    ref_share = ref / max(ref.sum(), 1)
    cur_share = cur / max(cur.sum(), 1)
    moved = np.argsort(-np.abs(cur_share - ref_share))[:5]
    # PSI expected from sampling alone (no change): a symmetrised KL between two multinomial
    # samples is about chi-squared / n, so its mean is about (bins - 1) (1/n_ref + 1/n_cur). With
    # many classes and few requests this floor is itself above 0.1: read the PSI against it.
    bins_seen = max(int(keep.sum()) - 1, 0)
    noise = bins_seen * (1 / max(ref.sum(), 1) + 1 / max(cur.sum(), 1))
    return {"psi": psi(ref, cur), "psi_noise": float(noise), "chi2_p": p_value,
            "moved": [{"value": bins[i], "reference_share": float(ref_share[i]), "current_share": float(cur_share[i])}
                      for i in moved if ref_share[i] != cur_share[i]]}


class OutputProfile:
    """The training outputs, summarised once: their shape, labels or fields, lengths."""

    def __init__(self, outputs: list[str]):
        self.scorer: Scorer = choose_scorer(outputs)
        words = np.array([len(o.split()) for o in outputs], dtype=float)
        self.mean_words = float(words.mean()) if len(words) else 0.0
        self.length_edges = np.unique(np.quantile(words, np.linspace(0.1, 0.9, 9))) if len(words) else np.zeros(0)
        self.length_counts = self._length_bins(words)
        self.refusal_share = float(np.mean([bool(REFUSAL.match(o)) for o in outputs])) if outputs else 0.0
        self.classes: dict[str, str] = {}
        self.labels = Counter()
        self.field_values: dict[str, Counter] = {}
        if self.scorer.kind == "label":
            self.classes = {normalize(c): c for c in self.scorer.classes}
            self.labels = Counter(self._label(o) for o in outputs)
        elif self.scorer.kind == "template":
            template = self.scorer.template
            per_field: dict[str, Counter] = {}
            for o in outputs:
                for key, value in template_fields(o, template).items():
                    per_field.setdefault(key, Counter())[normalize(value)] += 1
            self.field_values = {k: v for k, v in per_field.items() if len(v) <= FIELD_MAX_VALUES}

    @property
    def kind(self) -> str:
        return self.scorer.kind

    def _label(self, output: str) -> str:
        return self.classes.get(normalize(output), OTHER)

    def _length_bins(self, words: np.ndarray) -> Counter:
        bins = np.searchsorted(self.length_edges, words, side="right")
        return Counter({str(int(b)): int(n) for b, n in zip(*np.unique(bins, return_counts=True))})

    def compare(self, outputs: list[str]) -> dict:
        """Output drift of `outputs` (one window's, or all) against the training outputs."""
        words = np.array([len(o.split()) for o in outputs], dtype=float)
        order = [str(i) for i in range(len(self.length_edges) + 1)]
        result = {
            "kind": self.kind, "outputs": len(outputs),
            "mean_words": float(words.mean()) if len(words) else None, "reference_mean_words": self.mean_words,
            "length": compare_counts(self.length_counts, self._length_bins(words), order),
            "refusal_share": float(np.mean([bool(REFUSAL.match(o)) for o in outputs])) if outputs else None,
            "reference_refusal_share": self.refusal_share,
        }
        if self.kind == "label":
            current = Counter(self._label(o) for o in outputs)
            result["valid_share"] = 1 - current.get(OTHER, 0) / max(len(outputs), 1)
            result["labels"] = compare_counts(self.labels, current, [*self.classes.values(), OTHER])
            result["psi"] = result["labels"]["psi"]
        elif self.kind == "template":
            template = self.scorer.template
            result["valid_share"] = float(np.mean([template.matches(o.strip()) for o in outputs])) if outputs else None
            fields = {}
            for key, reference in self.field_values.items():
                current = Counter(normalize(template_fields(o, template).get(key, OTHER)) for o in outputs)
                fields[key] = compare_counts(reference, current)
            result["fields"] = fields
            result["psi"] = max((f["psi"] for f in fields.values()), default=result["length"]["psi"])
        else:
            result["valid_share"] = None
            result["psi"] = result["length"]["psi"]
        return result
