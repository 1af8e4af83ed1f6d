"""Labels: one input with different answers, likely label errors, class imbalance, rare classes.

conflicting-outputs compares outputs and runs on any data. The others need class labels
(`ctx.label_source`, see `data/labels.py`) and skip data without them; examples without a
label are left out of them."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from functools import lru_cache
from typing import TYPE_CHECKING

from ...lazy import numpy as np

from ..example import Example, full_input
from ..findings import Finding, about
from ..near_duplicates import exact_groups, near_duplicate_groups, normalize_text, normalize_texts
from .format_drift import FREE_TEXT, output_signature
from .messages import count, quote

if TYPE_CHECKING:
    from . import CheckContext

# Inputs this alike (Jaccard of shingles, see duplicates.py) with different labels are worth a
# look. Stricter than near-duplicate's 0.8: in a short question one added word scores about
# 0.8 and may rightly change the label ("How do I get my card?" / "How do I get my card PIN?"),
# while spelling and punctuation do not ("I don't recognize" / "I don't recognise!": 0.89).
NEAR_IDENTICAL_THRESHOLD = 0.85

# Likely label errors, after confident learning (cleanlab): out-of-fold class probabilities from
# a cheap text classifier (TF-IDF of words and word pairs, multinomial naive Bayes, 5 folds).
# An example is flagged only when the classifier gives its label at most 2% and one other label
# at least 90%: 8 of Banking77's 10,003 examples, and none of clean synthetic data. Classes
# count as equally likely beforehand, so a small class is not suspect for being small. It
# needs 50 labelled examples and classes of 5 or more (smaller classes are left out of it).
MISLABEL_MIN_EXAMPLES = 50
MISLABEL_MIN_CLASS_EXAMPLES = 5
MISLABEL_FOLDS = 5
MISLABEL_MAX_GIVEN_PROBABILITY = 0.02
MISLABEL_MIN_OTHER_PROBABILITY = 0.9
MISLABEL_SEED = 0
NAIVE_BAYES_ALPHA = 0.1
MAX_TERMS = 20_000

# Imbalance: the largest class more than 10 times the smallest. This covers cleanlab's rule
# (ClassImbalanceIssueManager: the smallest under a tenth of the fair share 1/K, that is under a
# tenth of the mean class, hence of the largest).
IMBALANCE_MAX_RATIO = 10

# A class with fewer than 10 examples leaves one or none for validation and test after a split.
RARE_CLASS_MIN_EXAMPLES = 10

SHOWN = 5  # classes or examples quoted in a message
PROSE_MIN_WORDS = 20  # conflicting outputs this long and free-form may be paraphrases: info


def check_conflicting_outputs(examples: list[Example], ctx: CheckContext) -> list[Finding]:
    """conflicting-outputs: the same input (system instruction and user turns, normalised)
    with different outputs."""
    keys = normalize_texts([full_input(ex) for ex in examples])
    groups = [
        group
        for group in exact_groups(keys)
        if keys[group[0]] and len({normalize_text(examples[i].output_text) for i in group}) > 1
    ]
    if not groups:
        return []
    # Several long free-text answers to one question are often paraphrases of one answer
    # (Bitext writes several responses per request): worth a look, not a warning.
    prose = [g for g in groups if all(_is_prose(examples[i].output_text) for i in g)]
    answers = [g for g in groups if g not in prose]
    findings = []
    for kind, chosen in (("answers", answers), ("prose", prose)):
        if not chosen:
            continue
        affected = [examples[i] for group in chosen for i in group]
        message = (
            f"{count(len(chosen), 'input')} {'has' if len(chosen) == 1 else 'have'} more than one output "
            f"({count(len(affected), 'example')}), e.g. {quote(examples[chosen[0][0]].input_text)} "
            f"gets {_answers(examples, chosen[0])}. "
            + ("Taught two answers to one question, a model learns to pick one at random." if kind == "answers" else
               "The outputs are long free text: fine if they say the same thing in other words, not if they disagree.")
        )
        hidden = _fields_that_differ(examples, chosen)
        hint = (
            (f"These examples differ in {', '.join(hidden)}, which the model does not see: put it in the input, or "
             if hidden else "Keep one answer per input (or make the inputs say what tells the answers apart); ")
            + "tunesmith data prepare --drop-conflicts quarantines them for review."
        )
        findings.append(about("conflicting-outputs", "warning" if kind == "answers" else "info", message, hint, affected))
    return findings


def _is_prose(text: str) -> bool:
    return len(text.split()) >= PROSE_MIN_WORDS and output_signature(text) == FREE_TEXT


def _fields_that_differ(examples: list[Example], groups: list[list[int]]) -> list[str]:
    """Fields of the records (not trained on) whose values differ inside most conflicting groups."""
    votes: Counter[str] = Counter()
    for group in groups:
        keys = {k for i in group for k in examples[i].meta}
        for key in keys:
            if len({json.dumps(examples[i].meta.get(key), sort_keys=True, default=str) for i in group}) > 1:
                votes[key] += 1
    return sorted(k for k, n in votes.items() if n * 2 > len(groups))


def check_label_issues(examples: list[Example], ctx: CheckContext) -> list[Finding]:
    """label-issue: one label spelt several ways, near-identical inputs with different labels,
    and examples a classifier trained on the rest confidently puts in another class."""
    if ctx.label_source is None:
        return []
    findings = [_spelling_variants(examples), _disagreeing_neighbours(examples), _likely_mislabeled(examples)]
    return [f for f in findings if f is not None]


def check_class_imbalance(examples: list[Example], ctx: CheckContext) -> list[Finding]:
    """class-imbalance: the largest class far larger than the smallest."""
    if ctx.label_source is None:
        return []
    counts = Counter(ex.label for ex in examples if ex.label is not None)
    if len(counts) < 2:
        return []
    (largest, most), (smallest, fewest) = _extremes(counts)
    ratio = most / fewest
    if ratio <= IMBALANCE_MAX_RATIO:
        return []
    total = sum(counts.values())
    message = (
        f"The classes are imbalanced: {quote(largest)} has {most:,} examples and {quote(smallest)} "
        f"{fewest:,}, a ratio of {ratio:,.1f}:1 (the smallest holds {fewest / total:.1%} of the data, against "
        f"{1 / len(counts):.1%} if the {len(counts)} classes were even). "
        "A model tuned on this favours the large classes."
    )
    hint = (
        "Collect more examples of the small classes, or oversample them in training with "
        "tunesmith data prepare --oversample (its split is stratified, so each class is in every split)."
    )
    return [Finding("class-imbalance", "warning", message, hint, count=total)]


def check_rare_classes(examples: list[Example], ctx: CheckContext) -> list[Finding]:
    """rare-class: classes with too few examples to learn and to evaluate."""
    if ctx.label_source is None:
        return []
    counts = Counter(ex.label for ex in examples if ex.label is not None)
    rare = sorted((label for label, n in counts.items() if n < RARE_CLASS_MIN_EXAMPLES), key=lambda c: (counts[c], c))
    if not rare:
        return []
    shown = ", ".join(f"{quote(label)} ({counts[label]})" for label in rare[:SHOWN])
    more = f" and {len(rare) - SHOWN} more" if len(rare) > SHOWN else ""
    message = (
        f"{count(len(rare), 'class', 'classes')} {'has' if len(rare) == 1 else 'have'} fewer than "
        f"{RARE_CLASS_MIN_EXAMPLES} examples: {shown}{more}. Too few to learn, and too few to measure once "
        "some go to validation and test."
    )
    hint = "Collect more examples of these classes, or merge each into a related class (or drop it) if it cannot grow."
    rare_set = set(rare)
    return [about("rare-class", "warning", message, hint, [ex for ex in examples if ex.label in rare_set])]


@lru_cache(maxsize=4096)  # called per example; labels repeat
def label_key(label: str) -> str:
    """A label with case, surrounding space and `_`/`-`/space differences removed."""
    return re.sub(r"[\s_-]+", " ", label.casefold()).strip()


# Kinds of label issue --------------------------------------------------------------------


def _spelling_variants(examples: list[Example]) -> Finding | None:
    """Labels that differ only in case, spaces, `_` or `-`: the examples with the rarer spellings."""
    spellings = _spellings(examples)
    variants = [counts for _, counts in sorted(spellings.items()) if len(counts) > 1]
    if not variants:
        return None
    preferred = {key: _extremes(counts)[0][0] for key, counts in spellings.items()}
    affected = [ex for ex in examples if ex.label is not None and ex.label != preferred[label_key(ex.label)]]
    shown = "; ".join(
        ", ".join(f"{quote(label)} ({n})" for label, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        for counts in variants[:SHOWN]
    )
    message = (
        f"Label spelling: {count(len(variants), 'label')} {'is' if len(variants) == 1 else 'are'} written more "
        f"than one way ({shown}); {count(len(affected), 'example')} use a less common spelling. Each spelling "
        "is a different answer to the model."
    )
    hint = "Use one spelling per label: change these examples to the most common one (listed first)."
    return about("label-issue", "warning", message, hint, affected)


def _disagreeing_neighbours(examples: list[Example]) -> Finding | None:
    """Near-identical inputs (not only exact copies) whose labels differ."""
    inputs = [full_input(ex) for ex in examples]
    normalized = normalize_texts(inputs)
    groups = []
    for group in near_duplicate_groups(inputs, NEAR_IDENTICAL_THRESHOLD):
        labelled = [i for i in group if examples[i].label is not None]
        different_labels = len({label_key(examples[i].label) for i in labelled}) > 1
        # One input with several labels is conflicting-outputs' to report.
        different_inputs = len({normalized[i] for i in labelled}) > 1
        if different_labels and different_inputs:
            groups.append(labelled)
    if not groups:
        return None
    affected = [examples[i] for group in groups for i in group]
    example = " vs ".join(f"{quote(examples[i].input_text)} → {quote(examples[i].label)}" for i in groups[0][:2])
    message = (
        f"Near-identical inputs, different labels: {count(len(groups), 'group')} of almost the same input "
        f"({count(len(affected), 'example')}) carry different labels, e.g. {example}."
    )
    hint = "Check each group: give the inputs one label, or make sure their wording really calls for different ones."
    return about("label-issue", "warning", message, hint, affected)


def _likely_mislabeled(examples: list[Example]) -> Finding | None:
    """Examples whose out-of-fold class probabilities put them firmly in another class."""
    keys = {i: label_key(ex.label) for i, ex in enumerate(examples) if ex.label is not None}
    sizes = Counter(keys.values())
    usable = [i for i, key in keys.items() if sizes[key] >= MISLABEL_MIN_CLASS_EXAMPLES]
    classes, given = np.unique([keys[i] for i in usable], return_inverse=True)
    if len(usable) < MISLABEL_MIN_EXAMPLES or len(classes) < 2:
        return None
    normalized = normalize_texts([full_input(ex) for ex in examples])
    probabilities = _out_of_fold_probabilities([normalized[i] for i in usable], given)
    rows = np.arange(len(usable))
    given_probability = probabilities[rows, given]
    probabilities[rows, given] = 0
    suggested, suggested_probability = probabilities.argmax(axis=1), probabilities.max(axis=1)
    doubtful = given_probability <= MISLABEL_MAX_GIVEN_PROBABILITY
    confident = suggested_probability >= MISLABEL_MIN_OTHER_PROBABILITY
    flagged = np.flatnonzero(doubtful & confident)
    if len(flagged) == 0:
        return None
    spelling = {key: _extremes(counts)[0][0] for key, counts in _spellings(examples).items()}
    affected = [examples[usable[k]] for k in flagged]
    shown = "; ".join(
        f"{quote(ex.input_text)} ({ex.where}) is labelled {quote(ex.label)} but reads like "
        f"{quote(spelling[classes[suggested[k]]])}"
        for ex, k in zip(affected[:3], flagged[:3])
    )
    message = (
        f"Likely mislabeled: a classifier trained on the other examples puts {count(len(affected), 'example')} "
        f"firmly in another class (at least {MISLABEL_MIN_OTHER_PROBABILITY:.0%} for it, at most "
        f"{MISLABEL_MAX_GIVEN_PROBABILITY:.0%} for the label given), e.g. {shown}."
    )
    hint = "Review these labels and correct the wrong ones; where the label is right, the classes may overlap."
    return about("label-issue", "warning", message, hint, affected)


def _spellings(examples: list[Example]) -> dict[str, Counter[str]]:
    """Per label key, how many examples spell it each way."""
    spellings: dict[str, Counter[str]] = defaultdict(Counter)
    for ex in examples:
        if ex.label is not None:
            spellings[label_key(ex.label)][ex.label] += 1
    return spellings


def _out_of_fold_probabilities(texts: list[str], labels: np.ndarray) -> np.ndarray:
    """Class probabilities for each normalised text from a model that did not see it: stratified k-fold,
    TF-IDF features, multinomial naive Bayes with uniform priors. This is scikit-learn's
    TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2) and MultinomialNB(alpha=0.1,
    fit_prior=False) written out: importing scikit-learn takes longer than this whole
    computation on 10,000 examples."""
    features = _tfidf(texts)
    n_classes = int(labels.max()) + 1
    if features.shape[1] == 0:  # no word occurs twice: nothing to learn from
        return np.full((len(texts), n_classes), 1 / n_classes)
    folds = _stratified_folds(labels)
    probabilities = np.zeros((len(texts), n_classes))
    for fold in range(MISLABEL_FOLDS):
        held_out = folds == fold
        log_terms = _naive_bayes_log_terms(features[~held_out], labels[~held_out], n_classes)
        probabilities[held_out] = _softmax(np.asarray(features[held_out] @ log_terms.T))
    return probabilities


def _tfidf(texts: list[str]):
    """Rows of TF-IDF weights (1 + log tf, smoothed idf, unit length) of the words and word
    pairs found in two texts or more. The vocabulary and IDF come from all texts, which
    involves no labels."""
    from scipy import sparse

    terms, rows, n_terms = _term_numbers(texts)
    counts = sparse.csr_matrix((np.ones(len(terms)), (rows, terms)), shape=(len(texts), n_terms))
    counts.sum_duplicates()
    document_frequency = np.bincount(counts.indices, minlength=counts.shape[1])
    kept = _most_frequent_terms(document_frequency)
    counts = counts[:, kept]
    counts.data = 1 + np.log(counts.data)
    idf = np.log((1 + len(texts)) / (1 + document_frequency[kept])) + 1
    weights = sparse.csr_matrix(counts.multiply(idf))
    norms = np.sqrt(np.asarray(weights.multiply(weights).sum(axis=1)).ravel())
    return sparse.csr_matrix(sparse.diags(1 / np.maximum(norms, 1e-12)) @ weights)


def _most_frequent_terms(document_frequency: np.ndarray) -> np.ndarray:
    """The terms found in two texts or more (a term of one text tells nothing about another),
    at most MAX_TERMS of them, the most frequent first: the classes x terms table stays small."""
    shared = np.flatnonzero(document_frequency >= 2)
    by_frequency = shared[np.argsort(-document_frequency[shared], kind="stable")]
    return np.sort(by_frequency[:MAX_TERMS])


def _term_numbers(texts: list[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """Every word and word pair of the normalised texts (words between single spaces) as a
    term number, the text it is in, and how many terms there are. Words are numbered in order
    of first appearance, then the word pairs in order of (first word, second word): the order
    of `_most_frequent_terms`'s ties."""
    words = " ".join(texts).split()
    vocabulary = {word: number for number, word in enumerate(dict.fromkeys(words))}
    word_numbers = np.fromiter(map(vocabulary.__getitem__, words), dtype=np.int64, count=len(words))
    lengths = np.fromiter((text.count(" ") + 1 if text else 0 for text in texts), dtype=np.int64, count=len(texts))
    word_rows = np.repeat(np.arange(len(texts)), lengths)
    in_one_text = word_rows[1:] == word_rows[:-1]
    n = len(vocabulary)
    pair_numbers = _pair_numbers(word_numbers[:-1][in_one_text], word_numbers[1:][in_one_text], n)
    n_pairs = int(pair_numbers.max()) + 1 if len(pair_numbers) else 0
    return np.r_[word_numbers, n + pair_numbers], np.r_[word_rows, word_rows[:-1][in_one_text]], n + n_pairs


