"""The near-duplicate engine: which texts are the same or nearly, by MinHash and LSH banding,
and which share a long passage. The duplicate checks, the label checks and the grouped split
of `prepare` all use it; nothing here knows about examples or findings.

Public interface: `normalize_text(s)`, `exact_groups`, `near_duplicate_groups` (with an
optional containment rule for short texts, `Likeness`), `leak_groups`, `shared_passage_groups`;
for tests and benchmarks, `minhash_index` (the shingle sets and signatures), `rows_per_band`,
`template_shingles`, `clear_caches` and `UnionFind`.

Text that most examples share (one system instruction, an instruction repeated in every
input) is left out of the fuzzy comparisons; it would make every example look like every other.

Near-duplicates are pairs whose shingle sets have a Jaccard similarity of at least 0.8, the
upper end of the 0.7-0.8 that text-dedup, datatrove and data-juicer use. Shingles are word
5-grams, as there, for texts of 50 words or more, where one edit keeps the similarity above
0.8. A shorter text (a typical intent or question) has too few word 5-grams for that, so its
shingles are character 3-grams: on Banking77, a typo or an added word keeps nine variants in
ten above 0.8, a replaced content word four in ten, and no two unrelated questions get there.
MinHash with LSH banding proposes candidate pairs, and the exact Jaccard of their shingle
sets confirms them, so every reported pair really is that similar. Signatures and banding
are numpy over all texts at once: 0.25 s for Banking77's 10,003 inputs, where datasketch's
MinHash.bulk and MinHashLSH take 1.7 s before any confirmation.

Near-duplicates come in clusters, and inside a cluster every pair is a candidate: 100,000
synthetic tickets hold clusters of a thousand variants of one sentence, millions of pairs. A
group needs one confirmed pair per member, so a pair is confirmed only while its two texts are
not yet joined, the likeliest pairs first, in vectorised batches (see `_similar_components`).
The groups are exactly those that confirming every candidate pair would give.

A short message with a courtesy phrase appended is only about 0.6 alike by 3-grams. With a
containment (`Likeness`), texts of 25 words or fewer are also joined when one lies inside the
other (90% of its 3-grams, its words in order but one, at least 0.5 alike): a second banding,
at 0.5, over those texts only, whose groups are joined with the others. On labelled pairs
from Banking77 / CLINC150 (bench/data_check.py) it takes recall from 41% / 34% to 79% / 66% at
a precision of 99% / 97%; a containment of 85% would give 84% / 72% at 98% / 93%, and 80%
88% / 76% at 96% / 88%: 90% is where precision starts to fall."""

from __future__ import annotations

import string
import zlib
from collections import defaultdict
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache
from itertools import repeat
from typing import Hashable

from ..lazy import numpy as np

NEAR_DUPLICATE_THRESHOLD = 0.8
# Short texts with a few words added (a courtesy phrase, a detail) fall below 0.8 although the
# shorter one lies wholly inside the longer: the near-duplicate check also joins two short
# texts when 90% of the smaller one's shingles are in the other, the two are at least 0.5 alike
# (what was added is no longer than what was kept) and the smaller one has 20 or more shingles
# (some 22 characters; shorter texts lie inside too many others). It applies to texts of 25
# words or fewer (an intent, a question), where Jaccard is weakest and the looser banding cheap.
SHORT_CONTAINMENT = 0.9
CONTAINED_MIN_JACCARD = 0.5
CONTAINED_MIN_SHINGLES = 20
CONTAINED_MAX_WORDS = 25  # the containment rule is for texts of this many words or fewer
# A leak is an error, so it must be beyond doubt: inputs across splits must be at least 0.9
# alike (a typo, punctuation, a word in a long text). `prepare` groups at 0.8, so what it
# splits is also leak-free here.
LEAK_THRESHOLD = 0.9
WORD_SHINGLE = 5
CHARACTER_SHINGLE = 3
SHORT_TEXT_WORDS = 50  # below this many words, shingles are characters

# 128 permutations, datasketch's default. The banding (rows per band) is chosen per threshold
# so that a pair exactly at the threshold becomes a candidate with 99% probability.
NUM_PERM = 128
MIN_CANDIDATE_PROBABILITY = 0.99
MINHASH_SEED = 1
# Band collisions are cheap to over-produce, so candidates whose estimated similarity is more
# than 0.15 below the threshold (over 4 standard deviations of a 128-permutation estimate)
# are dropped before the exact check.
ESTIMATE_MARGIN = 0.15
# Candidates estimated at least this far above the threshold are confirmed as they are found,
# to join clusters early; the others wait until every band has been seen (see
# _similar_components). This orders the work only: the groups do not depend on it.
LIKELY_MARGIN = 0.05
PAIR_BATCH = 1 << 21  # candidate pairs enumerated at a time
ROW_BATCH = 1 << 14  # pairs whose signature rows or shingle sets are compared at a time
FIRST_CONFIRM_BATCH = 1 << 14  # pairs confirmed in the first batch; each next batch twice as many
MIN_ROUND_PAIRS = 256  # below this many pairs, a batch is confirmed in one go
SIGNATURE_BLOCK_TEXTS = 2048
WINDOW_BLOCK = 1 << 16  # tokens hashed at a time

