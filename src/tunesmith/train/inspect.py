"""What the model will be trained on, token by token: `tunesmith data inspect DIR --model M`.

Each example is shown as the model reads it, its chat template applied, with the trained
tokens highlighted and the masked ones dim, so a misplaced loss mask is seen before any
training time is spent. Alternating shades mark where one token ends and the next begins;
special tokens are bold. Plain text (for logs, pipes and tests) brackets each run of
trained tokens with ⟦ ⟧ instead."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..data.example import Example
from ..models.chat import TokenizedConversation, tokenize_conversations

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.text import Text
    from transformers import PreTrainedTokenizerBase

NEWLINE = "↵"  # written before each line break, which is kept so that lines stay readable
CUT = "✂"  # where truncation to max_length cut the conversation
TRAINED_STYLES = ("black on green3", "black on dark_sea_green2")
MASKED_STYLES = ("dim", "dim on grey15")
SPECIAL_STYLE = "bold"
PLAIN_LEGEND = f"⟦trained⟧  everything else masked  {NEWLINE} newline  {CUT} cut by max_length"


def render_inspection(
    examples: list[Example],
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    n: int = 3,
    plain: bool = False,
) -> RenderableType | str:
    """A legend, then for each of the first `n` examples its token stream and a count line
    ("N tokens, T trained (p%), M masked"). Rich text, or a string when `plain`."""
    shown = examples[:n]
    conversations = tokenize_conversations(shown, tokenizer)
    if plain:
        blocks = [PLAIN_LEGEND]
        for number, (example, conversation) in enumerate(zip(shown, conversations), 1):
            stream = _plain_stream(conversation, max_length)
            blocks.append(f"{_title(example, number)}\n{stream}\n{_count_line(conversation, max_length)}")
        return "\n\n".join(blocks)

    from rich.console import Group
    from rich.text import Text

    special_ids = {token_id for token_id, token in tokenizer.added_tokens_decoder.items() if token.special}
    parts: list[RenderableType] = [_rich_legend()]
    for number, (example, conversation) in enumerate(zip(shown, conversations), 1):
        parts += [
            Text(""),
            Text(_title(example, number), style="bold"),
            _rich_stream(conversation, max_length, special_ids),
            Text(_count_line(conversation, max_length)),
        ]
    return Group(*parts)


def _pieces(conversation: TokenizedConversation, max_length: int) -> list[tuple[int, str, bool]]:
    """(token id, its text, trained) for the tokens that truncation keeps. Each piece runs
    from where the previous one ended, so the pieces join up to the rendered text even
    where several tokens share a character (the bytes of an emoji)."""
    pieces = []
    shown_up_to = 0
    kept = zip(conversation.input_ids[:max_length], conversation.offsets, conversation.trained)
    for token_id, (_, end), trained in kept:
        pieces.append((token_id, conversation.text[shown_up_to:end], trained))
        shown_up_to = max(shown_up_to, end)
    return pieces


def _visible(text: str) -> str:
    return text.replace("\n", NEWLINE + "\n")


def _title(example: Example, number: int) -> str:
    return f"── {number}. {example.where} ──"


def _count_line(conversation: TokenizedConversation, max_length: int) -> str:
    kept = conversation.trained[:max_length]
    trained = sum(kept)
    share = trained / max(len(kept), 1)
    line = f"{len(kept)} tokens, {trained} trained ({share:.0%}), {len(kept) - trained} masked"
    cut = len(conversation.input_ids) - len(kept)
    if cut:
        line += f"; {cut} more cut by max_length={max_length}"
    if not trained:
        line += "; nothing left to train on, so training skips this example"
    return line


def _plain_stream(conversation: TokenizedConversation, max_length: int) -> str:
    out = []
    in_trained_run = False
    for _, text, trained in _pieces(conversation, max_length):
        if trained != in_trained_run:
            out.append("⟦" if trained else "⟧")
            in_trained_run = trained
        out.append(_visible(text))
    if in_trained_run:
        out.append("⟧")
    if len(conversation.input_ids) > max_length:
        out.append(CUT)
    return "".join(out).rstrip("\n")


def _rich_stream(conversation: TokenizedConversation, max_length: int, special_ids: set[int]) -> Text:
    from rich.text import Text

    stream = Text()
    for position, (token_id, text, trained) in enumerate(_pieces(conversation, max_length)):
        style = (TRAINED_STYLES if trained else MASKED_STYLES)[position % 2]
        if token_id in special_ids:
            style += f" {SPECIAL_STYLE}"
        stream.append(_visible(text), style=style)
    if len(conversation.input_ids) > max_length:
        stream.append(CUT, style="bold red")
    stream.rstrip()
    return stream


def _rich_legend() -> Text:
    from rich.text import Text

    return Text.assemble(
        ("trained", TRAINED_STYLES[0]),
        "  ",
        ("masked", MASKED_STYLES[0]),
        "  ",
        ("<|special|>", f"{MASKED_STYLES[0]} {SPECIAL_STYLE}"),
        f"  {NEWLINE} newline  ",
        (CUT, "bold red"),
        " cut by max_length  (alternating shades separate tokens)",
    )
