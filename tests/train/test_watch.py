from __future__ import annotations

import math

from tunesmith.train.watch import Evaluation, LossGuard, OverfittingWatch


def feed(watch, rows):
    verdict = None
    for step, train, val in rows:
        verdict = watch.observe(Evaluation(step, train, val)) or verdict
        if verdict:
            return verdict
    return None


def test_stops_when_validation_stalls_while_training_loss_falls():
    verdict = feed(OverfittingWatch(patience=2), [(1, 3.0, 2.5), (2, 2.0, 2.0), (3, 1.5, 2.1), (4, 1.0, 2.3)])
    assert verdict.reason == "stopped_early"
    assert verdict.evidence["best_step"] == 2 and verdict.evidence["best_eval_loss"] == 2.0
    assert [e["step"] for e in verdict.evidence["evaluations"]] == [2, 3, 4]
    assert "step 2" in verdict.message


def test_no_stop_while_improving_or_on_a_plateau_of_both():
    assert feed(OverfittingWatch(patience=2), [(i, 3.0 - i * 0.1, 2.5 - i * 0.1) for i in range(10)]) is None
    # validation stalls but training loss does not fall either: a plateau, not overfitting
    assert feed(OverfittingWatch(patience=2), [(1, 2.0, 2.0), (2, 2.0, 2.1), (3, 2.1, 2.2)]) is None


def test_min_delta_and_patience_zero():
    # improvements smaller than min_delta do not count
    verdict = feed(OverfittingWatch(patience=2, min_delta=0.1), [(1, 3.0, 2.0), (2, 2.5, 1.95), (3, 2.0, 1.92)])
    assert verdict and verdict.evidence["best_step"] == 1
    assert feed(OverfittingWatch(patience=0), [(1, 3.0, 2.0), (2, 2.0, 3.0), (3, 1.0, 4.0)]) is None


def test_loss_guard():
    guard = LossGuard()
    assert guard.check(1, 2.0) is None and guard.check(2, 3.0) is None
    assert guard.check(3, 9.0).reason == "exploding_loss"
    assert LossGuard().check(1, math.nan).reason == "nan_loss"
    assert LossGuard().check(1, math.inf).reason == "nan_loss"
