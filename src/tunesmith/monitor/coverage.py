"""Coverage: how much of the traffic lies far from every training example, and where.

Similarity is the cosine of TF-IDF vectors fitted on the training inputs, so a current input
is compared with its nearest training input in the training data's own vocabulary (words the
training data never used add nothing: an input made only of them has similarity 0). The
cut-off for "far" is the FAR_QUANTILE of the training inputs' leave-one-out nearest-neighbour
similarities: on traffic like the training data, about that share is far by construction,
and `excess_far_share` is what lies beyond it.

Far inputs are clustered (k-means on their normalised TF-IDF rows) into coverage gaps, each
with its size, its terms and the inputs nearest its centre; those make the labelling queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..lazy import numpy as np

from .drift import SIMILARITY_CHUNK, vectorizer

if TYPE_CHECKING:
    from scipy import sparse

FAR_QUANTILE = 0.05
MAX_GAPS = 8
MIN_GAP_SIZE = 5  # far inputs per gap, at least
QUEUE_PER_GAP = 50
GAP_TERMS = 6
GAP_EXAMPLES = 5
SEED = 0


@dataclass
class Gap:
    size: int
    share: float  # of all current inputs
    terms: list[str]
    examples: list[str]
    queue: list[dict] = field(default_factory=list)  # {"text", "similarity"}, nearest the centre first

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "queue"}


@dataclass
class Coverage:
    """Nearest-training-example similarity of each current input, and the far ones grouped."""

    threshold: float  # similarity below which an input is far
    similarity: np.ndarray  # per current input
    far: np.ndarray  # bool, per current input
    gaps: list[Gap]

    @property
    def far_share(self) -> float:
        return float(self.far.mean()) if len(self.far) else 0.0

    @property
    def excess_far_share(self) -> float:
        """The share of far inputs beyond what the training data's own spread gives."""
        return max(0.0, self.far_share - FAR_QUANTILE)

    def summary(self) -> dict:
        return {"threshold": round(float(self.threshold), 4), "far_share": self.far_share,
                "expected_far_share": FAR_QUANTILE, "excess_far_share": self.excess_far_share,
                "median_similarity": float(np.median(self.similarity)) if len(self.similarity) else None,
                "gaps": [g.to_dict() for g in self.gaps]}


class ReferenceIndex:
    """The training inputs, vectorised once, ready to be compared with any batch of traffic."""

    def __init__(self, reference: list[str]):
        from sklearn.feature_extraction.text import TfidfVectorizer  # heavy: imported when first needed

        texts = _distinct(reference)
        try:
            self.vectorizer = vectorizer().fit(texts)
        except ValueError:
            self.vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(3, 3), dtype=np.float32).fit(texts)
        self.matrix = self.vectorizer.transform(texts).tocsr()
        self.threshold = float(np.quantile(self._leave_one_out(), FAR_QUANTILE))

    def nearest(self, texts: list[str]) -> np.ndarray:
        """Each text's cosine similarity to its nearest reference input (distinct texts computed once)."""
        distinct = _distinct(texts)
        position = {t: i for i, t in enumerate(distinct)}
        best = _max_similarity(self.vectorizer.transform(distinct).tocsr(), self.matrix)
        return best[[position[t] for t in texts]] if texts else np.zeros(0)

    def _leave_one_out(self) -> np.ndarray:
        return _max_similarity(self.matrix, self.matrix, exclude_self=True)


def _distinct(texts: list[str]) -> list[str]:
    return list(dict.fromkeys(texts))


def _max_similarity(queries: sparse.csr_matrix, index: sparse.csr_matrix, exclude_self: bool = False) -> np.ndarray:
    """Row-wise maximum of queries @ index.T (rows are L2-normalised: cosines), in chunks."""
    best = np.zeros(queries.shape[0], dtype=np.float32)
    index_t = index.T.tocsc()
    for start in range(0, queries.shape[0], SIMILARITY_CHUNK):
        block = (queries[start : start + SIMILARITY_CHUNK] @ index_t).tocsr()
        if exclude_self:
            rows = np.arange(block.shape[0])
            block = block.tolil()
            block[rows, rows + start] = 0
            block = block.tocsr()
        if block.nnz:
            best[start : start + block.shape[0]] = block.max(axis=1).toarray().ravel()
    return best


def coverage(index: ReferenceIndex, current: list[str], *, seed: int = SEED) -> Coverage:
    similarity = index.nearest(current)
    far = similarity < index.threshold
    gaps = _gaps(index, [t for t, f in zip(current, far) if f], similarity[far], len(current), seed)
    return Coverage(index.threshold, similarity, far, gaps)


def _gaps(index: ReferenceIndex, far_texts: list[str], far_similarity: np.ndarray, total: int, seed: int) -> list[Gap]:
    from sklearn.cluster import KMeans  # heavy: imported when first needed
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    if len(far_texts) < MIN_GAP_SIZE:
        return []
    # Cluster in a vocabulary of the far inputs themselves: their new words are what sets them apart.
    try:
        vec = TfidfVectorizer(ngram_range=(1, 1), min_df=2, stop_words="english", sublinear_tf=True, dtype=np.float32)
        x = vec.fit_transform(far_texts)
    except ValueError:
        vec = TfidfVectorizer(analyzer="char", ngram_range=(3, 3), dtype=np.float32)
        x = vec.fit_transform(far_texts)
    x = normalize(x)
    k = int(min(MAX_GAPS, max(1, len(far_texts) // (4 * MIN_GAP_SIZE))))
    k = min(k, x.shape[0])
    km = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(x)
    names = vec.get_feature_names_out()
    gaps = []
    for c in range(k):
        members = np.flatnonzero(km.labels_ == c)
        if len(members) < MIN_GAP_SIZE:
            continue
        centre = km.cluster_centers_[c]
        closeness = np.asarray(x[members] @ centre).ravel()
        order = members[np.argsort(-closeness, kind="stable")]
        queue, seen = [], set()
        for i in order:
            if far_texts[i] not in seen:
                seen.add(far_texts[i])
                queue.append({"text": far_texts[i], "similarity": round(float(far_similarity[i]), 4)})
            if len(queue) == QUEUE_PER_GAP:
                break
        terms = [str(names[j]) for j in np.argsort(-centre)[:GAP_TERMS] if centre[j] > 0]
        gaps.append(Gap(size=int(len(members)), share=len(members) / total, terms=terms,
                        examples=[q["text"] for q in queue[:GAP_EXAMPLES]], queue=queue))
    gaps.sort(key=lambda g: -g.size)
    return gaps