# A shingle found in more than half of the distinct texts, and in 10 or more, is template text
# (a shared system instruction, an instruction repeated in every input), not evidence that two
# texts are alike. In a handful of texts a majority may as well be a few paraphrases.
TEMPLATE_SHARE = 0.5
TEMPLATE_MIN_TEXTS = 10
TEMPLATE_BUCKETS = 1 << 20  # shingles are counted by bucket first (see template_shingles)

# Long n-gram overlap between splits, as lm-evaluation-harness's decontamination does it. Its
# passages are natural text; inputs built from a template share 13-grams made of template
# words and a short slot. So words covered by a template phrase (a word 5-gram found in more
# than 10 inputs) are taken out first, and a leaked passage is 13 words free of them.
LEAK_NGRAM_WORDS = 13
TEMPLATE_PHRASE_WORDS = 5
TEMPLATE_PHRASE_MAX_INPUTS = 10

# Punctuation stripped from the edges of words: ASCII and the common typographic marks.
_EDGE_PUNCTUATION = string.punctuation + "“”‘’«»‹›„‚…–—¿¡·"


@dataclass(frozen=True)
class _HashConstants:
    """Constants for the polynomial hash of token windows and the multiply-shift MinHash
    permutations; any fixed odd 64-bit numbers would do. Made on first use (numpy loads lazily)."""

    window_base: np.uint64
    perm_a: np.ndarray
    perm_b: np.ndarray
    band_mix: np.ndarray
    shift_32: np.uint64
    shift_56: np.uint64
    byte_sum: np.uint64


@lru_cache(maxsize=1)
def _constants() -> _HashConstants:
    rng = np.random.default_rng(MINHASH_SEED)
    return _HashConstants(
        window_base=np.uint64(0x9E3779B97F4A7C15),
        perm_a=rng.integers(1, 2**63, size=NUM_PERM, dtype=np.uint64) | np.uint64(1),
        perm_b=rng.integers(0, 2**63, size=NUM_PERM, dtype=np.uint64),
        band_mix=rng.integers(1, 2**63, size=NUM_PERM, dtype=np.uint64) | np.uint64(1),
        shift_32=np.uint64(32),
        shift_56=np.uint64(56),
        byte_sum=np.uint64(0x0101010101010101),
    )


# Public interface --------------------------------------------------------------------------


def normalize_text(text: str) -> str:
    """Lowercase, whitespace collapsed to single spaces, punctuation stripped from word edges."""
    return " ".join(filter(None, map(str.strip, text.casefold().split(), repeat(_EDGE_PUNCTUATION))))


def normalize_texts(texts: list[str]) -> list[str]:
    """`normalize_text` of each text. The checks normalise the same inputs several times, so
    the last two lists are remembered."""
    return list(_normalized(tuple(texts)))


