"""The one chat renderer: how a conversation becomes the text and tokens a model reads, the
same for training, evaluation and serving.

- training: `encode_dataset` (token ids and labels, the loss on the model's turns only);
- inference: `render_prompt` (the conversation before its last model turn, with the
  generation prompt), `stop_token_ids` (where a generated answer ends), `pad_token_id` and
  `left_padded` (a batch of prompts whose last tokens line up).

Training, loss masks:

A loss mask in the wrong place is the most common silent failure of fine-tuning: trained
on the prompt, the model learns to write the user's messages; never trained on the
end-of-turn token, it learns to answer but not to stop. Here:

- a conversation is rendered by the base model's own chat template, as at inference: the
  system instruction first, as a system message; without one, the template's default
  applies (SmolLM2 writes its own system prompt), as it does when the model is served;
- trained: the text of every model turn and the end-of-turn token right after it
  ("<|im_end|>" for SmolLM2), which the model must emit for generation to stop;
- masked (label -100): everything else, the role header ("<|im_start|>assistant\\n")
  included, and the newline the template writes after the end-of-turn token, which
  generation never produces because it stops at the end-of-turn token.

The model's turns are located without `{% generation %}` markers, which few templates
have: the conversation is rendered up to each model turn with the generation prompt, then
through that turn; both renderings must be prefixes of the whole conversation, and the
turn is the text between them (trailing whitespace left out). The whole is tokenized once,
with character offsets, and a token is trained when it starts inside a turn. (A turn whose
text starts with whitespace can have it merged into the header's last token, "\\n\\n" say;
that token starts in the header and stays masked.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..data.example import MODEL, Example
from ..errors import TunesmithError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

IGNORE_INDEX = -100  # the label PyTorch's cross-entropy (and every Hugging Face model) skips


@dataclass(frozen=True, slots=True)
class TokenizedConversation:
    """A conversation as the model reads it, before truncation."""

    text: str  # as the chat template renders it
    input_ids: list[int]
    offsets: list[tuple[int, int]]  # each token's characters in `text`
    trained: list[bool]  # per token: inside a model turn (its text or its end-of-turn token)


@dataclass(frozen=True, slots=True)
class EncodedExample:
    input_ids: list[int]
    labels: list[int]  # the token where it is trained, IGNORE_INDEX where it is not
    truncated: bool  # longer than max_length: the end was cut off
    example_id: str = ""

    @property
    def trained_tokens(self) -> int:
        return sum(label != IGNORE_INDEX for label in self.labels)

    @property
    def nothing_to_train(self) -> bool:
        """No trained token: the example has no model turn, or truncation cut them all.
        Skip it and count it."""
        return self.trained_tokens == 0


def chat_messages(example: Example) -> list[dict[str, str]]:
    """The example as chat-template messages. Roles other than "user" and "model" (which
    the data checks flag) pass through as they are, for the template to render or refuse."""
    messages = [{"role": "system", "content": example.system}] if example.system else []
    return messages + [
        {"role": "assistant" if turn.role == MODEL else turn.role, "content": turn.text} for turn in example.turns
    ]


def render_conversation(
    example: Example, tokenizer: PreTrainedTokenizerBase
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its model turns (text and
    end-of-turn token)."""
    messages = chat_messages(example)
    text = _render(tokenizer, messages, example)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        if not any(m["role"] == "user" for m in messages[:i]):
            raise TunesmithError(
                f"{example.where}: the conversation starts with a model turn, which has no prompt to answer",
                "start each conversation with a user turn (tunesmith data prepare drops those that do not)",
            )
        before = _render(tokenizer, messages[:i], example, add_generation_prompt=True)
        through = text if i == len(messages) - 1 else _render(tokenizer, messages[: i + 1], example)
        if not (through.startswith(before) and text.startswith(through)):
            raise TunesmithError(
                f"{example.where}: the chat template does not render this conversation turn by turn, "
                "so the model's turns cannot be told apart from the rest",
                "use a model whose chat template renders earlier turns as it renders the last one",
            )
        spans.append((len(before), max(len(before), len(through.rstrip()))))
    return text, spans


def _render(
    tokenizer: PreTrainedTokenizerBase,
    messages: list[dict[str, str]],
    example: Example,
    add_generation_prompt: bool = False,
) -> str:
    from jinja2 import TemplateError

    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    except TemplateError as exc:
        raise TunesmithError(
            f"{example.where}: the model's chat template cannot render this conversation: {exc}"
        ) from None


def tokenize_conversations(
    examples: list[Example], tokenizer: PreTrainedTokenizerBase
) -> list[TokenizedConversation]:
    """Every conversation rendered, tokenized whole and its tokens marked trained or not."""
    if not tokenizer.chat_template:
        raise TunesmithError("the tokenizer has no chat template", "load it with tunesmith.models.loading.load_tokenizer")
    if not examples:
        return []
    rendered = [render_conversation(example, tokenizer) for example in examples]
    # One batched call, which the tokenizer spreads over threads. The template has written
    # every special token the model expects, so the tokenizer must add none of its own.
    batch = tokenizer([text for text, _ in rendered], add_special_tokens=False, return_offsets_mapping=True)
    return [
        TokenizedConversation(text, ids, [tuple(o) for o in offsets], _starts_inside(offsets, spans))
        for (text, spans), ids, offsets in zip(rendered, batch["input_ids"], batch["offset_mapping"])
    ]


