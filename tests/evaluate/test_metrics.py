"""Metric code against scikit-learn, rouge_score, sacrebleu and known values."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from tunesmith.errors import BadInputError
from tunesmith.evaluate import metrics as m

TICKET = "Category: {}\nPriority: {}\nAction: {}"
CLASSES = ["Billing", "Shipping", "Technical"]


def test_the_kind_follows_the_shape_of_the_references():
    labels = [CLASSES[i % 3] for i in range(30)]
    assert m.choose_scorer(labels).kind == "label"
    templated = [TICKET.format(c, "High", f"do thing {i}") for i, c in enumerate(labels)]
    scorer = m.choose_scorer(templated)
    assert scorer.kind == "template" and scorer.fields == ("Category", "Priority", "Action")
    assert m.choose_scorer(['{"label": "a", "score": 1}'] * 3).fields == ("label", "score")
    prose = [f"The customer wrote about issue number {i} and we answered at length." for i in range(30)]
    assert m.choose_scorer(prose).kind == "free-text"
    assert m.choose_scorer(templated, "free-text").kind == "free-text"
    with pytest.raises(BadInputError):
        m.choose_scorer(prose, "template")
    with pytest.raises(BadInputError):
        m.choose_scorer(prose, "bleu")


def test_label_metrics_match_scikit_learn():
    rng = np.random.default_rng(0)
    truth = [CLASSES[i] for i in rng.integers(0, 3, 60)]
    pred = [CLASSES[i] if rng.random() < 0.7 else "Refund" for i in rng.integers(0, 3, 60)]  # "Refund": not a class
    scorer = m.choose_scorer(truth, "label")
    scores = m.score_all(scorer, [p.lower() + " " for p in pred], truth)  # case and whitespace do not count
    accuracy, macro = m.headline_metrics(scorer, truth)
    whole = np.arange(60)
    assert accuracy.statistic(accuracy.values(scores), whole) == pytest.approx(accuracy_score(truth, pred))
    assert macro.statistic(macro.values(scores), whole) == pytest.approx(
        f1_score(truth, pred, labels=CLASSES, average="macro", zero_division=0))
    # vectorized over resamples: the same as scikit-learn on each resample
    idx = np.random.default_rng(1).integers(0, 60, size=(5, 60))
    for row, value in zip(idx, macro.statistic(macro.values(scores), idx)):
        expected = f1_score([truth[i] for i in row], [pred[i] for i in row], labels=CLASSES, average="macro",
                            zero_division=0)
        assert value == pytest.approx(expected)

    detail = m.per_class(scorer, truth, pred)
    precision, recall, f1, support = precision_recall_fscore_support(truth, pred, labels=CLASSES, zero_division=0)
    for i, row in enumerate(detail["classes"]):
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx(
            (precision[i], recall[i], f1[i], support[i]))
    matrix = np.array(detail["confusion"]["matrix"])
    assert detail["confusion"]["labels"] == [*CLASSES, "other"]
    assert (matrix[:, :3] == confusion_matrix(truth, pred, labels=CLASSES)).all()
    assert matrix[:, 3].sum() == pred.count("Refund")


def test_template_scores_known_values():
    scorer = m.choose_scorer([TICKET.format("Billing", "High", "Refund it")] * 12)
    reference = TICKET.format("Billing", "High", "Refund it")
    assert m.score(scorer, reference, reference) == {
        "exact": 1, "valid": 1, "field_accuracy": 1.0, "fields": {"Category": 1, "Priority": 1, "Action": 1}}
    two_of_three = m.score(scorer, "category: x\nPriority: HIGH\nAction:  Refund  it", reference)
    assert two_of_three["fields"] == {"Category": 0, "Priority": 1, "Action": 1}
    assert two_of_three["field_accuracy"] == pytest.approx(2 / 3) and two_of_three["valid"] == 0  # "category" != "Category"
    assert m.score(scorer, "I think it is a billing problem.", reference) == {
        "exact": 0, "valid": 0, "field_accuracy": 0.0, "fields": {"Category": 0, "Priority": 0, "Action": 0}}
    json_scorer = m.choose_scorer(['{"label": "a", "score": 1}'] * 3)
    assert m.score(json_scorer, '{"score": 1, "label": "A"}', '{"label": "a", "score": 1}')["field_accuracy"] == 1.0
    assert m.score(json_scorer, "not json", '{"label": "a", "score": 1}')["valid"] == 0


def test_free_text_scores_match_rouge_score_and_sacrebleu():
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import CHRF

    reference, output = "the parcel arrived late and damaged", "the parcel was damaged and arrived late"
    scores = m.score(m.Scorer("free-text"), output, reference)
    expected = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True).score(reference, output)["rougeL"].fmeasure
    assert scores["rougeL"] == pytest.approx(expected)
    assert scores["chrf"] == pytest.approx(CHRF().sentence_score(output, [reference]).score)
    assert m.score(m.Scorer("free-text"), reference, reference)["rougeL"] == 1.0
    rouge, chrf, length = m.headline_metrics(m.Scorer("free-text"), [reference, reference])
    pair = [scores, m.score(m.Scorer("free-text"), "late", reference)]
    assert length.statistic(length.values(pair), np.arange(2)) == pytest.approx((7 + 1) / (6 + 6))
    assert not length.directional and chrf.shown == "number"