def exact_groups(keys: list[Hashable]) -> list[list[int]]:
    """Indices grouped by identical key; only groups of two or more, in order of first index."""
    by_key: dict[Hashable, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        by_key[key].append(i)
    return [group for group in by_key.values() if len(group) > 1]


def near_duplicate_groups(texts: list[str], threshold: float = NEAR_DUPLICATE_THRESHOLD,
                          containment: float | None = None) -> list[list[int]]:
    """Indices of texts that are near-duplicates (Jaccard of shingles >= threshold, after
    `normalize_text`), joined transitively; exact duplicates included. With `containment`,
    two short texts are also alike when that share of the smaller one's shingles is in the
    other (see `Likeness`). Only groups of two or more; each group sorted, groups in order of
    their first index. Texts that normalise to nothing belong to no group."""
    return [list(group) for group in _near_duplicate_groups(tuple(texts), Likeness(threshold, containment))]


@dataclass(frozen=True)
class Likeness:
    """When two texts are near-duplicates: a Jaccard of their shingle sets of `threshold` or
    more; or, with `containment` set and both texts short (character shingles), the smaller
    set is that much inside the larger, the sets are at least CONTAINED_MIN_JACCARD alike
    (what is added is no longer than what is kept) and the smaller has CONTAINED_MIN_SHINGLES
    or more (a few words are inside too many other texts)."""

    threshold: float = NEAR_DUPLICATE_THRESHOLD
    containment: float | None = None

    @property
    def loosest_jaccard(self) -> float:
        """The lowest Jaccard of two texts that may be alike: what the banding must find."""
        return self.threshold if self.containment is None else min(self.threshold, CONTAINED_MIN_JACCARD)

    def alike(self, common: np.ndarray, first_size: np.ndarray, second_size: np.ndarray, both_short: np.ndarray,
              texts: list[str], first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """Whether each pair of texts (indices into `texts`, with their shingle counts and
        how many they share) is alike."""
        jaccard = common / (first_size + second_size - common)
        alike = jaccard >= self.threshold
        if self.containment is not None:
            smaller = np.minimum(first_size, second_size)
            maybe = (~alike & both_short & (common >= self.containment * smaller)
                     & (jaccard >= CONTAINED_MIN_JACCARD) & (smaller >= CONTAINED_MIN_SHINGLES))
            for k in np.flatnonzero(maybe).tolist():
                alike[k] = words_inside(texts[first[k]], texts[second[k]], self.containment)
        return alike


def words_inside(a: str, b: str, share: float) -> bool:
    """Whether the shorter text's words, in their order, are found in the longer one, all but
    a `1 - share` part of them (at least all but one): the shorter text with words added or a
    word changed. Character shingles alone do not see order, and the same words in another
    order often ask another question."""
    small, large = sorted((a.split(" "), b.split(" ")), key=len)
    need = min(share * len(small), len(small) - 1)
    if _greedy_common(small, large) >= need:  # a common subsequence that long exists: decided in one pass
        return True
    matcher = SequenceMatcher(None, small, large, autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()) >= need


def _greedy_common(small: list[str], large: list[str]) -> int:
    """The length of one common subsequence, found by taking each word of `small` at its
    next occurrence in `large` (skipping it when there is none): at most the longest."""
    kept, position = 0, 0
    for word in small:
        try:
            position = large.index(word, position) + 1
            kept += 1
        except ValueError:
            pass
    return kept


def leak_groups(texts: list[str]) -> list[list[int]]:
    """Everything the split-leak check would call a leak if it crossed splits: near-duplicates
    (at the looser near-duplicate threshold) joined with texts sharing a 13-word passage.
    `prepare` keeps each group in one split, so its own output never trips the check."""
    components = UnionFind(len(texts))
    for group in near_duplicate_groups(texts) + shared_passage_groups(texts, None):
        for i in group[1:]:
            components.join(group[0], i)
    return sorted(sorted(g) for g in components.groups() if len(g) > 1)


def clear_caches() -> None:
    """Forget the remembered normalised texts, indexes and groups (for tests that change
    the module's batch sizes)."""
    for cached in (_normalized, minhash_index, _near_duplicate_groups):
        cached.cache_clear()


# Near-duplicate groups -------------------------------------------------------------------


@lru_cache(maxsize=2)
def _normalized(texts: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(map(normalize_text, texts))


@lru_cache(maxsize=4)
def _near_duplicate_groups(texts: tuple[str, ...], likeness: Likeness) -> tuple[tuple[int, ...], ...]:
    if likeness.containment is None:
        return _groups_by(texts, likeness)
    # Containment needs looser banding (Jaccard 0.5), many more candidate pairs: it is looked
    # for among the texts of CONTAINED_MAX_WORDS words or fewer only, and its groups joined
    # with the Jaccard groups of all texts.
    groups = _near_duplicate_groups(texts, Likeness(likeness.threshold))
    normalized = _normalized(texts)
    few_words = [i for i, text in enumerate(normalized) if text and text.count(" ") < CONTAINED_MAX_WORDS]
    contained = _groups_by(tuple(normalized[i] for i in few_words), likeness)
    if not contained:
        return groups
    components = UnionFind(len(texts))
    for group in [*groups, *(tuple(few_words[i] for i in g) for g in contained)]:
        for i in group[1:]:
            components.join(group[0], i)
    return tuple(sorted(tuple(sorted(g)) for g in components.groups() if len(g) > 1))


def _groups_by(texts: tuple[str, ...], likeness: Likeness) -> tuple[tuple[int, ...], ...]:
    index = minhash_index(texts)
    # Each distinct text goes by the first distinct text of its component (a text without
    # shingles is alone in its own); texts that normalise to nothing belong to no group.
    names = np.arange(len(index.copies))
    names[index.present] = index.present[_first_members(_similar_components(index, likeness))]
    indices = np.flatnonzero(index.distinct >= 0)
    keys = names[index.distinct[indices]]
    order = np.argsort(keys, kind="stable")  # by group, then index
    keys, indices = keys[order], indices[order].tolist()
    bounds = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1], True]).tolist()
    return tuple(sorted(tuple(indices[lo:hi]) for lo, hi in zip(bounds, bounds[1:]) if hi - lo > 1))


def _first_members(labels: np.ndarray) -> np.ndarray:
    """For each element, the first element with its label."""
    first = np.full(len(labels), len(labels))
    np.minimum.at(first, labels, np.arange(len(labels)))
    return first[labels]


@dataclass
class MinHashIndex:
    copies: list[list[int]]  # per distinct normalised text, the indices of the texts that are it
    distinct: np.ndarray  # per text, its distinct text (an index into copies), -1 if it normalises to nothing
    sets: _ShingleSets  # their shingle sets
    present: np.ndarray  # those with shingles left: a text of template text only compares with nothing
    signatures: np.ndarray  # MinHash signatures of the present ones, one row each
    short: np.ndarray  # per distinct text, whether it is short (its shingles are characters)
    texts: list[str]  # the distinct normalised texts


