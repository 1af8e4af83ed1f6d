"""Greedy generation for evaluation: many prompts at once, the way the model was trained.

- Prompts are rendered by the one chat renderer (models/chat.py) exactly as training renders
  the text before a model turn: the conversation up to its last model turn, with the
  generation prompt ("<|im_start|>assistant\\n" for SmolLM2).
- Continuous batching (models/decoding.py, as the server's engine decodes): up to
  `batch_size` rows decode together over one KV cache; a row leaves as soon as its answer
  ends and the next prompt takes its place, so the batch stays full. Prompts go in order of
  length, so rows decoding together have similar lengths and left padding adds little.
- Constrained (optional, per row): `constraints[i]`, segments from models/constrain.py,
  holds row i to a label set, a template or a JSON schema; None leaves the row free. A row
  held to a label set is answered with its likeliest label, every label scored whole
  (models/label_scoring.py), instead of token by token.
- Greedy (no sampling) and stopped at the end-of-turn token, the one training taught the
  model to emit after its answer (`chat.stop_token_ids`, where serving stops too); the
  answer is the text before it.

Greedy decoding is deterministic for given prompts and batch size; a prompt padded in a
batch can still differ from the same prompt alone in the last bits of a logit, which flips a
near-tie now and then (bench/generation.py measures how often).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .chat import pad_token_id, stop_token_ids
from .constrain import RowState, Segment, compile_constraint
from .decoding import Batch
from .label_scoring import best_labels, label_trie, scored_labels

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DEFAULT_BATCH_SIZE = 16  # a 135M model on a CPU: a step over 16 rows costs little more than over one


@dataclass
class _Row:
    index: int  # the prompt's place in the caller's list
    constraint: RowState | None
    tokens: list[int] = field(default_factory=list)


def generate_greedy(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    max_new_tokens: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
    constraints: Sequence[tuple[Segment, ...] | None] | None = None,
) -> list[str]:
    """The model's greedy answer to each rendered prompt, in the order given; row i held to
    `constraints[i]` where given."""
    import torch

    if max_new_tokens < 1 or batch_size < 1:
        raise ValueError("max_new_tokens and batch_size must be at least 1")
    stop_ids = stop_token_ids(tokenizer, model.generation_config)
    pad_id = pad_token_id(tokenizer, model.generation_config)
    # The template wrote every special token the model expects: the tokenizer adds none.
    encoded = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    constraints = constraints or [None] * len(prompts)
    answers: list[str] = [""] * len(prompts)
    model.eval()
    scored: set[int] = set()
    for labels, rows in _label_rows(constraints).items():
        trie = label_trie(labels, tokenizer, stop_ids[0])
        if trie is not None:
            with torch.inference_mode():
                best = best_labels(model, [encoded[i] for i in rows], trie, pad_id)
            for i, label in zip(rows, best):
                answers[i] = labels[label]
            scored.update(rows)
    waiting = deque(sorted((i for i in range(len(prompts)) if i not in scored), key=lambda i: len(encoded[i])))
    vocab_size = model.get_output_embeddings().weight.shape[0]
    compiled = [compile_constraint(c, tokenizer, vocab_size, stop_ids) if c and i not in scored else None
                for i, c in enumerate(constraints)]
    batch: Batch[_Row] | None = None
    with torch.inference_mode():
        while waiting or batch is not None:
            room = batch_size - (len(batch.rows) if batch is not None else 0)
            if waiting and room > 0 and (batch is None or batch.joinable):
                starting = [waiting.popleft() for _ in range(min(room, len(waiting)))]
                rows = [_Row(i, RowState(compiled[i]) if compiled[i] else None) for i in starting]
                newcomers = Batch.prefill(model, [encoded[i] for i in starting], rows, pad_id)
                if batch is None:
                    batch = newcomers
                else:
                    batch.join(newcomers)
            logits = batch.logits.float()
            for i, row in enumerate(batch.rows):
                if row.constraint is not None:
                    logits[i] = row.constraint.mask(logits[i])
            next_ids = logits.argmax(dim=-1).cpu()
            keep = []
            for i, (row, token) in enumerate(zip(batch.rows, next_ids.tolist())):
                if row.constraint is not None:
                    row.constraint.advance(token)
                if token not in stop_ids:
                    row.tokens.append(token)
                if token in stop_ids or len(row.tokens) >= max_new_tokens:
                    answers[row.index] = _answer(row.tokens, stop_ids, tokenizer)
                else:
                    keep.append(i)
            if not keep:
                batch = None
                continue
            if len(keep) < len(batch.rows):
                batch.select(keep)
                next_ids = next_ids[torch.tensor(keep)]
            batch.step(model, next_ids)
    return answers


def _label_rows(constraints: Sequence[tuple[Segment, ...] | None]) -> dict[tuple[str, ...], list[int]]:
    """The rows held to each label set."""
    rows: dict[tuple[str, ...], list[int]] = {}
    for i, segments in enumerate(constraints):
        labels = scored_labels(segments)
        if labels is not None:
            rows.setdefault(labels, []).append(i)
    return rows


def _answer(new_tokens: list[int], stop_ids: list[int], tokenizer: PreTrainedTokenizerBase) -> str:
    """The text before the first end-of-turn token."""
    end = next((i for i, token in enumerate(new_tokens) if token in stop_ids), len(new_tokens))
    return tokenizer.decode(new_tokens[:end], skip_special_tokens=True).strip()
