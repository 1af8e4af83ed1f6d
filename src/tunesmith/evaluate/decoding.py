"""What holding a model to its output space buys: the share of answers inside the space
(valid), exact matches, and per-field accuracy for templates, for constrained and free
decoding side by side."""

from __future__ import annotations

from ..data.output_space import OutputSpace


def space_scores(space: OutputSpace, outputs: list[str], references: list[str]) -> dict:
    """{"valid_rate", "exact_match", "fields": {name: accuracy}} over index-aligned lists."""
    n = len(references)
    valid = [space.contains(o) for o in outputs]
    exact = [o.strip() == r.strip() for o, r in zip(outputs, references)]
    out = {"examples": n, "valid_rate": sum(valid) / n if n else None,
           "exact_match": sum(exact) / n if n else None, "invalid": n - sum(valid)}
    if space.kind != "labels":
        fields = {}
        for f in space.fields:
            right = 0
            for o, r in zip(outputs, references):
                got, want = space.field_values(o) or {}, space.field_values(r) or {}
                right += f.name in want and got.get(f.name, "").strip() == want[f.name].strip()
            fields[f.name] = right / n if n else None
        out["fields"] = fields
    return out
