"""Wording shared by the checks' messages: counts with the right plural, quoted snippets,
lists of places."""

from __future__ import annotations

from ..example import Example

QUOTE_CHARS = 60


def plural(n: int, word: str, plural_form: str | None = None) -> str:
    return word if n == 1 else plural_form or word + "s"


def count(n: int, word: str, plural_form: str | None = None) -> str:
    """'1 example', '1,204 examples'."""
    return f"{n:,} {plural(n, word, plural_form)}"


def count_examples(n: int) -> str:
    return count(n, "example")


def quote(text: str, limit: int = QUOTE_CHARS) -> str:
    """A text on one line, in quotes, cut to `limit` characters with an ellipsis."""
    flat = " ".join(text.split())
    return '"' + (flat if len(flat) <= limit else flat[: limit - 1] + "…") + '"'


def wheres(items: list[Example], indices: list[int], shown: int = 3) -> str:
    """'f.csv:3, f.csv:9, f.csv:12 and 4 more': where the first few of a group are."""
    places = [items[i].where for i in indices[:shown]]
    more = f" and {len(indices) - shown:,} more" if len(indices) > shown else ""
    return ", ".join(places) + more
