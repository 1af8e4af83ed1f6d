"""Evaluation: a tuned model against its base on the sealed test split, with paired
statistics, a one-sentence verdict, a per-example results file and an HTML report.
See docs/evaluation.md."""

from __future__ import annotations

from .runner import EvalResult, compare, evaluate

__all__ = ["EvalResult", "compare", "evaluate"]
