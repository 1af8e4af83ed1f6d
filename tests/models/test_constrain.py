"""Constrained decoding: whatever the model's weights say, every finished answer is inside
the space (property-based over random label sets and templates), a batch mixes constrained
and free rows without either changing the other, and JSON schemas hold."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunesmith.data.example import Example, Turn
from tunesmith.data.output_space import Field, OutputSpace
from tunesmith.errors import BadInputError
from tunesmith.models.chat import render_prompt
from tunesmith.models.constrain import Automaton, label_segments, schema_segments, space_segments
from tunesmith.models.generate import generate_greedy


def _prompts(tokenizer, n):
    texts = ["where is my card?", "refund please", "my top-up failed twice today", "hi", "the app crashes", "x"]
    return [render_prompt(Example([Turn("user", texts[i % len(texts)])]), tokenizer) for i in range(n)]


_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ0123456789_-é", min_size=1, max_size=12)
_label = st.lists(_word, min_size=1, max_size=3).map(" ".join)
_SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_SETTINGS
@given(labels=st.lists(_label, min_size=1, max_size=12, unique=True))
def test_every_answer_is_a_label(random_model, labels):
    model, tokenizer = random_model
    prompts = _prompts(tokenizer, 5)
    answers = generate_greedy(model, tokenizer, prompts, max_new_tokens=100, batch_size=5,
                              constraints=[label_segments(labels)] * len(prompts))
    assert all(answer in labels for answer in answers), (answers, labels)


@_SETTINGS
@given(fields=st.lists(st.tuples(st.sampled_from(["Category", "Priority", "Team", "Sentiment"]),
                                 st.lists(_word, min_size=1, max_size=5, unique=True)),
                       min_size=1, max_size=4, unique_by=lambda f: f[0]))
def test_every_answer_fills_the_template(random_model, fields):
    model, tokenizer = random_model
    space = OutputSpace("keys", fields=tuple(Field(name, tuple(values)) for name, values in fields))
    prompts = _prompts(tokenizer, 4)
    answers = generate_greedy(model, tokenizer, prompts, max_new_tokens=200, batch_size=4,
                              constraints=[space_segments(space)] * len(prompts))
    assert all(space.contains(answer) for answer in answers), answers


def test_free_fields_stay_on_their_line_and_the_closed_ones_in_their_set(random_model):
    model, tokenizer = random_model
    space = OutputSpace("keys", fields=(Field("Category", ("Billing", "Returns")), Field("Action", None)))
    automaton = Automaton(space_segments(space))
    answers = generate_greedy(model, tokenizer, _prompts(tokenizer, 4), max_new_tokens=30, batch_size=4,
                              constraints=[space_segments(space)] * 4)
    for answer in answers:  # a free field may run to max_new_tokens: what is there is a valid beginning
        assert answer.startswith(("Category: Billing\nAction:", "Category: Returns\nAction:"))
        assert automaton.read(automaton.start, answer.encode()) is not None


def test_a_batch_mixes_constrained_and_free_rows(random_model):
    model, tokenizer = random_model
    prompts = _prompts(tokenizer, 6)
    labels = ["card_arrival", "refund_not_showing_up", "top_up_failed"]
    constraints = [label_segments(labels) if i % 2 else None for i in range(6)]
    mixed = generate_greedy(model, tokenizer, prompts, max_new_tokens=30, batch_size=6, constraints=constraints)
    free = generate_greedy(model, tokenizer, prompts, max_new_tokens=30, batch_size=6)
    for i, answer in enumerate(mixed):
        if i % 2:
            assert answer in labels
        else:
            assert answer == free[i]  # a free row is untouched by its constrained neighbours
    assert any(answer not in labels for answer in free)  # the random model alone writes anything


def test_json_schemas_hold_and_unsupported_ones_are_refused(random_model):
    model, tokenizer = random_model
    schema = {"type": "object", "properties": {
        "intent": {"enum": ["book", "cancel"]}, "people": {"type": "integer"}, "urgent": {"type": "boolean"},
        "where": {"type": "object", "properties": {"city": {"type": "string"}}}}}
    answers = generate_greedy(model, tokenizer, _prompts(tokenizer, 3), max_new_tokens=80, batch_size=3,
                              constraints=[schema_segments(schema)] * 3)
    automaton = Automaton(schema_segments(schema))
    for answer in answers:
        assert automaton.read(automaton.start, answer.encode()) is not None
        assert answer.startswith('{"intent": "')
    with pytest.raises(BadInputError):
        schema_segments({"type": "array", "items": {"type": "string"}})


def test_the_automaton_accepts_exactly_the_space():
    automaton = Automaton(label_segments(["ab", "abc", "b"]))
    assert [automaton.matches(t) for t in ("ab", "abc", "b", "a", "abcd", "")] == [True, True, True, False, False, False]
    space = OutputSpace("json", fields=(Field("a", ("x", "y")), Field("n", None, "number")))
    json_automaton = Automaton(space_segments(space))
    assert json_automaton.matches(json.dumps({"a": "x", "n": 12}))
    assert not json_automaton.matches(json.dumps({"a": "z", "n": 12}))


def test_segments_as_a_gbnf_grammar_for_llama_cpp():
    from tunesmith.data.output_space import Field, OutputSpace
    from tunesmith.models.constrain import LINE, Free, Number, Text, gbnf, label_segments, space_segments

    # Labels: one alternative each; quotes, backslashes and control characters escaped, the rest as written.
    assert gbnf(label_segments(['say "hi"', "a\\b", "naïve"])) == \
        'root ::= ("a\\x5cb" | "naïve" | "say \\x22hi\\x22")\n'
    # A template: fixed text, closed fields as alternatives, a free line as a character class.
    space = OutputSpace("keys", fields=(Field("Category", ("Billing", "Shipping")), Field("Action", None)))
    assert gbnf(space_segments(space)) == \
        'root ::= "Category:" (" Billing" | " Shipping") "\\x0aAction:" " " [^\\x0a\\x0d]{1,}\n'
    assert gbnf((Text(b"n="), Number(integer=True), Free(LINE, 0))) == \
        'root ::= "n=" ("-"? ("0" | [1-9] [0-9]{0,11})) [^\\x0a\\x0d]{0,}\n'


_SLOTS = ("date", "people", "time", "first_name")


@settings(max_examples=60, deadline=None)
@given(required=st.lists(st.booleans(), min_size=len(_SLOTS), max_size=len(_SLOTS)),
       present=st.lists(st.booleans(), min_size=len(_SLOTS), max_size=len(_SLOTS)),
       compact=st.booleans(), swap=st.booleans())
def test_optional_json_keys_may_be_left_out_and_the_required_ones_may_not(required, present, compact, swap):
    space = OutputSpace("json", fields=tuple(Field(k, None, "text", r) for k, r in zip(_SLOTS, required)),
                        compact_json=compact)
    automaton = Automaton(space_segments(space))
    kept = [k for k, p in zip(_SLOTS, present) if p]
    if swap and len(kept) > 1:  # the keys out of the space's order
        kept[0], kept[1] = kept[1], kept[0]
    text = json.dumps({k: f"v{i}" for i, k in enumerate(kept)}, separators=(",", ":") if compact else None)
    in_order = not (swap and len(kept) > 1)
    assert automaton.matches(text) == (in_order and space.contains(text)), text
    assert space.contains(text) == all(p or not r for p, r in zip(present, required))


def test_answers_with_optional_keys_are_valid_json_in_the_space(random_model):
    model, tokenizer = random_model
    space = OutputSpace("json", fields=(Field("date", None, "text", False), Field("people", None, "number", False),
                                        Field("time", ("evening", "noon"), "text", False)))
    segments = space_segments(space)
    answers = generate_greedy(model, tokenizer, _prompts(tokenizer, 6), max_new_tokens=60, batch_size=6,
                              constraints=[segments] * 6)
    automaton = Automaton(segments)
    for answer in answers:  # an open string may run to max_new_tokens: what is there is a valid beginning
        assert automaton.read(automaton.start, answer.encode()) is not None, answer
        assert answer.startswith("{")
    finished = [a for a in answers if automaton.matches(a)]
    assert all(space.contains(a) for a in finished)


def test_optional_keys_as_a_gbnf_grammar():
    from tunesmith.models.constrain import gbnf

    space = OutputSpace("json", fields=(Field("a", ("x",), "text", False), Field("b", ("y",), "text", True)))
    grammar = gbnf(space_segments(space))
    # "{", then a (first) or b (first); after a: b (after a comma); after b: "}".
    assert grammar.splitlines()[0] == 'root ::= "{" (s2 | s5)'
    assert 's2 ::= "\\x22a\\x22: " ("\\x22x\\x22") (s11)' in grammar
    assert any(line.endswith('"}"') for line in grammar.splitlines())