def _pair_numbers(first: np.ndarray, second: np.ndarray, n: int) -> np.ndarray:
    """Each pair's rank among the distinct pairs, in order of (first, second), for numbers below n."""
    if len(first) == 0:
        return np.zeros(0, dtype=np.int64)
    if n > 1 << 16:
        return np.unique(first * n + second, return_inverse=True)[1].reshape(-1)
    # Two stable radix sorts of 16-bit numbers, several times faster than sorting the codes.
    order = np.argsort(second.astype(np.uint16), kind="stable")
    order = order[np.argsort(first.astype(np.uint16)[order], kind="stable")]
    codes = (first * n + second)[order]
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.cumsum(np.r_[False, codes[1:] != codes[:-1]])
    return ranks


def _stratified_folds(labels: np.ndarray) -> np.ndarray:
    """A fold number per example; each class dealt round the folds in a seeded order."""
    rng = np.random.default_rng(MISLABEL_SEED)
    folds = np.empty(len(labels), dtype=np.int64)
    position = 0
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        folds[members] = (position + np.arange(len(members))) % MISLABEL_FOLDS
        position += len(members)  # the next class starts where this one ended: folds stay even
    return folds


def _naive_bayes_log_terms(features, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Per class, the log probability of each term (Lidstone-smoothed weights)."""
    from scipy import sparse

    n = len(labels)
    one_hot = sparse.csr_matrix((np.ones(n), (labels, np.arange(n))), shape=(n_classes, n))
    term_weights = (one_hot @ features).toarray() + NAIVE_BAYES_ALPHA
    return np.log(term_weights) - np.log(term_weights.sum(axis=1, keepdims=True))


def _softmax(scores: np.ndarray) -> np.ndarray:
    exponents = np.exp(scores - scores.max(axis=1, keepdims=True))
    return exponents / exponents.sum(axis=1, keepdims=True)


# Messages --------------------------------------------------------------------------------


def _extremes(counts: Counter[str]) -> tuple[tuple[str, int], tuple[str, int]]:
    """The most and the least common entries, ties going to the first name in sort order."""
    return min(counts.items(), key=lambda kv: (-kv[1], kv[0])), min(counts.items(), key=lambda kv: (kv[1], kv[0]))


def _answers(examples: list[Example], group: list[int]) -> str:
    """'"a" (f.csv:3, f.csv:9) and "b" (f.csv:12)': the different outputs of one input, and where."""
    first: dict[str, str] = {}
    wheres: dict[str, list[str]] = defaultdict(list)
    for i in group:
        key = normalize_text(examples[i].output_text)
        first.setdefault(key, examples[i].output_text)
        wheres[key].append(examples[i].where)
    return " and ".join(f"{quote(first[key])} ({', '.join(w[:2])})" for key, w in list(wheres.items())[:3])


CHECKS = [check_conflicting_outputs, check_label_issues, check_class_imbalance, check_rare_classes]
