from __future__ import annotations

import random
from datetime import datetime, timezone

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tunesmith.data.checks import CheckContext
from tunesmith.data.checks import duplicates
from tunesmith.data.checks.duplicates import (
    CHECKS,
    check_duplicate_examples,
    check_near_duplicates,
    check_split_leaks,
    exact_groups,
    near_duplicate_groups,
    normalize_text,
)
from tunesmith.data.dataset import load_dataset
from tunesmith.data.example import Example, Turn
from tunesmith.data.findings import Location
from tunesmith.data.tokens import count_tokens, estimate_counter
from tunesmith.targets import load_target

# Distinct short queries, like Banking77's: no two are near-duplicates.
QUERIES = [
    "How do I reset my password?",
    "My card was charged twice for one coffee",
    "Where is my parcel? It was due on Monday",
    "Can I change the delivery address after ordering?",
    "The app crashes when I open the settings page",
    "Why was my transfer to a friend declined?",
    "I want to close my account and get a refund",
    "Is there a fee for paying in euros abroad?",
    "How long does a bank transfer usually take?",
    "My new card has not arrived after two weeks",
    "Can I order a second card for my partner?",
    "What is the daily limit for cash withdrawals?",
]


def _example(line: int, user: str, model: str = "Thanks, we are on it.", split: str = "train",
             source: str = "f.jsonl") -> Example:
    return Example(turns=[Turn("user", user), Turn("model", model)], source=source, line=line, split=split)


def _context(examples: list[Example]) -> CheckContext:
    return CheckContext(
        target=load_target("vertex/gemini-2.5-flash"),
        tokens=count_tokens(examples, estimate_counter()),
        now=datetime.now(timezone.utc),
        splits=list(dict.fromkeys(ex.split for ex in examples if ex.split)),
    )


def _run(check, examples: list[Example]):
    return check(examples, _context(examples))


def _lines(finding) -> set[tuple[str, int]]:
    return {(loc.file, loc.line) for loc in finding.locations}


