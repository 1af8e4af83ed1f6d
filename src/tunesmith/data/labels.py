"""Where an example's class label comes from.

In order: `--label FIELD` (a field of the record, or a `Field: value` line of the output);
a label the file already gives (the canonical format, a CSV label column); the output
itself when outputs are label-like (few distinct short values, as in intent
classification; an output written in another shape than the labels, `Intent: card_arrival`,
gets the class it names, or none: see `label_shape`); the first field of templated outputs (`Category: …` in
`Category: …\\nPriority: …`). Otherwise the data has no labels and label checks are skipped."""

from __future__ import annotations

import re
from collections import Counter

from .example import Example
from .label_shape import LABEL_LIKE_MAX_WORDS, find_label_drift

_KEY_LINE = re.compile(r"^\s*([A-Za-z][\w \-]{0,40}?)\s*:\s*(.+?)\s*$")


def key_values(text: str) -> dict[str, str]:
    """`Key: value` lines of an output, keys as written."""
    out = {}
    for line in text.splitlines():
        m = _KEY_LINE.match(line)
        if m and m.group(1) not in out:
            out[m.group(1)] = m.group(2)
    return out


def label_like(outputs: list[str]) -> bool:
    """Whether outputs look like class labels: a few distinct short single-line values
    (used by the data checks and by evaluation to pick label metrics)."""
    distinct = set(outputs)
    limit = max(2, min(200, len(outputs) // 5))
    return 1 < len(distinct) <= limit and all(len(o.split()) <= LABEL_LIKE_MAX_WORDS and "\n" not in o for o in distinct)


def _dominant_first_key(outputs: list[str]) -> str | None:
    firsts = Counter()
    for o in outputs:
        kv = key_values(o)
        if kv:
            firsts[next(iter(kv))] += 1
    if not firsts:
        return None
    key, n = firsts.most_common(1)[0]
    return key if n >= 0.8 * len(outputs) else None


def _short(value: str | None) -> str | None:
    """A label is a few words; a long value is a drifted output ("Returns, Priority: High, …")
    that the format check reports, not a class of its own."""
    return value if value is not None and len(value.split()) <= LABEL_LIKE_MAX_WORDS else None


def assign_labels(examples: list[Example], label_field: str | None = None) -> str | None:
    """Set `example.label` in place; return how labels were found (for the report), or None."""
    if label_field:
        for ex in examples:
            if label_field in ex.meta and ex.meta[label_field] is not None:
                ex.label = str(ex.meta[label_field])
            elif label_field != "label" or ex.label is None:
                ex.label = key_values(ex.output_text).get(label_field)
        return f'field "{label_field}"'
    if any(ex.label is not None for ex in examples):
        return "the label field of the input"
    outputs = [ex.output_text.strip() for ex in examples]
    drift = find_label_drift(outputs)
    if drift is not None or label_like(outputs):
        off_shape = drift.off_shape if drift is not None else {}
        for i, (ex, out) in enumerate(zip(examples, outputs)):
            ex.label = off_shape[i] if i in off_shape else out
        return "the output (label-like outputs)"
    key = _dominant_first_key(outputs)
    if key:
        for ex in examples:
            ex.label = _short(key_values(ex.output_text).get(key))
        return f'the "{key}" line of the output'
    return None
