from __future__ import annotations

import random
from datetime import datetime, timezone

import numpy as np

from tunesmith.data.checks import CheckContext
from tunesmith.data.checks import label_checks
from tunesmith.data.checks.label_checks import (
    CHECKS,
    check_class_imbalance,
    check_conflicting_outputs,
    check_label_issues,
    check_rare_classes,
    label_key,
)
from tunesmith.data.dataset import load_dataset
from tunesmith.data.example import Example, Turn
from tunesmith.data.tokens import count_tokens, estimate_counter
from tunesmith.targets import load_target

LABELLED = "the label field of the input"

TOPICS = {
    "billing": ["invoice", "charge", "refund", "payment", "bill", "overcharged", "receipt"],
    "shipping": ["package", "delivery", "courier", "tracking", "shipped", "parcel", "arrive"],
    "login": ["password", "login", "account", "locked", "reset", "username", "sign"],
    "product": ["broken", "defect", "screen", "battery", "warranty", "repair", "device"],
    "cancel": ["cancel", "subscription", "terminate", "close", "stop", "membership", "end"],
}
FILLER = "i my the please help why is was can you with a need today again still".split()


def _example(line: int, user: str, label: str | None = None, model: str | None = None, split: str = "train") -> Example:
    output = model if model is not None else (label or "ok")
    turns = [Turn("user", user), Turn("model", output)]
    return Example(turns=turns, label=label, source="f.jsonl", line=line, split=split)


def _context(examples: list[Example], label_source: str | None = LABELLED) -> CheckContext:
    return CheckContext(
        target=load_target("vertex/gemini-2.5-flash"),
        tokens=count_tokens(examples, estimate_counter()),
        now=datetime.now(timezone.utc),
        label_source=label_source,
        splits=["train"],
    )


def _run(check, examples: list[Example], label_source: str | None = LABELLED):
    return check(examples, _context(examples, label_source))


def _lines(finding) -> set[int]:
    return {loc.line for loc in finding.locations}


def _tickets(per_class: int, seed: int = 0) -> list[Example]:
    """Support tickets in five classes, each written with its own topic words and shared filler."""
    rng = random.Random(seed)
    examples = []
    for label, topic in TOPICS.items():
        for _ in range(per_class):
            words = rng.sample(topic, 5) + rng.sample(FILLER, 4)
            rng.shuffle(words)
            examples.append(_example(len(examples) + 1, " ".join(words), label))
    return examples


def _by_kind(findings, kind: str):
    return [f for f in findings if f.message.startswith(kind)]


# conflicting-outputs ----------------------------------------------------------------------


def test_conflicting_outputs_lists_every_example_of_a_conflicting_input():
    examples = _tickets(4)
    examples += [
        _example(50, "Where is my refund?", model="Billing"),
        _example(51, "where is my refund", model="Shipping"),  # the same input once normalised
        _example(52, "Where is my refund?!", model="billing"),  # agrees with line 50
        _example(53, "How do I sign in?", model="Login"),
        _example(54, "How do I sign in?", model="login."),  # the same output once normalised
    ]
    [finding] = _run(check_conflicting_outputs, examples, label_source=None)  # needs no labels
    assert (finding.code, finding.severity) == ("conflicting-outputs", "warning")
    assert _lines(finding) == {50, 51, 52}
    assert '"Where is my refund?"' in finding.message and '"Shipping"' in finding.message
    assert "--drop-conflicts" in finding.hint


def test_conflicting_long_free_text_answers_are_a_note_and_hidden_fields_are_named():
    long_a = "I understand how frustrating this is. To cancel your order, open your account, choose Orders, " \
             "pick the order and press Cancel; the refund follows within five days."
    long_b = "Sorry to hear that! You can cancel it yourself: sign in, go to Orders, select it and choose Cancel. " \
             "We will refund you in a few days and send a confirmation email."
    examples = _tickets(4) + [_example(60, "cancel my order please", model=long_a),
                              _example(61, "Cancel my order please", model=long_b),
                              _example(62, "6", model='{"people": "6"}'), _example(63, "6", model='{"time": "6"}')]
    examples[-2].meta, examples[-1].meta = {"requested_slots": ["people"]}, {"requested_slots": ["time"]}
    answers, prose = _run(check_conflicting_outputs, examples, label_source=None)
    assert (answers.severity, _lines(answers)) == ("warning", {62, 63})
    assert "requested_slots" in answers.hint
    assert (prose.severity, _lines(prose)) == ("info", {60, 61})


def test_conflicting_outputs_none_when_each_input_has_one_answer():
    assert _run(check_conflicting_outputs, _tickets(10)) == []


# label-issue ------------------------------------------------------------------------------


def test_label_key_ignores_case_space_underscore_and_dash():
    assert label_key(" Card_Arrival ") == label_key("card-arrival") == label_key("card  arrival") == "card arrival"


def test_label_issue_finds_one_label_spelt_several_ways():
    examples = _tickets(10)
    for ex in examples[:3]:
        ex.label = " Billing"
    examples[3].label = "BILLING"
    [finding] = _by_kind(_run(check_label_issues, examples), "Label spelling")
    assert (finding.code, finding.severity) == ("label-issue", "warning")
    assert _lines(finding) == {1, 2, 3, 4}  # the less common spellings; "billing" (6) stays
    assert '"billing" (6)' in finding.message


