"""An evaluation run with outputs in the test's store, without generating anything."""

from __future__ import annotations

from tunesmith.store import queries


def eval_run_with_outputs(n: int = 12, model_ref: str = "zebra-tuned-7", baseline_ref: str = "okapi-base-3",
                          baseline: bool = True) -> str:
    run_id = queries.new_id("ev")
    items = [{"example_id": f"ex{i}", "input_text": f"Ticket {i}: the printer on floor {i} is jammed.",
              "reference": f"Category: hardware\nPriority: {'high' if i % 3 else 'low'}",
              "outputs": {"model": f"Category: hardware (answer {i} one)",
                          **({"baseline": f"It might be hardware (answer {i} two)"} if baseline else {})},
              "scores": None} for i in range(n)]
    queries.record_eval_run(id=run_id, model_ref=model_ref, baseline_ref=baseline_ref if baseline else None,
                            data_path="tickets", metrics_kind="free-text", examples=n, items=items,
                            summary={"baseline": baseline_ref} if baseline else {})
    return run_id