def _nonsense(rng: random.Random, n_words: int) -> str:
    return " ".join("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6)) for _ in range(n_words))


def _clean_examples() -> list[Example]:
    return [_example(i + 1, q, model=f"Answer {i}") for i, q in enumerate(QUERIES)]


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
    index = duplicates._minhash_index(tuple(texts))
    for threshold in (0.7, 0.8, 0.9):
        reference = duplicates._UnionFind(len(index.copies))
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
    index = duplicates._minhash_index(tuple(texts))
    signatures, rows = index.signatures, duplicates._rows_per_band(threshold)
    first, second = np.triu_indices(len(signatures), 1)
    equal = signatures[first] == signatures[second]
    bands = equal[:, : len(equal[0]) // rows * rows].reshape(len(equal), -1, rows)
    candidate = bands.all(axis=2).any(axis=1) & (equal.mean(axis=1) >= threshold - duplicates.ESTIMATE_MARGIN)
    reference = duplicates._UnionFind(len(index.copies))
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
    monkeypatch.setattr(duplicates, "PAIR_BATCH", 500)
    monkeypatch.setattr(duplicates, "FIRST_CONFIRM_BATCH", 64)
    monkeypatch.setattr(duplicates, "MIN_ROUND_PAIRS", 8)
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
        duplicates._near_duplicate_groups.cache_clear()
        assert near_duplicate_groups(texts, threshold) == _candidate_reference(texts, threshold)


def test_template_shingles_are_those_in_more_than_half_of_the_texts(monkeypatch):
    # Counted first by bucket of the low bits: with 4 buckets, most buckets mix template
    # shingles with others.
    monkeypatch.setattr(duplicates, "_TEMPLATE_BUCKETS", 4)
    rng = np.random.default_rng(3)
    template = rng.integers(0, 2**32, size=5, dtype=np.uint64).astype(np.uint32)
    rows = [np.unique(np.r_[template[rng.random(5) < 0.7], rng.integers(0, 2**32, 20).astype(np.uint32)])
            for _ in range(60)]
    hashes = np.concatenate(rows)
    values, counts = np.unique(hashes, return_counts=True)
    expected = np.isin(hashes, values[(counts > 30) & (counts >= 10)])
    assert expected.any() and not expected.all()
    assert duplicates._template_shingles(hashes, 60).tolist() == expected.tolist()


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


# duplicate-example ------------------------------------------------------------------------


def test_duplicate_examples_lists_every_copy():
    examples = _clean_examples()
    examples += [
        _example(20, QUERIES[0], model="Answer 0"),
        _example(21, "How do I  reset my password?\n", model="Answer 0"),  # whitespace only
        _example(22, QUERIES[5], model="Answer 5"),
        _example(23, QUERIES[5], model="A different answer"),  # not a copy: the output differs
    ]
    [finding] = _run(check_duplicate_examples, examples)
    assert finding.code == "duplicate-example"
    assert finding.severity == "warning"
    assert finding.count == 3  # redundant copies
    assert _lines(finding) == {("f.jsonl", 1), ("f.jsonl", 20), ("f.jsonl", 21), ("f.jsonl", 6), ("f.jsonl", 22)}
    assert "3 examples are exact copies" in finding.message and "2 groups" in finding.message
    assert "--dedupe" in finding.hint


def test_duplicate_examples_none_in_distinct_data():
    assert _run(check_duplicate_examples, _clean_examples()) == []


# near-duplicate ---------------------------------------------------------------------------


def test_near_duplicates_lists_every_member_but_not_pure_copies():
    examples = _clean_examples()
    examples += [
        _example(30, "How do I reset my passwords?", model="Answer 0"),
        _example(31, "Where is my parcel? It was due on Monday!!", model="Answer 2"),
        _example(32, QUERIES[7], model="Answer 7"),  # an exact copy only: duplicate-example's
    ]
    [finding] = _run(check_near_duplicates, examples)
    assert finding.code == "near-duplicate"
    assert finding.severity == "info"
    assert _lines(finding) == {("f.jsonl", 1), ("f.jsonl", 30), ("f.jsonl", 3), ("f.jsonl", 31)}


def test_near_duplicates_none_in_distinct_data():
    assert _run(check_near_duplicates, _clean_examples()) == []


# split-leak -------------------------------------------------------------------------------


PASSAGE = "the quarterly statement shows a pending charge from the airline that was refunded last week"


def _split_examples() -> list[Example]:
    train = [_example(i + 1, q, source="train.jsonl") for i, q in enumerate(QUERIES[:8])]
    test = [_example(i + 1, q, split="test", source="test.jsonl") for i, q in enumerate(QUERIES[8:])]
    return train + test


def test_split_leaks_finds_copies_near_copies_and_shared_passages_in_both_splits():
    examples = _split_examples()
    examples += [
        _example(20, "how do I reset my password??", split="test", source="test.jsonl"),  # train line 1
        _example(21, "My card was charged twice for one cofee", split="validation", source="validation.jsonl"),  # typo
        _example(9, f"Hello, I have a question: {PASSAGE}. Can you explain it to me?", source="train.jsonl"),
        _example(22, f"Why does {PASSAGE} and still not show up in my balance?", split="test", source="test.jsonl"),
    ]
    similar, passage = _run(check_split_leaks, examples)
    assert (similar.code, similar.severity) == ("split-leak", "error")
    assert _lines(similar) == {("train.jsonl", 1), ("test.jsonl", 20), ("train.jsonl", 2), ("validation.jsonl", 21)}
    assert "train+test: 1" in similar.message and "train+validation: 1" in similar.message
    assert (passage.code, passage.severity) == ("split-leak", "error")
    assert _lines(passage) == {("train.jsonl", 9), ("test.jsonl", 22)}


def test_split_leaks_none_across_distinct_splits_or_with_one_split():
    assert _run(check_split_leaks, _split_examples()) == []
    paraphrase = _example(30, "my card was charged twice for a coffee", split="test", source="test.jsonl")
    assert _run(check_split_leaks, _split_examples() + [paraphrase]) == []  # 0.8 alike: not beyond doubt
    same_split = _clean_examples() + [_example(40, QUERIES[0])]
    assert _run(check_split_leaks, same_split) == []


def test_split_leaks_ignore_an_instruction_every_input_shares():
    instruction = (
        "Read the customer message below and reply with the category only, "
        "choosing from billing shipping login or cancel"
    )
    examples = [
        _example(i + 1, f"{instruction}. Message: {q}", split="test" if i % 4 == 0 else "train")
        for i, q in enumerate(QUERIES)
    ]
    assert _run(check_split_leaks, examples) == []


# The module on real data ------------------------------------------------------------------


def test_banking77_train_has_four_copies_and_no_leak(shared_data):
    banking77 = shared_data / "banking77" / "train.csv"
    dataset = load_dataset([banking77])
    findings = {f.code: f for check in CHECKS for f in _run(check, dataset.examples)}
    assert set(findings) == {"duplicate-example", "near-duplicate"}
    assert findings["duplicate-example"].count == 4
    assert len(findings["duplicate-example"].locations) == 8
    assert Location(str(banking77), 1248) in findings["duplicate-example"].locations
    # Banking77 collects paraphrases of each question: many are near-copies, e.g. lines 63 and 93,
    # "I am still waiting for my card." / "I'm still waiting for my card.".
    near = findings["near-duplicate"]
    assert {Location(str(banking77), 63), Location(str(banking77), 93)} <= set(near.locations)
    assert near.count < 0.2 * len(dataset.examples)
