"""Input drift: does production traffic still look like the training inputs?

Two views of the same question, both on TF-IDF features of the input text:

- **A classifier two-sample test.** A logistic regression learns to tell reference inputs
  from current ones; its cross-fitted AUC (each input scored by a model that did not see it)
  is 0.5 when the two sets come from one distribution. Under that null each fold's AUC is a
  Mann-Whitney statistic, approximately normal with mean 0.5 and variance
  (n0 + n1 + 1) / (12 n0 n1); the one-sided p-value comes from their mean. For small samples
  (where the normal approximation and the cross-fitting matter most) a permutation check
  refits the classifier on shuffled set labels and the p-value is the permutation one. The
  coefficients name the terms that separate the sets, and the highest-scored current inputs
  are the examples that look least like training.
- **Coverage.** Each current input's cosine similarity to its nearest training input. The
  cut-off for "far from every training example" is the FAR_QUANTILE of the training inputs'
  own leave-one-out nearest-neighbour similarities, so on traffic like the training data about
  FAR_QUANTILE of inputs are far by construction; what matters is the share beyond that. Far
  inputs are clustered into coverage gaps, each with its terms and examples, and they make the
  labelling queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..lazy import numpy as np

if TYPE_CHECKING:
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

ALPHA = 0.05
# Drift worth reporting: the AUC must be significantly above this, not only above 0.5. Two
# splits of one real dataset differ a little (Banking77's train and test, CLINC150's: mean
# cross-fitted AUC 0.50-0.51 at 200 inputs a side, 6-7% of draws significant against 0.5);
# that is not the drift a re-tune is for. 0.55 is Evidently's text-drift threshold.
MIN_AUC = 0.55
MAX_PER_SIDE = 5000  # the two-sample test subsamples each side to this (power is ample there)
FOLDS = 2
MIN_INPUTS = 10  # a side with fewer inputs gets no test (each fold needs both sides)
PERMUTATION_BELOW = 1000  # permutation check when the smaller side has fewer inputs than this
PERMUTATIONS = 100
PERMUTE_IF_P_BELOW = 0.2  # permutations only where the decision could turn on them (see two_sample_test)
FAR_QUANTILE = 0.05
TOP_TERMS = 12
TOP_EXAMPLES = 8
SIMILARITY_CHUNK = 2000  # current inputs per sparse product (bounds memory: chunk x reference)
SEED = 0


def vectorizer() -> TfidfVectorizer:
    from sklearn.feature_extraction.text import TfidfVectorizer  # heavy: imported when first needed

    # Words and word pairs; English stop words out, which also keeps the similarity products sparse.
    return TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=50_000, sublinear_tf=True,
                           stop_words="english", dtype=np.float32)


@dataclass
class TwoSampleResult:
    auc: float
    p_value: float  # against AUC 0.5 (one-sided)
    test: str  # "normal" | "permutation"
    n_reference: int
    n_current: int
    drifted: bool  # significant against 0.5 and against MIN_AUC (p_relevant)
    p_relevant: float = 1.0  # against AUC MIN_AUC (one-sided, normal approximation)
    current_terms: list[str] = field(default_factory=list)  # terms that mark current inputs
    reference_terms: list[str] = field(default_factory=list)  # terms the current inputs lack
    examples: list[str] = field(default_factory=list)  # current inputs least like the reference

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def mann_whitney_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """P(score of a label-1 item > score of a label-0 item), ties counting half."""
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    n1 = int(labels.sum())
    n0 = len(labels) - n1
    return float((ranks[labels == 1].sum() - n1 * (n1 + 1) / 2) / (n0 * n1))


def auc_null_p(auc: float, variance: float) -> float:
    """One-sided p-value of an AUC against 0.5, given its null variance."""
    from scipy.stats import norm  # heavy: imported when first needed

    return float(norm.sf((auc - 0.5) / np.sqrt(variance)))


def _fold_ids(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Stratified folds: each side split evenly, so every training fold has the same balance."""
    folds = np.empty(len(labels), dtype=int)
    for side in (0, 1):
        where = np.flatnonzero(labels == side)
        folds[rng.permutation(where)] = np.arange(len(where)) % FOLDS
    return folds


def _classifier() -> LogisticRegression:
    from sklearn.linear_model import LogisticRegression  # heavy: imported when first needed

    return LogisticRegression(C=1.0, solver="liblinear", max_iter=200)


def cross_fitted_scores(x: sparse.csr_matrix, labels: np.ndarray, folds: np.ndarray) -> np.ndarray:
    scores = np.empty(len(labels))
    for k in range(FOLDS):
        held = folds == k
        model = _classifier().fit(x[~held], labels[~held])
        scores[held] = model.decision_function(x[held])
    return scores


