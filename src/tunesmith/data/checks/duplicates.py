"""Duplicates: exact copies, near-duplicates, and inputs shared across splits.

Each check compares the text that matters for it:
- duplicate-example: the whole example (system instruction and turns, whitespace collapsed), exactly.
- near-duplicate: the whole example, normalised (`normalize_text`), by MinHash.
- split-leak: the input (system instruction and user turns, `full_input`), by MinHash (at
  0.9, see LEAK_THRESHOLD) and by shared 13-word passages. A test input the model has seen in training, with its answer,
  inflates the test score; a shared answer alone ("Yes.", a label) is no leak. The grouped
  split of `tunesmith data prepare` compares the same text, so what it prepares has no leak.

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
MinHash.bulk and MinHashLSH take 1.7 s before any confirmation."""

from __future__ import annotations

import json
import string
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from ..example import Example
from ..findings import Finding, about

if TYPE_CHECKING:
    from . import CheckContext

NEAR_DUPLICATE_THRESHOLD = 0.8
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
ESTIMATE_CHUNK = 1 << 16
SIGNATURE_BLOCK_TEXTS = 2048

# A shingle found in more than half of the distinct texts, and in 10 or more, is template text
# (a shared system instruction, an instruction repeated in every input), not evidence that two
# texts are alike. In a handful of texts a majority may as well be a few paraphrases.
TEMPLATE_SHARE = 0.5
TEMPLATE_MIN_TEXTS = 10

# Long n-gram overlap between splits, as lm-evaluation-harness's decontamination does it. Its
# passages are natural text; inputs built from a template share 13-grams made of template
# words and a short slot. So words covered by a template phrase (a word 5-gram found in more
# than 10 inputs) are taken out first, and a leaked passage is 13 words free of them.
LEAK_NGRAM_WORDS = 13
TEMPLATE_PHRASE_WORDS = 5
TEMPLATE_PHRASE_MAX_INPUTS = 10

TRAIN = "train"
QUOTE_CHARS = 60

# Punctuation stripped from the edges of words: ASCII and the common typographic marks.
_EDGE_PUNCTUATION = string.punctuation + "“”‘’«»‹›„‚…–—¿¡·"
# Constants for the polynomial hash of token windows and the multiply-shift MinHash
# permutations; any fixed odd 64-bit numbers would do.
_WINDOW_BASE = np.uint64(0x9E3779B97F4A7C15)
_rng = np.random.default_rng(MINHASH_SEED)
_PERM_A = _rng.integers(1, 2**63, size=NUM_PERM, dtype=np.uint64) | np.uint64(1)
_PERM_B = _rng.integers(0, 2**63, size=NUM_PERM, dtype=np.uint64)
_BAND_MIX = _rng.integers(1, 2**63, size=NUM_PERM, dtype=np.uint64) | np.uint64(1)
_SHIFT_32 = np.uint64(32)


# Public helpers --------------------------------------------------------------------------


def normalize_text(text: str) -> str:
    """Lowercase, whitespace collapsed to single spaces, punctuation stripped from word edges."""
    return " ".join(filter(None, [word.strip(_EDGE_PUNCTUATION) for word in text.casefold().split()]))


def normalize_texts(texts: list[str]) -> list[str]:
    """`normalize_text` of each text. The checks normalise the same inputs several times, so
    the last two lists are remembered."""
    return list(_normalized(tuple(texts)))


def exact_groups(keys: list[str]) -> list[list[int]]:
    """Indices grouped by identical key; only groups of two or more, in order of first index."""
    by_key: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        by_key[key].append(i)
    return [group for group in by_key.values() if len(group) > 1]


def near_duplicate_groups(texts: list[str], threshold: float = NEAR_DUPLICATE_THRESHOLD) -> list[list[int]]:
    """Indices of texts that are near-duplicates (Jaccard of shingles >= threshold, after
    `normalize_text`), joined transitively; exact duplicates included. Only groups of two or
    more; each group sorted, groups in order of their first index. Texts that normalise to
    nothing belong to no group."""
    return [list(group) for group in _near_duplicate_groups(tuple(texts), threshold)]