# The checks ask about the same texts more than once per run (inputs: for leaks at 0.9, for
# label disagreements at 0.85), so the signatures of the last two text lists are kept.
@lru_cache(maxsize=2)
def minhash_index(texts: tuple[str, ...]) -> MinHashIndex:
    numbers: dict[str, int] = {}
    distinct = np.fromiter(
        (numbers.setdefault(text, len(numbers)) if text else -1 for text in _normalized(texts)),
        dtype=np.int64, count=len(texts),
    )
    order = np.argsort(distinct, kind="stable")[np.count_nonzero(distinct < 0):]
    copies = np.split(order, np.flatnonzero(np.diff(distinct[order])) + 1) if len(order) else []
    hashes, starts, short = _shingle_hashes(list(numbers))
    present = np.flatnonzero(np.diff(starts) > 0)
    signatures = _minhash_signatures(hashes, starts[present])
    return MinHashIndex([c.tolist() for c in copies], distinct, _ShingleSets(hashes, starts), present, signatures, short,
                        list(numbers))


def _shingle_hashes(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each text's distinct shingles as 32-bit hashes, template shingles dropped: text i's
    are hashes[starts[i]:starts[i + 1]], sorted; and whether each text is short."""
    is_short = np.array([text.count(" ") + 1 < SHORT_TEXT_WORDS for text in texts], dtype=bool)
    counts = np.zeros(len(texts), dtype=np.int64)
    parts = []
    for members, tokens_of, size in ((np.flatnonzero(is_short), _characters, CHARACTER_SHINGLE),
                                     (np.flatnonzero(~is_short), _words, WORD_SHINGLE)):
        tokens, lengths = tokens_of([texts[i] for i in members])  # every text has a shingle's worth
        shingles, counts[members] = _distinct_rows(_shingles(tokens, lengths, size), lengths - size + 1)
        parts.append((members, shingles))
    starts = np.r_[0, np.cumsum(counts)]
    hashes = np.empty(starts[-1], dtype=np.uint32)
    for members, shingles in parts:  # in text order
        hashes[_positions(starts[members], counts[members])] = shingles
    template = template_shingles(hashes, len(texts))
    if template.any():
        counts -= np.bincount(np.repeat(np.arange(len(texts)), counts)[template], minlength=len(texts))
        hashes, starts = hashes[~template], np.r_[0, np.cumsum(counts)]
    return hashes, starts, is_short


def _shingles(tokens: np.ndarray, lengths: np.ndarray, size: int) -> np.ndarray:
    """The shingle (the high half of `_window_hashes`'s hash) of every run of `size` tokens
    inside one text, texts in turn, where text i is the next lengths[i] >= size tokens. A block
    at a time, so that the passes over it stay in the CPU cache."""
    constants = _constants()
    n_windows = len(tokens) - size + 1
    if n_windows <= 0:
        return np.zeros(0, dtype=np.uint32)
    shingles = np.empty(n_windows, dtype=np.uint32)
    for lo in range(0, n_windows, WINDOW_BLOCK):
        hi = min(lo + WINDOW_BLOCK, n_windows)
        hashes = np.zeros(hi - lo, dtype=np.uint64)
        for k in range(size):
            hashes += tokens[lo + k : hi + k]
            hashes *= constants.window_base
        shingles[lo:hi] = hashes >> constants.shift_32
    ends = np.cumsum(lengths)
    across = (ends[:, None] - np.arange(1, size)).ravel()  # the windows that start in a text's last size - 1 tokens
    inside = np.ones(n_windows, dtype=bool)
    inside[across[across < n_windows]] = False
    return shingles[inside]


def _distinct_rows(values: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row (the values of row i are the next counts[i] in `values`), its distinct values,
    sorted, rows in turn; and how many each row has. Rows of similar length are sorted
    together as the rows of a matrix, several times faster than sorting (row, value) keys."""
    starts = np.r_[0, np.cumsum(counts)][:-1]
    widths = np.left_shift(1, np.ceil(np.log2(np.maximum(counts, 8))).astype(np.int64))  # a power of two, >= 8
    distinct_counts = np.zeros(len(counts), dtype=np.int64)
    pieces = []
    for width in np.unique(widths[counts > 0]).tolist():
        rows = np.flatnonzero((widths == width) & (counts > 0))
        lengths = counts[rows]
        source = _positions(starts[rows], lengths)
        matrix = np.full(len(rows) * width, np.iinfo(np.uint32).max, dtype=np.uint32)
        matrix[source + np.repeat(np.arange(len(rows)) * width - starts[rows], lengths)] = values[source]
        matrix = matrix.reshape(len(rows), width)
        matrix.sort(axis=1)  # padding goes last; a real value equal to it is alike after the row's length
        new = np.arange(width) < lengths[:, None]
        new[:, 1:] &= matrix[:, 1:] != matrix[:, :-1]
        distinct_counts[rows] = np.count_nonzero(new, axis=1)
        pieces.append((rows, matrix[new]))
    if len(pieces) == 1 and len(pieces[0][0]) == len(counts):
        return pieces[0][1], distinct_counts
    distinct_starts = np.r_[0, np.cumsum(distinct_counts)]
    distinct = np.empty(distinct_starts[-1], dtype=np.uint32)
    for rows, row_values in pieces:
        distinct[_positions(distinct_starts[rows], distinct_counts[rows])] = row_values
    return distinct, distinct_counts


def _positions(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """starts[0], starts[0] + 1, ..., starts[0] + lengths[0] - 1, starts[1], ...: the
    positions of several runs, in turn."""
    total = int(lengths.sum())
    return np.arange(total) + np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)


def template_shingles(hashes: np.ndarray, n_texts: int) -> np.ndarray:
    """Which entries are template shingles: found in more than TEMPLATE_SHARE of the texts
    (each text's shingles are distinct), and in TEMPLATE_MIN_TEXTS or more. The count of a
    bucket (the low 20 bits) bounds the counts of its shingles, so only the shingles of full
    buckets need counting."""
    bucket = hashes & np.uint32(TEMPLATE_BUCKETS - 1)
    in_bucket = np.bincount(bucket, minlength=TEMPLATE_BUCKETS)
    full = (in_bucket > TEMPLATE_SHARE * n_texts) & (in_bucket >= TEMPLATE_MIN_TEXTS)
    if not full.any():
        return np.zeros(len(hashes), dtype=bool)
    candidates = np.flatnonzero(full[bucket])
    values, counts = np.unique(hashes[candidates], return_counts=True)
    common = (counts > TEMPLATE_SHARE * n_texts) & (counts >= TEMPLATE_MIN_TEXTS)
    with_common, with_other = np.zeros(TEMPLATE_BUCKETS, dtype=bool), np.zeros(TEMPLATE_BUCKETS, dtype=bool)
    with_common[values[common] & np.uint32(TEMPLATE_BUCKETS - 1)] = True
    with_other[values[~common] & np.uint32(TEMPLATE_BUCKETS - 1)] = True
    template = with_common[bucket]  # right for buckets of template shingles only, or of none
    mixed = candidates[(with_common & with_other)[bucket[candidates]]]
    template[mixed] = np.isin(hashes[mixed], values[common])
    return template


def _characters(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The texts' characters as numbers, each text padded to at least one shingle, in turn;
    and how many each has."""
    padded = [text.ljust(CHARACTER_SHINGLE, "\0") for text in texts]
    codes = np.frombuffer("".join(padded).encode("utf-32-le"), dtype=np.uint32)
    return codes, np.fromiter(map(len, padded), dtype=np.int64, count=len(padded))


def _words(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The normalised texts' words as hashes, in turn; and how many each has."""
    words = " ".join(texts).split(" ") if texts else []
    hashes = {word: zlib.crc32(word.encode("utf-8")) for word in dict.fromkeys(words)}  # stable, unlike hash()
    numbers = np.fromiter(map(hashes.__getitem__, words), dtype=np.uint32, count=len(words))
    return numbers, np.fromiter((text.count(" ") + 1 for text in texts), dtype=np.int64, count=len(texts))


def _window_hashes(tokens: np.ndarray, owner: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A 64-bit hash of every run of `size` tokens that lies inside one text, and where it starts."""
    constants = _constants()
    n_windows = len(tokens) - size + 1
    if n_windows <= 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    hashes = np.zeros(n_windows, dtype=np.uint64)
    # Polynomial hash, modulo 2**64 by overflow. Multiplying after each add (the last token too)
    # spreads every token into the high bits, which are the ones a 32-bit shingle keeps.
    for k in range(size):
        hashes += tokens[k : k + n_windows]
        hashes *= constants.window_base
    starts = np.flatnonzero(owner[:n_windows] == owner[size - 1 :])  # not running across two texts
    return hashes[starts], starts


def _minhash_signatures(hashes: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """MinHash signatures, one row per text, of the non-empty shingle sets that begin at
    `starts`: for each permutation h -> (a*h + b) >> 32, the minimum over a text's shingles."""
    constants = _constants()
    signatures = np.empty((len(starts), NUM_PERM), dtype=np.uint32)
    bounds = np.r_[starts, len(hashes)]
    # A block of texts at a time, so that the 128 passes over its shingles stay in the CPU cache.
    for first in range(0, len(starts), SIGNATURE_BLOCK_TEXTS):
        last = min(first + SIGNATURE_BLOCK_TEXTS, len(starts))
        block = hashes[bounds[first] : bounds[last]].astype(np.uint64)
        offsets = bounds[first:last] - bounds[first]
        permuted = np.empty_like(block)
        for p in range(NUM_PERM):
            np.multiply(block, constants.perm_a[p], out=permuted)
            np.add(permuted, constants.perm_b[p], out=permuted)
            np.right_shift(permuted, constants.shift_32, out=permuted)
            signatures[first:last, p] = np.minimum.reduceat(permuted, offsets)
    return signatures


@lru_cache(maxsize=None)
def rows_per_band(threshold: float) -> int:
    """The most rows per band (fewest false candidates) that still makes a pair at the
    threshold a candidate with MIN_CANDIDATE_PROBABILITY: 1 - (1 - t^r)^bands."""
    for rows in range(NUM_PERM, 0, -1):
        if 1 - (1 - threshold**rows) ** (NUM_PERM // rows) >= MIN_CANDIDATE_PROBABILITY:
            return rows
    return 1


def _similar_components(index: MinHashIndex, likeness: Likeness) -> np.ndarray:
    """A component label per present text: the components of the graph whose edges are the
    candidate pairs (same signature rows in some band, estimated similarity at least
    threshold - ESTIMATE_MARGIN) whose shingle sets have an exact Jaccard of threshold or more.

    Inside a cluster of near-duplicates every pair is a candidate, but joining the cluster
    takes one confirmed pair per member. So a pair is looked at only while its two texts are
    apart: band by band, the pairs of each bucket whose texts are apart, and that collide in no
    earlier band (where they were looked at already), pass the cheap tests of `_PairFilter`;
    those estimated well above the threshold are confirmed at once, to join clusters early,
    and the others at the end, when most of them lie between clusters. Confirming drops the
    pairs joined in the meantime (`_Components.confirm`). A candidate pair whose texts are
    joined by the time its turn comes needs no confirming, so the components are those that
    confirming every candidate pair would give, whatever the order."""
    constants = _constants()
    signatures = index.signatures
    n = len(signatures)
    if n < 2:
        return np.arange(n)
    rows = rows_per_band(likeness.loosest_jaccard)
    keys = np.empty((NUM_PERM // rows, n), dtype=np.uint64)  # per band, one number per text (wrapping)
    for band in range(len(keys)):
        start = band * rows
        band_rows = signatures[:, start : start + rows].astype(np.uint64)
        keys[band] = (band_rows * constants.band_mix[start : start + rows]).sum(axis=1)
    pairs = _PairFilter(index, likeness, keys)
    components = _Components(index, likeness)
    later = []
    for band in range(len(keys)):
        for first, second in _bucket_pairs(keys[band], components.labels):
            apart = components.labels.take(first) != components.labels.take(second)  # joined since
            first, second, matches = pairs.plausible(first[apart], second[apart], band)
            likely = matches >= pairs.likely_matches
            components.confirm(first[likely], second[likely], matches[likely])
            later.append((first[~likely], second[~likely], matches[~likely]))
    if later:
        components.confirm(*(np.concatenate(arrays) for arrays in zip(*later)))
    return components.labels


def _bucket_pairs(keys: np.ndarray, labels: np.ndarray):
    """The pairs of texts with the same key and different labels, each once, in batches of
    about PAIR_BATCH."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    new_bucket = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
    bucket = np.cumsum(new_bucket) - 1
    shared = np.bincount(bucket)[bucket] > 1  # texts alone in their bucket pair with nothing
    order, bucket = order[shared], bucket[shared]
    n = len(order)
    if n == 0:
        return
    order = order[np.argsort(bucket * len(keys) + labels[order], kind="stable")]  # by bucket, then label
    sorted_labels = labels[order]  # bucket is still in order
    new_bucket = np.r_[True, bucket[1:] != bucket[:-1]]
    new_run = new_bucket | np.r_[True, sorted_labels[1:] != sorted_labels[:-1]]
    # Each text pairs with the texts after its label's run, up to the end of its bucket.
    bucket_end = np.r_[np.flatnonzero(new_bucket)[1:], n][np.cumsum(new_bucket) - 1]
    run_end = np.r_[np.flatnonzero(new_run)[1:], n][np.cumsum(new_run) - 1]
    counts = bucket_end - run_end
    positions = np.flatnonzero(counts)
    counts, run_end = counts[positions], run_end[positions]
    cumulative = np.cumsum(counts)
    lo = 0
    while lo < len(positions):
        hi = max(int(np.searchsorted(cumulative, (cumulative[lo] - counts[lo]) + PAIR_BATCH, side="right")), lo + 1)
        repeats = counts[lo:hi]
        yield order[np.repeat(positions[lo:hi], repeats)], order[_positions(run_end[lo:hi], repeats)]
        lo = hi


class _PairFilter:
    """The cheap tests a pair passes before its exact Jaccard is worth computing."""

    def __init__(self, index: MinHashIndex, likeness: Likeness, keys: np.ndarray):
        threshold, loosest = likeness.threshold, likeness.loosest_jaccard
        self.keys = keys
        self.signatures = index.signatures
        self.low_bytes = index.signatures.astype(np.uint8)  # agree wherever the signatures do, and more
        starts = index.sets.starts
        self.sizes = (starts[index.present + 1] - starts[index.present]).astype(np.float64)
        self.max_ratio = loosest - 1e-9  # Jaccard <= smaller / larger set: a safe bound
        # Fewest equal signature rows for an estimate (equal rows / NUM_PERM) of
        # the loosest Jaccard - ESTIMATE_MARGIN, and of threshold + LIKELY_MARGIN.
        shares = np.arange(NUM_PERM + 1) / NUM_PERM
        self.min_matches = int(np.argmax(shares >= loosest - ESTIMATE_MARGIN))
        self.likely_matches = int(np.argmax(np.r_[shares >= threshold + LIKELY_MARGIN, True]))
        # Below the threshold's own margin, a pair can only be alike by containment: both texts
        # short, and the containment its estimated Jaccard and set sizes imply high enough.
        self.strict_matches = int(np.argmax(shares >= threshold - ESTIMATE_MARGIN))
        self.containment = likeness.containment
        self.short = index.short[index.present]

    def plausible(self, first: np.ndarray, second: np.ndarray, band: int):
        """The pairs that first collide in this band, with sizes that allow the threshold
        and enough equal signature rows; and how many rows are equal."""
        small, large = self.sizes.take(first), self.sizes.take(second)
        keep = np.minimum(small, large) >= self.max_ratio * np.maximum(small, large)
        first, second = first[keep], second[keep]
        # The cheapest tests first (the order changes the work, not the pairs kept): equal low
        # bytes of the signatures bound the equal rows from above.
        at_most = _equal_rows(self.low_bytes, first, second)
        keep = at_most >= self.min_matches
        if self.containment is not None:
            keep &= (at_most >= self.strict_matches) | self._maybe_contained(first, second, at_most)
        first, second = first[keep], second[keep]
        for start in range(0, band, 4):  # dropping the pairs seen in earlier bands, 4 bands at a time
            keep = np.ones(len(first), dtype=bool)
            for earlier in self.keys[start : min(start + 4, band)]:
                keep &= earlier.take(first) != earlier.take(second)
            first, second = first[keep], second[keep]
        matches = _equal_rows(self.signatures, first, second)
        keep = matches >= self.min_matches
        if self.containment is not None:
            keep &= (matches >= self.strict_matches) | self._maybe_contained(first, second, matches)
        return first[keep], second[keep], matches[keep]

    def _maybe_contained(self, first: np.ndarray, second: np.ndarray, matches: np.ndarray) -> np.ndarray:
        """Common shingles estimated from the Jaccard estimate J and the sizes a, b
        (J (a + b) / (1 + J)), as a share of the smaller set, within the margin of containment."""
        jaccard = matches / NUM_PERM
        small, large = self.sizes.take(first), self.sizes.take(second)
        common = jaccard * (small + large) / (1 + jaccard)
        contained = common >= (self.containment - ESTIMATE_MARGIN) * np.minimum(small, large)
        return contained & self.short.take(first) & self.short.take(second)


def _equal_rows(rows: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """How many entries rows[first[k]] and rows[second[k]] have equal, per k (at most 255)."""
    constants = _constants()
    counts = np.empty(len(first), dtype=np.int64)
    for lo in range(0, len(first), ROW_BATCH):
        equal = rows.take(first[lo : lo + ROW_BATCH], axis=0) == rows.take(second[lo : lo + ROW_BATCH], axis=0)
        # Sum the 0/1 bytes eight at a time, as 64-bit words (no byte exceeds 255), then
        # add up each word's bytes with one multiplication.
        words = np.add.reduce(equal.view(np.uint64), axis=1)
        counts[lo : lo + ROW_BATCH] = (words * constants.byte_sum) >> constants.shift_56
    return counts


class _Components:
    """Components of the confirmed pairs among the present texts, as a label per text."""

    def __init__(self, index: MinHashIndex, likeness: Likeness):
        self.present, self.likeness, self.short, self.texts = index.present, likeness, index.short, index.texts
        self.sizes = np.diff(index.sets.starts)
        self.sets = index.sets.matrix()
        self.labels = np.arange(len(index.present))

    def confirm(self, first: np.ndarray, second: np.ndarray, matches: np.ndarray) -> None:
        """Join each pair whose exact Jaccard reaches the threshold, unless already joined.
        The pairs most alike by estimate go first, in batches that grow, and pairs already
        joined are dropped before each batch."""
        order = np.argsort(NUM_PERM - matches.astype(np.uint8), kind="stable")  # the most alike first
        first, second = first[order], second[order]
        lo, batch = 0, FIRST_CONFIRM_BATCH
        while lo < len(first):
            self._confirm_batch(first[lo : lo + batch], second[lo : lo + batch])
            lo, batch = lo + batch, batch * 2

    def _confirm_batch(self, first: np.ndarray, second: np.ndarray) -> None:
        """Pairs inside one cluster are many: while most checked pairs are confirmed, each
        component first checks one pair of its own, joins, and drops the pairs now inside."""
        while True:
            apart = self.labels.take(first) != self.labels.take(second)
            first, second = first[apart], second[apart]
            if len(first) < MIN_ROUND_PAIRS:
                break
            chosen = np.zeros(len(first), dtype=bool)
            for labels in (self.labels.take(first), self.labels.take(second)):
                pick = np.full(len(self.labels), -1)
                pick[labels] = np.arange(len(first))
                chosen[pick[pick >= 0]] = True
            if np.count_nonzero(chosen) * 2 > len(first):
                break
            confirmed = self._join_similar(first[chosen], second[chosen])
            first, second = first[~chosen], second[~chosen]
            if confirmed * 2 < np.count_nonzero(chosen):  # mostly rejected: the rest are mostly rejections too
                apart = self.labels.take(first) != self.labels.take(second)
                first, second = first[apart], second[apart]
                break
        self._join_similar(first, second)

    def _join_similar(self, first: np.ndarray, second: np.ndarray) -> int:
        a, b = self.present[first], self.present[second]
        similar = self.likeness.alike(self._common(a, b), self.sizes.take(a), self.sizes.take(b),
                                      self.short.take(a) & self.short.take(b), self.texts, a, b)
        self.join(first[similar], second[similar])
        return int(similar.sum())

    def _common(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """How many shingles each pair of texts has in common: the entries of the elementwise
        product of their rows in the 0/1 matrix of the sets."""
        common = np.empty(len(first), dtype=np.int64)
        for lo in range(0, len(first), ROW_BATCH):
            both = self.sets[first[lo : lo + ROW_BATCH]].multiply(self.sets[second[lo : lo + ROW_BATCH]])
            common[lo : lo + ROW_BATCH] = np.diff(both.indptr)
        return common

    def join(self, first: np.ndarray, second: np.ndarray) -> None:
        if len(first) == 0:
            return
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        n = len(self.labels)
        # (float data: repeated edges are summed, which must not wrap round to zero)
        edges = coo_matrix((np.ones(len(first)), (self.labels[first], self.labels[second])), shape=(n, n))
        self.labels = connected_components(edges, directed=False)[1].astype(np.int64)[self.labels]


class _ShingleSets:
    """Shingle sets: text i's are hashes[starts[i]:starts[i + 1]], sorted."""

    def __init__(self, hashes: np.ndarray, starts: np.ndarray):
        self.hashes, self.starts = hashes, starts

    def get(self, i: int) -> set[int]:
        return set(self.hashes[self.starts[i] : self.starts[i + 1]].tolist())

    def jaccard(self, i: int, j: int) -> float:
        a, b = self.get(i), self.get(j)
        common = len(a & b)
        return common / (len(a) + len(b) - common)

    def matrix(self):
        """The sets as a sparse 0/1 matrix, a row per text and a column per shingle hash."""
        from scipy.sparse import csr_matrix

        ones = np.ones(len(self.hashes), dtype=np.int8)
        matrix = csr_matrix((ones, self.hashes.astype(np.int64), self.starts), shape=(len(self.starts) - 1, 1 << 32))
        matrix.has_sorted_indices = True
        return matrix


class UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def joined(self, i: int, j: int) -> bool:
        return self.find(i) == self.find(j)

    def join(self, i: int, j: int) -> None:
        a, b = self.find(i), self.find(j)
        self.parent[max(a, b)] = min(a, b)

    def groups(self) -> list[list[int]]:
        members: dict[int, list[int]] = defaultdict(list)
        for i in range(len(self.parent)):
            members[self.find(i)].append(i)
        return list(members.values())


# Shared passages across splits -----------------------------------------------------------


def shared_passage_groups(inputs: list[str], splits: list[str] | None) -> list[list[int]]:
    """Indices of inputs joined by a 13-word passage, free of template phrases, that occurs
    in more than one split (with no splits: in more than one input)."""
    normalized = normalize_texts(inputs)
    long_enough = [i for i, text in enumerate(normalized) if text.count(" ") + 1 >= LEAK_NGRAM_WORDS]
    tokens, lengths = _words([normalized[i] for i in long_enough])
    owner = np.repeat(np.arange(len(long_enough)), lengths)
    passages, starts = _window_hashes(tokens, owner, LEAK_NGRAM_WORDS)
    template_so_far = np.r_[0, np.cumsum(_template_words(tokens, owner))]  # template words before each position
    free = template_so_far[starts + LEAK_NGRAM_WORDS] == template_so_far[starts]
    passages, owners = _one_per_text(passages[free], owner[starts[free]])
    if len(passages) == 0:
        return []
    run_starts = np.flatnonzero(np.r_[True, passages[1:] != passages[:-1]])
    if splits is None:
        across = np.ones(len(run_starts), dtype=bool)
    else:
        split_ids = np.unique([splits[i] for i in long_enough], return_inverse=True)[1][owners]
        across = np.minimum.reduceat(split_ids, run_starts) != np.maximum.reduceat(split_ids, run_starts)
    run_ends = np.r_[run_starts[1:], len(passages)]
    components = UnionFind(len(inputs))
    for start, end in zip(run_starts[across], run_ends[across]):
        members = [long_enough[k] for k in owners[start:end].tolist()]
        for i in members[1:]:
            components.join(members[0], i)
    return sorted(sorted(g) for g in components.groups() if len(g) > 1)


def _template_words(tokens: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Whether each word is part of a template phrase: a word 5-gram found in more than 10 texts."""
    phrases, starts = _window_hashes(tokens, owner, TEMPLATE_PHRASE_WORDS)
    distinct, _ = _one_per_text(phrases, owner[starts])
    values, counts = np.unique(distinct, return_counts=True)
    common = starts[np.isin(phrases, values[counts > TEMPLATE_PHRASE_MAX_INPUTS])]
    coverage = np.zeros(len(tokens) + 1, dtype=np.int64)  # +1 where a common phrase starts, -1 after it
    np.add.at(coverage, common, 1)
    np.add.at(coverage, common + TEMPLATE_PHRASE_WORDS, -1)
    return np.cumsum(coverage[:-1]) > 0


def _one_per_text(hashes: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (hash, text) pairs, sorted by hash, then text."""
    order = np.lexsort((owners, hashes))
    hashes, owners = hashes[order], owners[order]
    repeated = (hashes[1:] == hashes[:-1]) & (owners[1:] == owners[:-1])
    keep = np.r_[True, ~repeated][: len(hashes)]
    return hashes[keep], owners[keep]


