"""Power advice: how many more ratings would let the 95% interval exclude "no preference",
from the ratings so far.

The standard error of a cluster-bootstrap estimate shrinks as 1/√(inputs), so the inputs
needed to detect the observed effect at 5% (two-sided) with 80% power are
n·((z₀.₉₇₅ + z₀.₈)·SE/|effect|)² (the same rule as the automatic evaluation's
`examples_needed`); ratings scale with the ratings per input so far.
"""

from __future__ import annotations

import math

from ..stats import se_examples_needed


def more_ratings(estimate: float, null: float, interval: list[float], standard_error: float, inputs: int,
                 ratings: int) -> dict:
    """{"status": "decided" | "more" | "no_effect", "inputs_needed", "more_inputs", "more_ratings", "text"}."""
    low, high = interval
    if low > null or high < null:
        return {"status": "decided", "inputs_needed": inputs, "more_inputs": 0, "more_ratings": 0,
                "text": "the interval already excludes a tie"}
    needed = se_examples_needed(inputs, standard_error, estimate - null)
    if needed is None:
        return {"status": "no_effect", "inputs_needed": None, "more_inputs": None, "more_ratings": None,
                "text": "no preference so far: more ratings would only narrow the interval around a tie"}
    more_inputs = max(needed - inputs, 1)
    per_input = ratings / inputs if inputs else 1.0
    more = math.ceil(more_inputs * per_input)
    return {"status": "more", "inputs_needed": needed, "more_inputs": more_inputs, "more_ratings": more,
            "text": f"about {more:,} more ratings (on {more_inputs:,} more inputs) would exclude a tie "
                    "if the preference stays this size (80% power)"}