def test_label_issue_finds_near_identical_inputs_with_different_labels():
    examples = _tickets(10)
    examples += [
        _example(60, "I was charged twice for my last order, please refund it", "billing"),
        _example(61, "I was charged twice for my last order, please refund it!!", "billing"),  # a copy: agrees
        _example(62, "I was charged twice for my last orders, please refund it", "shipping"),
    ]
    [finding] = _by_kind(_run(check_label_issues, examples), "Near-identical inputs")
    assert (finding.code, finding.severity) == ("label-issue", "warning")
    assert _lines(finding) == {60, 61, 62}


def test_label_issue_leaves_one_input_with_two_labels_to_conflicting_outputs():
    examples = _tickets(10) + [
        _example(60, "I was charged twice for my last order", "billing"),
        _example(61, "I was charged twice for my last order", "shipping"),
    ]
    assert _by_kind(_run(check_label_issues, examples), "Near-identical inputs") == []


def test_label_issue_finds_examples_a_classifier_puts_firmly_in_another_class():
    examples = _tickets(20)
    flipped = {examples[45].line: "billing", examples[66].line: "login", examples[87].line: "shipping"}
    for ex in examples:
        ex.label = flipped.get(ex.line, ex.label)
    [finding] = _by_kind(_run(check_label_issues, examples), "Likely mislabeled")
    assert (finding.code, finding.severity) == ("label-issue", "warning")
    assert _lines(finding) == set(flipped)


def test_term_numbers_number_words_by_first_appearance_then_word_pairs_in_order():
    # The classifier's features: words, then word pairs, numbered as np.unique would number
    # their codes. Both ways of ranking the pairs (radix sorts for up to 65,536 words, and
    # np.unique beyond) must give the same numbers.
    rng = random.Random(5)
    for n_words in (40, 70_000):
        vocabulary = [f"w{i}" for i in range(n_words)]
        texts = [" ".join(rng.choice(vocabulary) for _ in range(rng.randint(0, 30))) for _ in range(3000)]
        texts += [" ".join(vocabulary[i : i + 10]) for i in range(0, n_words, 10)]  # every word at least once
        numbers: dict[str, int] = {}
        words, rows = [], []
        for row, text in enumerate(texts):
            words += [numbers.setdefault(word, len(numbers)) for word in text.split()]
            rows += [row] * len(text.split())
        words, rows = np.array(words), np.array(rows)
        in_one_text = rows[1:] == rows[:-1]
        codes = len(numbers) + words[:-1][in_one_text] * len(numbers) + words[1:][in_one_text]
        distinct, expected = np.unique(np.r_[words, codes], return_inverse=True)
        terms, term_rows, n_terms = label_checks._term_numbers(texts)
        assert terms.tolist() == expected.tolist()
        assert term_rows.tolist() == np.r_[rows, rows[:-1][in_one_text]].tolist()
        assert n_terms == len(distinct)


def test_label_checks_find_nothing_in_clean_balanced_data():
    examples = _tickets(20)
    assert [f for check in CHECKS for f in _run(check, examples)] == []


def test_label_checks_skip_data_without_labels():
    examples = _tickets(2)
    examples[0].label = "Billing"
    for check in (check_label_issues, check_class_imbalance, check_rare_classes):
        assert _run(check, examples, label_source=None) == []


# class-imbalance and rare-class -----------------------------------------------------------


def test_class_imbalance_reports_the_extremes_and_the_ratio():
    examples = _tickets(12)
    examples += [_example(100 + i, f"extra invoice question {i}", "billing") for i in range(109)]
    [finding] = _run(check_class_imbalance, examples)
    assert (finding.code, finding.severity) == ("class-imbalance", "warning")
    assert '"billing" has 121 examples' in finding.message and '"cancel" 12' in finding.message
    assert "10.1:1" in finding.message
    assert "--oversample" in finding.hint


def test_class_imbalance_none_for_a_ratio_of_ten_or_less():
    examples = _tickets(12) + [_example(100 + i, f"extra invoice question {i}", "billing") for i in range(108)]
    assert _run(check_class_imbalance, examples) == []


def test_rare_class_lists_every_example_of_each_rare_class():
    examples = _tickets(12)
    examples += [_example(200 + i, f"question about gift cards {i}", "gift_cards") for i in range(3)]
    examples += [_example(300 + i, f"an unlabelled question {i}") for i in range(3)]  # label None: ignored
    [finding] = _run(check_rare_classes, examples)
    assert (finding.code, finding.severity) == ("rare-class", "warning")
    assert _lines(finding) == {200, 201, 202}
    assert '"gift_cards" (3)' in finding.message


def test_rare_class_none_when_every_class_has_ten():
    assert _run(check_rare_classes, _tickets(10)) == []


# The module on real data ------------------------------------------------------------------


def test_banking77_train_is_mildly_imbalanced_with_a_few_likely_label_errors(shared_data, monkeypatch):
    dataset = load_dataset([shared_data / "banking77" / "train.csv"])
    ctx = _context(dataset.examples, dataset.label_source)
    findings = [f for check in CHECKS for f in check(dataset.examples, ctx)]
    # 35 to 187 examples per label: a ratio of 5.3, under the threshold of 10; no class under 10.
    assert {f.code for f in findings} == {"label-issue"}
    assert all(f.count < 0.01 * len(dataset.examples) for f in findings)
    [near] = _by_kind(findings, "Near-identical inputs")  # e.g. "I don't recognize" / "I don't recognise!"
    assert near.count >= 2
    monkeypatch.setattr(label_checks, "IMBALANCE_MAX_RATIO", 5)
    [imbalance] = check_class_imbalance(dataset.examples, ctx)
    assert "has 187 examples" in imbalance.message and " 35, a ratio of 5.3:1" in imbalance.message
