"""The output space learned from training outputs: labels, "Key: value" templates, JSON fields."""

from __future__ import annotations

import json

from tunesmith.data.output_space import OutputSpace, learn_output_space
from tunesmith.examples.tickets import generate_tickets


def test_label_outputs_give_the_label_set_without_one_off_drift():
    outputs = (["card_arrival"] * 16 + ["top_up_failed"] * 15 + ["Refund_not_showing_up"] * 3 + ["Intent: card_arrival"]
               + ["reverted_card_payment?"] * 2)
    space = learn_output_space(outputs)
    assert space.kind == "labels"  # a class spelt its own way is a class, however rare; drift is not
    assert set(space.labels) == {"card_arrival", "top_up_failed", "Refund_not_showing_up", "reverted_card_payment?"}
    assert space.contains("top_up_failed") and not space.contains("Intent: card_arrival")
    assert space.response_schema() == {"type": "string", "enum": list(space.labels)}
    assert OutputSpace.from_dict(json.loads(json.dumps(space.to_dict()))) == space


def test_the_bundled_tickets_give_a_template_with_closed_and_free_fields():
    outputs = [r["output_text"] for r in generate_tickets(300).records]
    space = learn_output_space(outputs)
    assert space.kind == "keys"
    fields = {f.name: f for f in space.fields}
    assert list(fields) == ["Category", "Priority", "Action"]
    assert fields["Priority"].values is not None and "High" in fields["Priority"].values
    assert fields["Category"].values is not None
    assert fields["Action"].values is None  # free text
    example = f"Category: {fields['Category'].values[0]}\nPriority: High\nAction: call them back"
    assert space.field_values(example)["Action"] == "call them back"
    assert not space.contains("Category: Nope\nPriority: High\nAction: x")
    assert space.render('{"Category": "A", "Priority": "High", "Action": "go"}') == "Category: A\nPriority: High\nAction: go"
    assert OutputSpace.from_dict(space.to_dict()) == space


def test_json_outputs_give_typed_fields():
    outputs = [json.dumps({"intent": i, "slots": f"free {n}", "urgent": n % 2 == 0, "score": n})
               for n, i in enumerate(["book", "cancel", "ask"] * 10)]
    space = learn_output_space(outputs)
    assert space.kind == "json"
    assert [(f.name, f.values, f.type) for f in space.fields] == [
        ("intent", ("ask", "book", "cancel"), "text"), ("slots", None, "text"),
        ("urgent", None, "boolean"), ("score", None, "number")]
    assert space.contains(outputs[3]) and not space.contains('{"intent": "fly", "slots": "", "urgent": true, "score": 1}')
    schema = space.response_schema()
    assert schema["properties"]["intent"]["enum"] == ["ask", "book", "cancel"] and schema["required"][0] == "intent"


def test_free_text_has_no_output_space():
    assert learn_output_space([f"a different sentence number {i} about things" for i in range(40)]) is None
