from __future__ import annotations

import pytest
from rich.console import Console

from tunesmith.data.example import MODEL, USER, Example, Turn
from tunesmith.errors import TunesmithError
from tunesmith.examples.tickets import generate_tickets
from tunesmith.models.loading import load_tokenizer
from tunesmith.train.inspect import render_inspection
from tunesmith.models.chat import (
    IGNORE_INDEX,
    chat_messages,
    encode_dataset,
    encode_example,
    pad_batch,
)

END = "<|im_end|>"
DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return load_tokenizer(str(tiny_model_dir))  # SmolLM2's tokenizer and chat template


@pytest.fixture(scope="module")
def tickets() -> list[Example]:
    return [
        Example(turns=[Turn(USER, r["input_text"]), Turn(MODEL, r["output_text"])])
        for r in generate_tickets(1000, seed=0).records
    ]


def conversation(*texts: str, system: str | None = None) -> Example:
    """Turns alternating user, model, user, ..."""
    return Example(turns=[Turn(USER if i % 2 == 0 else MODEL, t) for i, t in enumerate(texts)], system=system)


def decode(tokenizer, ids: list[int]) -> str:
    return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


def rendered(tokenizer, example: Example) -> str:
    return tokenizer.apply_chat_template(chat_messages(example), tokenize=False)


def trained_runs(tokenizer, encoded) -> list[str]:
    """The text of each run of consecutive trained tokens."""
    runs, run = [], []
    for token, label in zip(encoded.input_ids, encoded.labels):
        if label != IGNORE_INDEX:
            assert label == token
            run.append(token)
        elif run:
            runs.append(run)
            run = []
    return [decode(tokenizer, r) for r in runs + ([run] if run else [])]


def test_single_turn_trains_the_answer_and_its_end_of_turn_token_only(tokenizer):
    example = conversation("Where is my parcel?", "It left the depot today.")
    encoded = encode_example(example, tokenizer, max_length=512)
    text = rendered(tokenizer, example)
    assert decode(tokenizer, encoded.input_ids) == text
    assert text.startswith(f"<|im_start|>system\n{DEFAULT_SYSTEM}{END}\n")  # the template's default, as at inference
    assert trained_runs(tokenizer, encoded) == ["It left the depot today." + END]
    assert not encoded.truncated and not encoded.nothing_to_train


def test_the_trained_tokens_are_what_generation_produces_after_the_prompt(tokenizer):
    example = conversation("Hi", "Hello!")
    encoded = encode_example(example, tokenizer, max_length=512)
    prompt = tokenizer.apply_chat_template(chat_messages(example)[:-1], tokenize=False, add_generation_prompt=True)
    first_trained = next(i for i, label in enumerate(encoded.labels) if label != IGNORE_INDEX)
    # Masked: everything up to and including the role header; trained: the answer up to the
    # end-of-turn token, where generation stops; masked again: the template's newline after it.
    assert decode(tokenizer, encoded.input_ids[:first_trained]) == prompt
    assert decode(tokenizer, encoded.input_ids[first_trained:-1]) == "Hello!" + END
    assert decode(tokenizer, encoded.input_ids[-1:]) == "\n" and encoded.labels[-1] == IGNORE_INDEX


def test_a_system_instruction_replaces_the_default_and_is_not_trained(tokenizer):
    example = conversation("Classify: 'card declined'", "Category: Billing", system="Answer with a category.")
    encoded = encode_example(example, tokenizer, max_length=512)
    text = decode(tokenizer, encoded.input_ids)
    assert text == rendered(tokenizer, example)
    assert text.startswith(f"<|im_start|>system\nAnswer with a category.{END}\n<|im_start|>user\n")
    assert DEFAULT_SYSTEM not in text
    assert trained_runs(tokenizer, encoded) == ["Category: Billing" + END]


def test_every_model_turn_of_a_conversation_is_trained(tokenizer):
    example = conversation("Hi", "Hello! How can I help?", "My bill is wrong.\nTwice.", "Sorry 😕 Let me check.", system="Be kind.")
    encoded = encode_example(example, tokenizer, max_length=512)
    assert decode(tokenizer, encoded.input_ids) == rendered(tokenizer, example)
    assert trained_runs(tokenizer, encoded) == ["Hello! How can I help?" + END, "Sorry 😕 Let me check." + END]


def test_a_user_turn_after_the_last_model_turn_is_not_trained(tokenizer):
    encoded = encode_example(conversation("Hi", "Hello!", "Thanks"), tokenizer, max_length=512)
    assert trained_runs(tokenizer, encoded) == ["Hello!" + END]


def test_leading_whitespace_merged_into_the_role_header_stays_masked(tokenizer):
    # "assistant\n" + "\n\nOK": the tokenizer makes one "\n\n" token of the header's newline and
    # the answer's first; it starts in the header, so it is masked and one "\n" of the answer is not trained.
    encoded = encode_example(conversation("Hi", "\n\nOK"), tokenizer, max_length=512)
    assert trained_runs(tokenizer, encoded) == ["\nOK" + END]


def test_truncation_keeps_the_beginning_and_trains_what_is_left_of_the_answer(tokenizer):
    example = conversation("Hi", "one two three four five six seven eight")
    full = encode_example(example, tokenizer, max_length=512)
    cut = encode_example(example, tokenizer, max_length=len(full.input_ids) - 5)
    assert cut.truncated
    assert cut.input_ids == full.input_ids[: len(cut.input_ids)]
    assert cut.labels == full.labels[: len(cut.labels)]
    [trained] = trained_runs(tokenizer, cut)
    assert "one two three four five six seven eight".startswith(trained) and trained


