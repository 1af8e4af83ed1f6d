"""Option parsing shared by command groups."""

from __future__ import annotations

from ..errors import BadInputError


def parse_columns(spec: str | None) -> dict[str, str] | None:
    """"input=text,output=category" -> {"input": "text", "output": "category"}."""
    if not spec:
        return None
    mapping = {}
    for item in spec.split(","):
        field, sep, column = item.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise BadInputError(f"--columns: {item!r} is not FIELD=COLUMN", "e.g. --columns input=text,output=category")
        mapping[field.strip()] = column.strip()
    return mapping


def row_dict(row) -> dict:
    """A store row as JSON-ready data (times as ISO 8601)."""
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.to_dict().items()}
