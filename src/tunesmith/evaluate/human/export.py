"""`rate export`: every rating of a task as CSV and JSONL, unblinded (model names included)
for analysis elsewhere. One row per rating; written atomically."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ...fileio import atomic_write_text
from ...store import queries

COLUMNS = ["task_id", "rating_id", "time", "rater", "item_id", "example_id", "gold", "input", "reference",
           "left_model", "right_model", "left_output", "right_output", "choice", "preferred_model",
           "left_score", "right_score", "comment"]


def rating_rows(task_id: str) -> list[dict]:
    task = queries.get_rating_task(task_id)
    labels = task.models["labels"]
    items = {item.id: item for item in queries.rating_items(task.id)}
    raters = {r.id: r.name for r in queries.task_raters(task.id)}
    rows = []
    for r in queries.task_ratings(task.id):
        item = items[r.item_id]
        outputs = {item.first_model: item.first_output, item.second_model: item.second_output}
        preferred = {"left": r.left_model, "right": r.right_model}.get(r.choice or "")
        rows.append({
            "task_id": task.id, "rating_id": r.id, "time": r.time.isoformat(), "rater": raters[r.rater_id],
            "item_id": item.id, "example_id": item.example_id, "gold": item.gold is not None,
            "input": item.input_text, "reference": item.reference,
            "left_model": labels.get(r.left_model, r.left_model), "right_model": labels.get(r.right_model, r.right_model),
            "left_output": outputs[r.left_model], "right_output": outputs[r.right_model], "choice": r.choice,
            "preferred_model": labels.get(preferred, preferred) if preferred else None,
            "left_score": r.left_score, "right_score": r.right_score, "comment": r.comment,
        })
    return rows


def export_ratings(task_id: str, out: str | Path) -> dict[str, str]:
    """Write ratings.csv and ratings.jsonl into the folder `out`; returns their paths."""
    task = queries.get_rating_task(task_id)
    rows = rating_rows(task.id)
    folder = Path(out)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    csv_path, jsonl_path = folder / f"{task.id}-ratings.csv", folder / f"{task.id}-ratings.jsonl"
    atomic_write_text(csv_path, buffer.getvalue())
    atomic_write_text(jsonl_path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return {"csv": str(csv_path), "jsonl": str(jsonl_path), "ratings": len(rows)}