def leak_groups(texts: list[str]) -> list[list[int]]:
    """Everything the split-leak check would call a leak if it crossed splits: near-duplicates
    (at the looser near-duplicate threshold) joined with texts sharing a 13-word passage.
    `prepare` keeps each group in one split, so its own output never trips the check."""
    components = _UnionFind(len(texts))
    for group in near_duplicate_groups(texts) + _shared_passage_groups(texts, None):
        for i in group[1:]:
            components.join(group[0], i)
    return sorted(sorted(g) for g in components.groups() if len(g) > 1)


def full_input(ex: Example) -> str:
    """What an example gives the model to answer: its system instruction and user turns."""
    return (ex.system or "") + "\n" + ex.input_text


# Checks ----------------------------------------------------------------------------------


def check_duplicate_examples(examples: list[Example], ctx: CheckContext) -> list[Finding]:
    """duplicate-example: examples whose system instruction and turns are the same."""
    groups = exact_groups([_example_key(ex) for ex in examples])
    if not groups:
        return []
    copies = sum(len(group) - 1 for group in groups)
    first = groups[0]
    message = (
        f"{_examples(copies)} {'is an exact copy' if copies == 1 else 'are exact copies'} of another "
        f"({len(groups):,} {_plural(len(groups), 'group')}, {sum(map(len, groups)):,} lines in all), "
        f"e.g. {_lines(examples, first)}: {_quote(examples[first[0]].input_text)}. "
        "Copies weigh those examples more in training and can land on both sides of a split."
    )
    hint = "Run tunesmith data prepare --dedupe to keep one copy of each."
    affected = [examples[i] for group in groups for i in group]
    return [about("duplicate-example", "warning", message, hint, affected, count=copies)]


def check_near_duplicates(examples: list[Example], ctx: CheckContext) -> list[Finding]:
    """near-duplicate: examples (system instruction and turns) nearly the same, exact copies aside."""
    keys = [_example_key(ex) for ex in examples]
    groups = [
        group
        for group in near_duplicate_groups([_example_text(ex) for ex in examples])
        if len({keys[i] for i in group}) > 1  # more than one distinct example: not only exact copies
    ]
    if not groups:
        return []
    first = groups[0]
    members = sum(map(len, groups))
    message = (
        f"{_examples(members)} in {len(groups):,} {_plural(len(groups), 'group')} are near-duplicates "
        f"(at least {NEAR_DUPLICATE_THRESHOLD:.0%} of their wording in common), e.g. {_lines(examples, first)}: "
        f"{_quote(examples[first[0]].input_text)} and {_quote(examples[first[1]].input_text)}. "
        "Many near-copies weigh one case more than the rest and add little new."
    )
    hint = (
        "Review the groups and keep the variants that teach something different; "
        "tunesmith data prepare keeps each group in one split."
    )
    return [about("near-duplicate", "info", message, hint, [examples[i] for group in groups for i in group])]


def check_split_leaks(examples: list[Example], ctx: CheckContext) -> list[Finding]:
    """split-leak: inputs that appear in more than one split, the same or nearly, or that share
    a 13-word passage."""
    splits = [ex.split or "" for ex in examples]
    if len(set(splits)) < 2:
        return []
    inputs = [full_input(ex) for ex in examples]
    similar = [g for g in near_duplicate_groups(inputs, LEAK_THRESHOLD) if _spans_splits(g, splits)]
    reported = {i for group in similar for i in group}
    passages = [g for g in _shared_passage_groups(inputs, splits) if not reported.issuperset(g)]
    findings = []
    hint = (
        "Re-split with tunesmith data prepare, which keeps near-duplicates in one split, "
        "or remove these examples from the evaluation split."
    )
    if similar:
        message = (
            f"{_inputs(len(similar))} {'appears' if len(similar) == 1 else 'appear'} in more than one split, "
            f"the same or nearly ({_split_pairs(similar, splits)}), e.g. {_lines(examples, similar[0])}: "
            f"{_quote(examples[similar[0][0]].input_text)}. A model that saw these in training is tested on "
            "memory, not skill."
        )
        findings.append(about("split-leak", "error", message, hint, [examples[i] for g in similar for i in g]))
    if passages:
        message = (
            f"{_examples(sum(map(len, passages)))} share a passage of {LEAK_NGRAM_WORDS} or more words with "
            f"an example in another split ({_split_pairs(passages, splits)}), e.g. {_lines(examples, passages[0])}. "
            "A test input whose text was trained on is no longer unseen."
        )
        findings.append(about("split-leak", "error", message, hint, [examples[i] for g in passages for i in g]))
    return findings


