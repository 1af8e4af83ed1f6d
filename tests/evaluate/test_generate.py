"""Batched greedy generation: prompts rendered as training renders them, batches that give
the answers one-at-a-time generation gives, in the order asked, stopped at the end of the turn."""

from __future__ import annotations

import pytest

from tunesmith.data.example import Example, Turn
from tunesmith.models.chat import render_prompt, stop_token_ids
from tunesmith.models.generate import _answer, generate_greedy
from tunesmith.models.loading import load_model, load_tokenizer
from tunesmith.models.chat import render_conversation


@pytest.fixture(scope="module")
def tiny(tiny_base):
    return load_model(str(tiny_base)), load_tokenizer(str(tiny_base))


def test_prompts_are_rendered_exactly_as_training_renders_them(tiny):
    _, tokenizer = tiny
    examples = [
        Example([Turn("user", "Classify: 'charged twice'"), Turn("model", "Category: Billing")]),
        Example([Turn("user", "hi"), Turn("model", "hello"), Turn("user", "and now?"), Turn("model", "now this")],
                system="Answer briefly."),
    ]
    for example in examples:
        text, spans = render_conversation(example, tokenizer)
        assert render_prompt(example, tokenizer) == text[: spans[-1][0]]
    assert render_prompt(examples[1], tokenizer).startswith("<|im_start|>system\nAnswer briefly.")
    assert render_prompt(examples[1], tokenizer).endswith("now?<|im_end|>\n<|im_start|>assistant\n")


def test_the_end_of_turn_token_is_the_one_training_teaches(tiny):
    _, tokenizer = tiny
    assert tokenizer.convert_ids_to_tokens(stop_token_ids(tokenizer)) == ["<|im_end|>"]
    hello = tokenizer("Hello there", add_special_tokens=False)["input_ids"]
    assert _answer(hello + [2, 2, 2], [2], tokenizer) == "Hello there"  # rows that finished early are padded
    assert _answer(hello, [2], tokenizer) == "Hello there"


def test_batches_give_the_answers_of_one_at_a_time_in_order(tiny):
    model, tokenizer = tiny
    texts = ["a", "a much longer ticket about a parcel that never arrived at all", "card charged twice", "hi there",
             "my smart plug is offline again since the update yesterday evening", "refund?"]
    prompts = [render_prompt(Example([Turn("user", t)]), tokenizer) for t in texts]
    batched = generate_greedy(model, tokenizer, prompts, max_new_tokens=8, batch_size=4)
    alone = [generate_greedy(model, tokenizer, [p], max_new_tokens=8, batch_size=1)[0] for p in prompts]
    assert batched == alone
    assert len(set(batched)) > 1  # distinct prompts, distinct answers: the order is not a coincidence
    assert generate_greedy(model, tokenizer, prompts, max_new_tokens=8, batch_size=4) == batched  # deterministic
    with pytest.raises(ValueError):
        generate_greedy(model, tokenizer, prompts, max_new_tokens=0)
