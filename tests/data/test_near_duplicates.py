"""The near-duplicate engine, through its public interface."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tunesmith.data import near_duplicates
from tunesmith.data.near_duplicates import (
    UnionFind,
    exact_groups,
    minhash_index,
    near_duplicate_groups,
    normalize_text,
    rows_per_band,
    template_shingles,
)

from .test_checks_duplicates import QUERIES  # distinct short queries, like Banking77's


def _nonsense(rng: random.Random, n_words: int) -> str:
    return " ".join("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6)) for _ in range(n_words))


# Helpers ----------------------------------------------------------------------------------


def test_normalize_text_lowercases_collapses_space_and_strips_edge_punctuation():
    assert normalize_text("  Hello,   WORLD!\n\nIt's  “fine”… ") == "hello world it's fine"
    assert normalize_text("top-up e.g. 3.5%") == "top-up e.g 3.5"
    assert normalize_text("?! ...") == ""


def test_exact_groups_keeps_groups_of_two_or_more_in_order_of_first_index():
    assert exact_groups(["b", "a", "b", "c", "a", "b"]) == [[0, 2, 5], [1, 4]]
    assert exact_groups(["a", "b"]) == []


def test_near_duplicate_groups_joins_variants_and_exact_copies():
    texts = [
        "How do I reset my password?",
        "Where is my parcel?",
        "how do i reset my password",  # the same once normalised
        "How do I reset my passwords?",
        "",  # normalises to nothing: never grouped
        "",
        "Where is my parcel??",
    ]
    assert near_duplicate_groups(texts) == [[0, 2, 3], [1, 6]]


def test_near_duplicate_groups_finds_nothing_among_distinct_queries():
    assert near_duplicate_groups(QUERIES) == []


def test_near_duplicate_groups_ignores_a_shared_template():
    # A 34-word instruction repeated in every input is template text, not likeness.
    rng = random.Random(1)
    instruction = (
        "You are a careful support assistant. Read the customer message below and classify it into exactly one "
        "of the categories billing shipping login product or cancel and answer with the category name only please."
    )
    texts = [f"{instruction} Message: {_nonsense(rng, 12)}" for _ in range(40)]
    assert near_duplicate_groups(texts) == []
    texts[7] = texts[3] + " thanks"
    assert near_duplicate_groups(texts) == [[3, 7]]


def test_near_duplicate_groups_match_brute_force_jaccard():
    # Many variants of a few sentences: every pair's exact Jaccard decides the reference groups.
    rng = random.Random(7)
    words = "card money transfer pending top up account pin app refund fee rate cash".split()
    bases = [[rng.choice(words) for _ in range(rng.randint(4, 12))] for _ in range(15)]
    texts = []
    for _ in range(150):
        variant = list(rng.choice(bases))
        for _ in range(rng.randint(0, 2)):
            variant[rng.randrange(len(variant))] = rng.choice(words)
        texts.append(" ".join(variant))
    index = minhash_index(tuple(texts))
    for threshold in (0.7, 0.8, 0.9):
        reference = UnionFind(len(index.copies))
        for a in range(len(index.copies)):
            for b in range(a + 1, len(index.copies)):
                if index.sets.jaccard(a, b) >= threshold:
                    reference.join(a, b)
        expected = sorted(
            sorted(i for d in members for i in index.copies[d])
            for members in reference.groups()
            if sum(len(index.copies[d]) for d in members) > 1
        )
        assert near_duplicate_groups(texts, threshold) == expected


def _candidate_reference(texts: list[str], threshold: float) -> list[list[int]]:
    """near_duplicate_groups by its definition, over every pair: two texts are joined when their
    signatures agree on a whole band, the estimate is at most ESTIMATE_MARGIN below the
    threshold and the exact Jaccard reaches it."""
    index = minhash_index(tuple(texts))
    signatures, rows = index.signatures, rows_per_band(threshold)
    first, second = np.triu_indices(len(signatures), 1)
    equal = signatures[first] == signatures[second]
    bands = equal[:, : len(equal[0]) // rows * rows].reshape(len(equal), -1, rows)
    candidate = bands.all(axis=2).any(axis=1) & (equal.mean(axis=1) >= threshold - near_duplicates.ESTIMATE_MARGIN)
    reference = UnionFind(len(index.copies))
    for a, b in zip(index.present[first[candidate]].tolist(), index.present[second[candidate]].tolist()):
        if index.sets.jaccard(a, b) >= threshold:
            reference.join(a, b)
    return sorted(
        sorted(i for d in members for i in index.copies[d])
        for members in reference.groups()
        if sum(len(index.copies[d]) for d in members) > 1
    )


def test_near_duplicate_groups_match_the_candidate_pairs_in_large_clusters(monkeypatch):
    # Clusters of variants, some of them close to each other, make thousands of candidate pairs:
    # small batches take every path of the confirmation (rounds, batches, pairs kept for later).
    monkeypatch.setattr(near_duplicates, "PAIR_BATCH", 500)
    monkeypatch.setattr(near_duplicates, "FIRST_CONFIRM_BATCH", 64)
    monkeypatch.setattr(near_duplicates, "MIN_ROUND_PAIRS", 8)
    rng = random.Random(11)
    words = [f"w{i}" for i in range(60)]
    bases = [[rng.choice(words) for _ in range(rng.randint(6, 14))] for _ in range(6)]
    bases += [base[:-1] + [rng.choice(words)] for base in bases[:3]]  # near other clusters
    texts = []
    for _ in range(400):
        variant = list(rng.choice(bases))
        for _ in range(rng.randint(0, 3)):
            variant[rng.randrange(len(variant))] = rng.choice(words)
        texts.append(" ".join(variant))
    for threshold in (0.7, 0.8, 0.9):
        near_duplicates.clear_caches()
        assert near_duplicate_groups(texts, threshold) == _candidate_reference(texts, threshold)


def test_template_shingles_are_those_in_more_than_half_of_the_texts(monkeypatch):
    # Counted first by bucket of the low bits: with 4 buckets, most buckets mix template
    # shingles with others.
    monkeypatch.setattr(near_duplicates, "TEMPLATE_BUCKETS", 4)
    rng = np.random.default_rng(3)
    template = rng.integers(0, 2**32, size=5, dtype=np.uint64).astype(np.uint32)
    rows = [np.unique(np.r_[template[rng.random(5) < 0.7], rng.integers(0, 2**32, 20).astype(np.uint32)])
            for _ in range(60)]
    hashes = np.concatenate(rows)
    values, counts = np.unique(hashes, return_counts=True)
    expected = np.isin(hashes, values[(counts > 30) & (counts >= 10)])
    assert expected.any() and not expected.all()
    assert template_shingles(hashes, 60).tolist() == expected.tolist()


_words = st.sampled_from(["card", "Card!", "pin", "top", "up", "fee", "?"])
_texts = st.lists(st.lists(_words, max_size=12).map(" ".join), max_size=25)


@settings(max_examples=40, deadline=None)
@given(_texts, st.randoms(use_true_random=False))
def test_near_duplicate_groups_are_sorted_disjoint_and_independent_of_order(texts, rng):
    groups = near_duplicate_groups(texts)
    members = [i for group in groups for i in group]
    assert len(members) == len(set(members))
    assert all(len(group) > 1 and group == sorted(group) for group in groups)
    assert [group[0] for group in groups] == sorted(group[0] for group in groups)
    for group in exact_groups([normalize_text(t) for t in texts]):  # exact copies always together
        if normalize_text(texts[group[0]]):
            assert any(set(group) <= set(g) for g in groups)
    order = list(range(len(texts)))
    rng.shuffle(order)
    shuffled = near_duplicate_groups([texts[i] for i in order])
    assert sorted(sorted(order[i] for i in group) for group in shuffled) == groups


# Short texts: containment ------------------------------------------------------------------


def test_a_short_text_with_a_phrase_added_is_a_near_duplicate_only_with_containment():
    texts = ["My new card has not arrived after two weeks",
             "My new card has not arrived after two weeks, thanks a lot for your help",
             "Where is my parcel? It was due on Monday"]
    assert near_duplicate_groups(texts) == []  # Jaccard of character 3-grams: about 0.6
    assert near_duplicate_groups(texts, containment=near_duplicates.SHORT_CONTAINMENT) == [[0, 1]]


def test_containment_wants_the_words_in_their_order():
    # The same character 3-grams nearly, in another order: another question.
    texts = ["Will you work with any fiat currencies?", "Are there any fiat currencies that you will not work with?"]
    assert near_duplicate_groups(texts, containment=near_duplicates.SHORT_CONTAINMENT) == []
    assert near_duplicates.words_inside("why did my top up fail", "why did my top up fail again today", 0.9)
    assert near_duplicates.words_inside("why did my top up fail", "why did my transfer fail", 0.9)  # one word changed
    assert near_duplicates.words_inside("why was my transfer declined", "why did my top up fail", 0.9) is False


def test_containment_ignores_very_short_texts_and_long_additions():
    texts = ["lost card", "lost card", "I lost card and also my phone and my wallet in the bus yesterday"]
    assert near_duplicate_groups(texts, containment=near_duplicates.SHORT_CONTAINMENT) == [[0, 1]]
