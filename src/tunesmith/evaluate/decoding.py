"""What holding a model to its output space buys: the share of answers inside the space
(valid), exact matches, and per-field accuracy for templates, for constrained and free
decoding side by side (data/output_space.score_answers)."""

from __future__ import annotations

from ..data.output_space import score_answers as space_scores

__all__ = ["space_scores"]