def test_an_example_cut_before_its_answer_is_flagged(tokenizer):
    example = conversation("a long question " * 20, "Yes.")
    encoded = encode_example(example, tokenizer, max_length=30)
    assert encoded.truncated and encoded.nothing_to_train
    assert len(encoded.input_ids) == 30 and encoded.trained_tokens == 0


def test_a_conversation_without_a_model_turn_has_nothing_to_train(tokenizer):
    assert encode_example(conversation("Hello?"), tokenizer, max_length=512).nothing_to_train


def test_a_conversation_starting_with_a_model_turn_is_refused(tokenizer):
    example = Example(turns=[Turn(MODEL, "Hello!"), Turn(USER, "Hi"), Turn(MODEL, "How can I help?")])
    with pytest.raises(TunesmithError, match="starts with a model turn"):
        encode_example(example, tokenizer, max_length=512)


def test_a_template_that_rewrites_earlier_turns_is_refused_not_mis_masked(tiny_model_dir):
    # Like templates that drop the reasoning of earlier answers: an answer renders one way
    # as the last message and another way once the conversation goes on.
    tokenizer = load_tokenizer(str(tiny_model_dir))
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m.role }}\n"
        "{% if m.role == 'assistant' and not loop.last %}(earlier answer){% else %}{{ m.content }}{% endif %}"
        "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    with pytest.raises(TunesmithError, match="turn by turn"):
        encode_example(conversation("Hi", "Hello!", "Bye", "Bye!"), tokenizer, max_length=512)
    assert encode_example(conversation("Hi", "Hello!"), tokenizer, max_length=512).trained_tokens == 3  # "Hello", "!", "<|im_end|>"


def test_the_batch_encoding_matches_one_at_a_time(tokenizer, tickets):
    sample = tickets[:50]
    assert encode_dataset(sample, tokenizer, 64) == [encode_example(ex, tokenizer, 64) for ex in sample]


def test_every_ticket_trains_exactly_its_label(tokenizer, tickets):
    for example, encoded in zip(tickets, encode_dataset(tickets, tokenizer, 512)):
        assert trained_runs(tokenizer, encoded) == [example.output_text + END]
        assert encoded.example_id == example.id


def test_pad_batch_pads_on_the_right_and_masks_the_padding(tokenizer):
    encoded = encode_dataset([conversation("Hi", "Hello!"), conversation("What is the capital of France?", "Paris.")], tokenizer, 512)
    short, long = sorted(encoded, key=lambda e: len(e.input_ids))
    batch = pad_batch([short, long], pad_id=tokenizer.pad_token_id)
    width = len(long.input_ids)
    assert {name: tuple(t.shape) for name, t in batch.items()} == {name: (2, width) for name in ("input_ids", "attention_mask", "labels")}
    n = len(short.input_ids)
    assert batch["input_ids"][0, :n].tolist() == short.input_ids
    assert batch["input_ids"][0, n:].tolist() == [tokenizer.pad_token_id] * (width - n)
    assert batch["attention_mask"][0].tolist() == [1] * n + [0] * (width - n)
    assert batch["labels"][0].tolist() == short.labels + [IGNORE_INDEX] * (width - n)
    assert batch["labels"][1].tolist() == long.labels
    assert batch["attention_mask"][1].sum() == width


def test_the_tiny_model_computes_a_loss_on_a_padded_batch(tokenizer, tiny_model_dir, tickets):
    from tunesmith.models.loading import load_model

    model = load_model(str(tiny_model_dir))
    loss = model(**pad_batch(encode_dataset(tickets[:4], tokenizer, 512), tokenizer.pad_token_id)).loss
    assert loss.item() == pytest.approx(10.8, abs=0.5)  # about ln(49152): a random model's guess


def test_plain_inspection_brackets_the_trained_tokens(tokenizer):
    examples = [conversation("Hi", "Hello!", system="Be brief."), conversation("Why?", "Because.\nThat's why."), conversation("x", "y")]
    text = render_inspection(examples, tokenizer, max_length=512, n=2, plain=True)
    assert "⟦trained⟧" in text.splitlines()[0]  # the legend
    assert "<|im_start|>assistant↵\n⟦Hello!<|im_end|>⟧↵\n" in text
    assert "⟦Because.↵\nThat's why.<|im_end|>⟧" in text
    encoded = encode_example(examples[0], tokenizer, 512)
    n, t = len(encoded.input_ids), encoded.trained_tokens
    assert f"{n} tokens, {t} trained ({t / n:.0%}), {n - t} masked" in text
    assert text.count("tokens, ") == 2  # n=2 of 3


def test_inspection_shows_the_cut_and_the_skip(tokenizer):
    text = render_inspection([conversation("a long question " * 20, "Yes.")], tokenizer, max_length=30, plain=True)
    assert "✂" in text and "⟦" not in text.split("\n", 1)[1]
    assert "30 tokens, 0 trained (0%), 30 masked" in text and "skips this example" in text


def test_rich_inspection_renders_the_same_stream(tokenizer):
    console = Console(record=True, width=200, color_system="truecolor")
    console.print(render_inspection([conversation("Hi", "Hello!")], tokenizer, max_length=512))
    text = console.export_text()
    assert "assistant↵\nHello!<|im_end|>↵" in text
    assert "tokens, 3 trained" in text
