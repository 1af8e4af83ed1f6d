"""The overfitting watch and the loss guard: pure logic, fed by the trainer's callbacks.

Overfitting shows as validation loss that stops improving while training loss keeps
falling: the model is memorising its training set. After `patience` evaluations like that
the watch says stop, with the evidence; the best checkpoint (lowest validation loss) is
the run's result. With `select_by="accuracy"` the watch follows the task's real metric
instead (exact labels or template fields, train/answer_metric.py): the best checkpoint is the
most accurate, and the run stops when accuracy has not risen for `patience` evaluations
while training loss kept falling. The guard stops a run whose loss is NaN, infinite or exploding."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# Loss this many times the first logged loss means the run is diverging, not learning.
EXPLODING_FACTOR = 4.0


@dataclass
class Evaluation:
    step: int
    train_loss: float | None  # the latest training loss logged before this evaluation
    eval_loss: float
    accuracy: float | None = None  # the task's real metric on validation answers, where measured


@dataclass
class StopVerdict:
    reason: str  # "stopped_early" | "nan_loss" | "exploding_loss"
    message: str
    evidence: dict = field(default_factory=dict)


class OverfittingWatch:
    def __init__(self, patience: int, min_delta: float = 0.0, select_by: str = "loss"):
        self.patience = patience
        self.min_delta = min_delta
        self.select_by = select_by
        self.history: list[Evaluation] = []
        self.best: Evaluation | None = None

    def _better(self, evaluation: Evaluation) -> bool:
        if self.best is None:
            return True
        if self.select_by == "accuracy" and evaluation.accuracy is not None and self.best.accuracy is not None:
            return evaluation.accuracy > self.best.accuracy + self.min_delta
        return evaluation.eval_loss < self.best.eval_loss - self.min_delta

    def observe(self, evaluation: Evaluation) -> StopVerdict | None:
        self.history.append(evaluation)
        if self._better(evaluation):
            self.best = evaluation
            return None
        if self.patience <= 0:
            return None
        since_best = self.history[self.history.index(self.best) + 1:]
        if len(since_best) < self.patience or not self._train_loss_kept_falling(since_best):
            return None
        if self.select_by == "accuracy" and self.best.accuracy is not None:
            losses = ", ".join(f"step {e.step}: accuracy {e.accuracy:.3f} / train {e.train_loss:.4f}" for e in since_best)
            what, best = "validation accuracy", f"{self.best.accuracy:.3f}"
        else:
            losses = ", ".join(f"step {e.step}: val {e.eval_loss:.4f} / train {e.train_loss:.4f}" for e in since_best)
            what, best = "validation loss", f"{self.best.eval_loss:.4f}"
        return StopVerdict(
            reason="stopped_early",
            message=(f"{what} has not improved for {len(since_best)} evaluations (best {best} "
                     f"at step {self.best.step}) while training loss kept falling ({losses}): the model is overfitting; "
                     f"keeping the checkpoint from step {self.best.step}"),
            evidence={
                "best_step": self.best.step,
                "best_eval_loss": self.best.eval_loss,
                "best_accuracy": self.best.accuracy,
                "evaluations": [e.__dict__ for e in [self.best, *since_best]],
            },
        )

    def _train_loss_kept_falling(self, since_best: list[Evaluation]) -> bool:
        losses = [e.train_loss for e in [self.best, *since_best]]
        if any(loss is None for loss in losses):
            return False
        return losses[-1] < losses[0]


class LossGuard:
    """Stops on NaN or infinite loss, or loss far above where the run started."""

    def __init__(self, factor: float = EXPLODING_FACTOR):
        self.factor = factor
        self.first: float | None = None

    def check(self, step: int, loss: float) -> StopVerdict | None:
        if not math.isfinite(loss):
            return StopVerdict("nan_loss", f"the training loss became {loss} at step {step}; the run cannot recover",
                               {"step": step, "loss": str(loss)})
        if self.first is None:
            self.first = loss
        elif loss > self.factor * self.first:
            return StopVerdict(
                "exploding_loss",
                f"the training loss rose to {loss:.3f} at step {step}, over {self.factor:g}x its first value "
                f"{self.first:.3f}; lower the learning rate",
                {"step": step, "loss": loss, "first_loss": self.first},
            )
        return None
