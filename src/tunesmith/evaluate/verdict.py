"""The verdict in one sentence, from the paired statistics of the headline metrics.

The first headline metric decides (accuracy, field accuracy or ROUGE-L): significantly
higher is "better" and, when no other directional metric is significantly worse, ready
for limited production testing, as the guide asks; significantly lower is "worse";
anything else is "no_difference", with the number of examples that would detect a
difference of the size observed."""

from __future__ import annotations

from .stats import Comparison

VERDICTS = ("better", "no_difference", "worse")


def format_value(value: float, shown: str) -> str:
    if shown == "percent":
        return f"{value:.1%}"
    return f"{value:.2f}" if shown == "ratio" else f"{value:.1f}"


def format_difference(value: float, shown: str, unit: bool = True) -> str:
    if shown == "percent":
        return f"{value * 100:+.1f}" + (" points" if unit else "")
    return f"{value:+.2f}" if shown == "ratio" else f"{value:+.1f}"


def format_range(low: float, high: float, shown: str) -> str:
    """"+3.1 to +12.0 points": an interval of differences."""
    return f"{format_difference(low, shown, unit=False)} to {format_difference(high, shown)}"


def format_p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _evidence(c: Comparison) -> str:
    return (f"{c.label} {format_value(c.model, c.shown)} vs {format_value(c.baseline, c.shown)} "
            f"({format_difference(c.difference, c.shown)}, 95% CI {format_range(*c.difference_interval, c.shown)}, "
            f"{format_p(c.p_value)})")


def verdict(comparisons: list[Comparison], examples: int, model: str, baseline: str) -> tuple[str, str]:
    """(verdict code, the sentence)."""
    primary, others = comparisons[0], comparisons[1:]
    where = f"on {examples:,} examples"
    if primary.significant and primary.difference > 0:
        worse = [c.label for c in others if c.directional and c.significant and c.difference < 0]
        if worse:
            return "better", (f"Better, with a catch: {model} beats {baseline} on {_evidence(primary)} {where}, "
                              f"but is significantly worse on {', '.join(worse)}: look at the regressions before "
                              "limited production testing.")
        return "better", (f"Better: {model} beats {baseline} on {_evidence(primary)} {where}: "
                          "ready for limited production testing.")
    if primary.significant:
        return "worse", f"Worse: {model} loses to {baseline} on {_evidence(primary)} {where}: keep {baseline}."
    if primary.difference == 0:
        return "no_difference", (f"No difference: {model} and {baseline} score the same {where}: {primary.label} "
                                 f"{format_value(primary.model, primary.shown)}.")
    needed = primary.examples_needed
    more = (f"; about {needed:,} examples would be needed to detect a difference this size"
            if needed and needed > examples else "")
    return "no_difference", f"No significant difference: {_evidence(primary)} {where}{more}."