# Near-duplicate groups -------------------------------------------------------------------


@lru_cache(maxsize=2)
def _normalized(texts: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(map(normalize_text, texts))


@lru_cache(maxsize=4)
def _near_duplicate_groups(texts: tuple[str, ...], threshold: float) -> tuple[tuple[int, ...], ...]:
    index = _minhash_index(texts)
    components = _UnionFind(len(index.copies))
    for a, b in _candidate_pairs(index.signatures, _rows_per_band(threshold), threshold):
        first, second = int(index.present[a]), int(index.present[b])
        if not components.joined(first, second) and index.sets.jaccard(first, second) >= threshold:
            components.join(first, second)
    groups = []
    for members in components.groups():
        indices = [i for d in members for i in index.copies[d]]
        if len(indices) > 1:
            groups.append(tuple(sorted(indices)))
    return tuple(sorted(groups))


@dataclass
class _MinHashIndex:
    copies: list[list[int]]  # per distinct normalised text, the indices of the texts that are it
    sets: _ShingleSets  # their shingle sets
    present: np.ndarray  # those with shingles left: a text of template text only compares with nothing
    signatures: np.ndarray  # MinHash signatures of the present ones, one row each


# The checks ask about the same texts more than once per run (inputs: for leaks at 0.9, for
# label disagreements at 0.85), so the signatures of the last two text lists are kept.
@lru_cache(maxsize=2)
def _minhash_index(texts: tuple[str, ...]) -> _MinHashIndex:
    copies: dict[str, list[int]] = defaultdict(list)
    for i, normalized in enumerate(_normalized(texts)):
        if normalized:
            copies[normalized].append(i)
    hashes, starts = _shingle_hashes(list(copies))
    present = np.flatnonzero(np.diff(starts) > 0)
    signatures = _minhash_signatures(hashes, starts[present])
    return _MinHashIndex(list(copies.values()), _ShingleSets(hashes, starts), present, signatures)


def _shingle_hashes(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each text's distinct shingles as 32-bit hashes, template shingles dropped: text i's
    are hashes[starts[i]:starts[i + 1]], sorted."""
    is_short = np.array([text.count(" ") + 1 < SHORT_TEXT_WORDS for text in texts], dtype=bool)
    short, long = np.flatnonzero(is_short), np.flatnonzero(~is_short)
    windows, owners = [], []
    for members, tokens_of, size in ((short, _characters, CHARACTER_SHINGLE), (long, _words, WORD_SHINGLE)):
        tokens, owner = _concatenate([tokens_of(texts[i]) for i in members])
        hashes, starts = _window_hashes(tokens, owner, size)
        windows.append(hashes)
        owners.append(members[owner[starts]])
    windows, owners = np.concatenate(windows), np.concatenate(owners)
    keys = _distinct((owners.astype(np.uint64) << _SHIFT_32) | (windows >> _SHIFT_32))  # (text, shingle)
    owners, hashes = (keys >> _SHIFT_32).astype(np.int64), (keys & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    values, counts = np.unique(hashes, return_counts=True)
    template = values[(counts > TEMPLATE_SHARE * len(texts)) & (counts >= TEMPLATE_MIN_TEXTS)]
    keep = ~np.isin(hashes, template)
    owners, hashes = owners[keep], hashes[keep]
    return hashes, np.searchsorted(owners, np.arange(len(texts) + 1))


def _distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique without counts is several times slower in numpy 2)."""
    values = np.sort(values)
    return values[np.r_[True, values[1:] != values[:-1]]] if len(values) else values


def _characters(text: str) -> np.ndarray:
    """A text's characters as numbers, padded to at least one shingle."""
    return np.frombuffer(text.ljust(CHARACTER_SHINGLE, "\0").encode("utf-32-le"), dtype=np.uint32)


def _words(text: str) -> np.ndarray:
    """A normalised text's words as hashes."""
    words = text.split(" ")
    return np.fromiter(map(_word_hash, words), dtype=np.uint32, count=len(words))


@lru_cache(maxsize=1 << 16)
def _word_hash(word: str) -> int:
    return zlib.crc32(word.encode("utf-8"))  # stable across runs, unlike hash()


def _concatenate(token_arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The tokens of all texts in one array, and the text each token belongs to."""
    if not token_arrays:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    owner = np.repeat(np.arange(len(token_arrays)), [len(t) for t in token_arrays])
    return np.concatenate(token_arrays).astype(np.uint64), owner


def _window_hashes(tokens: np.ndarray, owner: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A 64-bit hash of every run of `size` tokens that lies inside one text, and where it starts."""
    n_windows = len(tokens) - size + 1
    if n_windows <= 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    hashes = np.zeros(n_windows, dtype=np.uint64)
    # Polynomial hash, modulo 2**64 by overflow. Multiplying after each add (the last token too)
    # spreads every token into the high bits, which are the ones a 32-bit shingle keeps.
    for k in range(size):
        hashes += tokens[k : k + n_windows]
        hashes *= _WINDOW_BASE
    starts = np.flatnonzero(owner[:n_windows] == owner[size - 1 :])  # not running across two texts
    return hashes[starts], starts


def _minhash_signatures(hashes: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """MinHash signatures, one row per text, of the non-empty shingle sets that begin at
    `starts`: for each permutation h -> (a*h + b) >> 32, the minimum over a text's shingles."""
    signatures = np.empty((len(starts), NUM_PERM), dtype=np.uint32)
    bounds = np.r_[starts, len(hashes)]
    # A block of texts at a time, so that the 128 passes over its shingles stay in the CPU cache.
    for first in range(0, len(starts), SIGNATURE_BLOCK_TEXTS):
        last = min(first + SIGNATURE_BLOCK_TEXTS, len(starts))
        block = hashes[bounds[first] : bounds[last]].astype(np.uint64)
        offsets = bounds[first:last] - bounds[first]
        permuted = np.empty_like(block)
        for p in range(NUM_PERM):
            np.multiply(block, _PERM_A[p], out=permuted)
            np.add(permuted, _PERM_B[p], out=permuted)
            np.right_shift(permuted, _SHIFT_32, out=permuted)
            signatures[first:last, p] = np.minimum.reduceat(permuted, offsets)
    return signatures


@lru_cache(maxsize=None)
def _rows_per_band(threshold: float) -> int:
    """The most rows per band (fewest false candidates) that still makes a pair at the
    threshold a candidate with MIN_CANDIDATE_PROBABILITY: 1 - (1 - t^r)^bands."""
    for rows in range(NUM_PERM, 0, -1):
        if 1 - (1 - threshold**rows) ** (NUM_PERM // rows) >= MIN_CANDIDATE_PROBABILITY:
            return rows
    return 1


def _candidate_pairs(signatures: np.ndarray, rows: int, threshold: float) -> list[tuple[int, int]]:
    """Pairs of texts (i < j), sorted, whose signatures agree on every row of some band and
    whose estimated similarity is not far below the threshold."""
    n = len(signatures)
    found = []
    for start in range(0, NUM_PERM - rows + 1, rows):
        band = signatures[:, start : start + rows].astype(np.uint64)
        keys = (band * _BAND_MIX[start : start + rows]).sum(axis=1)  # one number per band, wrapping
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        bucket = np.cumsum(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])  # bucket number, in key order
        for gap in range(1, n):  # every pair inside a bucket is `gap` apart in key order for some gap
            same = bucket[gap:] == bucket[:-gap]
            if not same.any():
                break
            found.append(np.stack([order[:-gap][same], order[gap:][same]]))
    if not found:
        return []
    pairs = np.concatenate(found, axis=1)
    codes = _distinct(pairs.min(axis=0) * n + pairs.max(axis=0))
    first, second = codes // n, codes % n
    plausible = _estimated_similarity(signatures, first, second) >= threshold - ESTIMATE_MARGIN
    return list(zip(first[plausible].tolist(), second[plausible].tolist()))


def _estimated_similarity(signatures: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """MinHash's estimate of each pair's Jaccard similarity: the share of equal signature rows."""
    estimates = np.empty(len(first))
    for lo in range(0, len(first), ESTIMATE_CHUNK):  # bounded memory for (rows x pairs) arrays
        hi = lo + ESTIMATE_CHUNK
        equal = signatures[first[lo:hi]] == signatures[second[lo:hi]]
        estimates[lo:hi] = equal.mean(axis=1)
    return estimates


class _ShingleSets:
    """Shingle sets as Python sets, built when a candidate pair first needs them."""

    def __init__(self, hashes: np.ndarray, starts: np.ndarray):
        self.hashes, self.starts = hashes, starts
        self.built: dict[int, set[int]] = {}

    def get(self, i: int) -> set[int]:
        if i not in self.built:
            self.built[i] = set(self.hashes[self.starts[i] : self.starts[i + 1]].tolist())
        return self.built[i]

    def jaccard(self, i: int, j: int) -> float:
        a, b = self.get(i), self.get(j)
        common = len(a & b)
        return common / (len(a) + len(b) - common)


class _UnionFind:
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


def _shared_passage_groups(inputs: list[str], splits: list[str] | None) -> list[list[int]]:
    """Indices of inputs joined by a 13-word passage, free of template phrases, that occurs
    in more than one split (with no splits: in more than one input)."""
    normalized = normalize_texts(inputs)
    long_enough = [i for i, text in enumerate(normalized) if text.count(" ") + 1 >= LEAK_NGRAM_WORDS]
    tokens, owner = _concatenate([_words(normalized[i]) for i in long_enough])
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
    components = _UnionFind(len(inputs))
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


# Texts and messages ----------------------------------------------------------------------


def _example_key(ex: Example) -> str:
    """What makes two examples the same: system instruction and turns, whitespace collapsed."""
    turns = [[t.role, " ".join(t.text.split())] for t in ex.turns]
    return json.dumps([" ".join((ex.system or "").split()), turns], ensure_ascii=False)


def _example_text(ex: Example) -> str:
    return "\n\n".join([ex.system or "", *(t.text for t in ex.turns)])


def _spans_splits(group: list[int], splits: list[str]) -> bool:
    return len({splits[i] for i in group}) > 1


def _split_pairs(groups: list[list[int]], splits: list[str]) -> str:
    """'train+test: 3, train+validation: 5': how many groups join which splits."""
    counts = Counter(_split_names(group, splits) for group in groups)
    return ", ".join(f"{names}: {n:,}" for names, n in sorted(counts.items()))


def _split_names(group: list[int], splits: list[str]) -> str:
    names = {splits[i] or "(no split)" for i in group}
    return "+".join(sorted(names, key=lambda name: (name != TRAIN, name)))


def _lines(examples: list[Example], group: list[int], shown: int = 3) -> str:
    wheres = [examples[i].where for i in group[:shown]]
    more = f" and {len(group) - shown:,} more" if len(group) > shown else ""
    return ", ".join(wheres) + more


def _quote(text: str) -> str:
    flat = " ".join(text.split())
    return '"' + (flat if len(flat) <= QUOTE_CHARS else flat[: QUOTE_CHARS - 1] + "…") + '"'


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"


def _examples(n: int) -> str:
    return f"{n:,} {_plural(n, 'example')}"


def _inputs(n: int) -> str:
    return f"{n:,} {_plural(n, 'input')}"


CHECKS = [check_duplicate_examples, check_near_duplicates, check_split_leaks]
