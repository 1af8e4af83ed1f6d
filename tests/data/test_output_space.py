"""The output space learned from training outputs: labels, "Key: value" templates, JSON fields."""

from __future__ import annotations

import json

from tunesmith.data.output_space import OutputSpace, learn_output_space, score_answers
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


def test_json_objects_with_varying_keys_make_a_space_with_optional_keys():
    outputs = ['{"people": "4"}', '{"date": "Friday", "people": "2"}', '{}', '{"time": "7pm"}',
               '{"date": "May 3", "time": "noon"}', '{"people": "6", "time": "8:30"}'] * 3 + ['{"typo": "x"}']
    space = learn_output_space(outputs)
    assert space is not None and space.kind == "json"
    assert [(f.name, f.required) for f in space.fields] == [("date", False), ("people", False), ("time", False)]
    assert all(space.contains(o) for o in outputs[:-1])
    assert not space.contains('{"typo": "x"}')  # a key used once is drift, left out of the space
    assert OutputSpace.from_dict(space.to_dict()) == space
    assert space.response_schema()["required"] == []
    assert "optional" in space.describe()
    # Field accuracy: leaving out a key the reference leaves out is right; an invalid answer is wrong on every field.
    scores = score_answers(space, ['{"people": "4"}', '{"people": "4"}', "not json"],
                           ['{"people": "4"}', '{"people": "4", "time": "7pm"}', "{}"])
    assert scores["fields"] == {"date": 2 / 3, "people": 2 / 3, "time": 1 / 3}
    # One object that leaves a key out is drift: the key stays required.
    space = learn_output_space([json.dumps({"a": "xy"[i % 2], "n": i}) for i in range(30)] + ['{"a": "x"}'])
    assert [(f.name, f.required) for f in space.fields] == [("a", True), ("n", True)]
    assert not space.contains('{"a": "x"}')


def test_restaurant8k_learns_a_json_space_with_optional_slots(shared_data):
    path = shared_data / "restaurant8k" / "train.jsonl"
    outputs = [json.loads(line)["output"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    space = learn_output_space(outputs)
    assert space is not None and space.kind == "json"
    assert {f.name for f in space.fields} == {"date", "people", "time", "first_name", "last_name"}
    assert not any(f.required for f in space.fields)
    assert sum(space.contains(o) for o in outputs) / len(outputs) > 0.99