def cross_fitted_auc(scores: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> tuple[float, float]:
    """The mean of the per-fold AUCs and its null variance.

    Each fold's inputs are scored by a model fitted without them, so under the null that
    fold's AUC is exactly a Mann-Whitney statistic. Pooling the scores of different folds'
    models into one AUC is not: the models' score scales differ, which adds variance the
    Mann-Whitney formula does not count (measured: 11% false alarms at alpha 5% on two halves
    of one dataset). Nor are the folds' AUCs independent: fold 0's measures how well labels of
    fold 1 predict those of fold 0, and fold 1's the same the other way round, so under the
    null they are strongly correlated. The variance used is the one of perfectly correlated
    folds (the square of their mean standard deviation), an upper bound."""
    aucs, variances = [], []
    for k in range(FOLDS):
        held = folds == k
        n1 = int(labels[held].sum())
        n0 = int(held.sum()) - n1
        aucs.append(mann_whitney_auc(scores[held], labels[held]))
        variances.append((n0 + n1 + 1) / (12 * n0 * n1))
    return float(np.mean(aucs)), float(np.mean(np.sqrt(variances)) ** 2)


def two_sample_test(reference: list[str], current: list[str], *, seed: int = SEED,
                    permutations: int = PERMUTATIONS) -> TwoSampleResult:
    """The classifier two-sample test of `current` against `reference` (input texts)."""
    from scipy.stats import norm  # heavy: imported when first needed

    if min(len(reference), len(current)) < MIN_INPUTS:
        return TwoSampleResult(auc=0.5, p_value=1.0, test=f"not run: fewer than {MIN_INPUTS} inputs",
                               n_reference=len(reference), n_current=len(current), drifted=False)
    rng = np.random.default_rng(seed)
    ref = _subsample(reference, rng)
    cur = _subsample(current, rng)
    labels = np.r_[np.zeros(len(ref), dtype=int), np.ones(len(cur), dtype=int)]
    texts = ref + cur
    x, names = _features(texts)
    folds = _fold_ids(labels, rng)
    scores = cross_fitted_scores(x, labels, folds)
    auc, variance = cross_fitted_auc(scores, labels, folds)
    p, test = auc_null_p(auc, variance), "normal"
    # The permutation p-value is exact under exchangeability. It is computed only when the
    # normal one is below PERMUTE_IF_P_BELOW, and then decides: the test rejects only where
    # the permutation test rejects, so its size stays at most alpha, at a fraction of the cost.
    if min(len(ref), len(cur)) < PERMUTATION_BELOW and p < PERMUTE_IF_P_BELOW and permutations:
        beaten = 0
        for _ in range(permutations):
            shuffled = rng.permutation(labels)
            shuffled_folds = _fold_ids(shuffled, rng)
            beaten += cross_fitted_auc(cross_fitted_scores(x, shuffled, shuffled_folds), shuffled, shuffled_folds)[0] >= auc
        p, test = (1 + beaten) / (1 + permutations), "permutation"
    p_relevant = float(norm.sf((auc - MIN_AUC) / np.sqrt(variance)))
    result = TwoSampleResult(auc=auc, p_value=p, test=test, n_reference=len(ref), n_current=len(cur),
                             drifted=bool(p < ALPHA and p_relevant < ALPHA), p_relevant=p_relevant)
    _explain(result, x, names, labels, scores, cur)
    return result


def _features(texts: list[str]) -> tuple[sparse.csr_matrix, np.ndarray]:
    """TF-IDF of the texts and the name of each column."""
    from sklearn.feature_extraction.text import TfidfVectorizer  # heavy: imported when first needed

    try:
        vec = vectorizer()
        x = vec.fit_transform(texts)
    except ValueError:  # every word a stop word or seen once: fall back to character trigrams
        vec = TfidfVectorizer(analyzer="char", ngram_range=(3, 3), dtype=np.float32)
        x = vec.fit_transform(texts)
    return x.tocsr(), vec.get_feature_names_out()


def _subsample(texts: list[str], rng: np.random.Generator) -> list[str]:
    if len(texts) <= MAX_PER_SIDE:
        return list(texts)
    return [texts[i] for i in np.sort(rng.choice(len(texts), MAX_PER_SIDE, replace=False))]


def _explain(result: TwoSampleResult, x: sparse.csr_matrix, names: np.ndarray, labels: np.ndarray,
             scores: np.ndarray, current: list[str]) -> None:
    """The terms with the largest coefficients either way (a fit on all inputs), and the
    current inputs the cross-fitted classifier scored most current-like."""
    coef = _classifier().fit(x, labels).coef_[0]
    order = np.argsort(coef)
    result.current_terms = [str(names[i]) for i in order[::-1][:TOP_TERMS] if coef[i] > 0]
    result.reference_terms = [str(names[i]) for i in order[:TOP_TERMS] if coef[i] < 0]
    n_ref = len(labels) - len(current)
    shown: list[str] = []
    for i in np.argsort(-scores[n_ref:], kind="stable"):
        if current[i] not in shown:
            shown.append(current[i])
        if len(shown) == TOP_EXAMPLES:
            break
    result.examples = shown
