"""A rating task on real public data (Bitext customer support answers), with outputs of two
local models generated here: a tiny base and the same base with a LoRA adapter."""

from __future__ import annotations

from tunesmith.evaluate.human import create_task, next_item, submit, task_results
from tunesmith.store import queries


def test_a_task_on_bitext_support_with_generated_outputs(shared_data, registered):
    data = shared_data / "bitext-support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
    created = create_task(models=[registered.name, "base"], data=data, items=5, raters=["ana", "ben"], overlap=0.4,
                          max_new_tokens=24)
    items = queries.rating_items(created.task.id)
    assert len(items) == 5
    assert all(item.input_text.strip() and item.reference and item.reference.strip() for item in items)
    assert all(item.first_output != item.second_output for item in items)  # the adapter changes the answers
    for _, link in created.links:
        token = link.rsplit("/", 1)[1]
        state = next_item(token)
        while state["item"]:
            state = submit(token, state["item"]["n"], choice="right", left_score=2, right_score=3)
    results = task_results(created.task.id)
    assert results["progress"]["ratings"] == 7  # 5 items, 2 of them (40%) twice
    assert results["pairwise"]["position_bias"]["left_share"] == 0.0  # they always chose the right side
    assert results["verdict_text"].startswith("Raters preferred ")


def test_a_task_on_a_real_evaluation_run_of_bitext_support(shared_data, registered):
    from tunesmith.evaluate import evaluate
    from tunesmith.evaluate.human import human_verdict

    data = shared_data / "bitext-support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
    result = evaluate(registered.name, data=data, limit=4, max_new_tokens=16, resamples=1000)
    created = create_task(eval_run=result.id, raters=["ana"], mode="scale")
    items = queries.rating_items(created.task.id)
    assert [i.example_id for i in items] == [it["id"] for it in result.items]
    assert created.task.models["labels"]["model"] == registered.name
    token = created.links[0][1].rsplit("/", 1)[1]
    state = next_item(token)
    while state["item"]:
        state = submit(token, state["item"]["n"], left_score=3, right_score=3)
    assert human_verdict(result.id).startswith(f"Raters scored {registered.name} 3.0 and ")