def _starts_inside(offsets: list[tuple[int, int]], spans: list[tuple[int, int]]) -> list[bool]:
    """Per token, whether its first character lies in one of `spans` (sorted, disjoint)."""
    inside = []
    remaining = iter(spans)
    span = next(remaining, None)
    for start, _ in offsets:
        while span is not None and start >= span[1]:
            span = next(remaining, None)
        inside.append(span is not None and start >= span[0])
    return inside


def encode_dataset(
    examples: list[Example], tokenizer: PreTrainedTokenizerBase, max_length: int
) -> list[EncodedExample]:
    """Token ids and labels per example, cut to the first `max_length` tokens. Check
    `nothing_to_train` on each: truncation can leave an example with no trained token."""
    if max_length < 1:
        raise ValueError(f"max_length must be at least 1 (got {max_length})")
    conversations = tokenize_conversations(examples, tokenizer)
    return [_encoded(conversation, ex.id, max_length) for conversation, ex in zip(conversations, examples)]


def encode_example(example: Example, tokenizer: PreTrainedTokenizerBase, max_length: int) -> EncodedExample:
    return encode_dataset([example], tokenizer, max_length)[0]


def _encoded(conversation: TokenizedConversation, example_id: str, max_length: int) -> EncodedExample:
    ids = conversation.input_ids[:max_length]
    # Hugging Face models shift labels themselves: label i is the token at position i.
    labels = [token if trained else IGNORE_INDEX for token, trained in zip(ids, conversation.trained)]
    return EncodedExample(ids, labels, truncated=len(conversation.input_ids) > max_length, example_id=example_id)


def pad_batch(encoded: list[EncodedExample], pad_id: int) -> dict[str, torch.Tensor]:
    """A batch padded on the right to its longest member; padding is masked out of both
    attention and loss, whatever token `pad_id` is."""
    import torch

    if not encoded:
        raise ValueError("cannot pad an empty batch")
    shape = (len(encoded), max(len(e.input_ids) for e in encoded))
    input_ids = torch.full(shape, pad_id, dtype=torch.long)
    labels = torch.full(shape, IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros(shape, dtype=torch.long)
    for row, example in enumerate(encoded):
        n = len(example.input_ids)
        input_ids[row, :n] = torch.tensor(example.input_ids, dtype=torch.long)
        labels[row, :n] = torch.tensor(example.labels, dtype=torch.long)
        attention_mask[row, :n] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


# --- inference: the prompt, where the answer stops, padding -----------------------------------


def prompt_messages(example: Example) -> list[dict[str, str]]:
    """The chat messages before the example's last model turn (all of it when it has none)."""
    last = example.last_model_index()
    kept = Example(turns=example.turns if last is None else example.turns[:last], system=example.system, id=example.id)
    return chat_messages(kept)


def render_prompt(example: Example, tokenizer: PreTrainedTokenizerBase) -> str:
    """The text the model reads before it answers, as training renders it: the conversation
    up to its last model turn, with the generation prompt ("<|im_start|>assistant\\n" for SmolLM2)."""
    return _render(tokenizer, prompt_messages(example), example, add_generation_prompt=True)


def stop_token_ids(tokenizer: PreTrainedTokenizerBase, generation_config=None) -> list[int]:
    """Where a generated answer ends: the token the chat template writes right after a model
    turn (what training teaches the model to emit), the end-of-sequence token, and any the
    model's generation config names. Evaluation and serving both stop here."""
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    before = tokenizer.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    whole = tokenizer.apply_chat_template(messages, tokenize=False)
    ids = []
    if whole.startswith(before + "b"):
        after = tokenizer(whole[len(before) + 1 :], add_special_tokens=False)["input_ids"]
        ids += after[:1]
    ids.append(tokenizer.eos_token_id)
    configured = getattr(generation_config, "eos_token_id", None)
    ids += configured if isinstance(configured, list) else [configured]
    ids = [i for i in dict.fromkeys(ids) if i is not None]
    if not ids:
        raise TunesmithError("cannot tell where the model's turn ends: its tokenizer has no end-of-turn token")
    return ids


def pad_token_id(tokenizer: PreTrainedTokenizerBase, generation_config=None) -> int:
    """The token that fills a padded row (masked out, so any token would do): the tokenizer's
    own, else the first stop token."""
    if tokenizer.pad_token_id is not None:
        return tokenizer.pad_token_id
    return stop_token_ids(tokenizer, generation_config)[0]


def left_padded(sequences: list[list[int]], pad_id: int):
    """(input_ids, attention_mask) with padding on the left, so every row's last prompt token
    sits in the last column and one forward step extends every row."""
    import torch

    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, ids in enumerate(sequences):
        if ids:
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, width - len(ids) :] = 1
    return input_ids, attention_mask
