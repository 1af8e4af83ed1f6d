"""Greedy generation for evaluation: many prompts at once, the way the model was trained.

- Prompts are rendered by the one chat renderer (models/chat.py) exactly as training renders
  the text before a model turn: the conversation up to its last model turn, with the
  generation prompt ("<|im_start|>assistant\\n" for SmolLM2).
- Batched: prompts are sorted by length, so a batch holds prompts of similar length and
  left padding adds little; padding sits on the left so every row's next token comes at
  the same position, and the attention mask hides it. The KV cache makes each new token
  cost one forward step over one position.
- Constrained (optional, per row): `constraints[i]`, segments from models/constrain.py,
  holds row i to a label set, a template or a JSON schema; None leaves the row free.
- Greedy (no sampling) and stopped at the end-of-turn token, the one training taught the
  model to emit after its answer (`chat.stop_token_ids`, where serving stops too); the
  answer is the text before it.

Greedy decoding is deterministic for a given batch; a prompt padded in a batch can still
differ from the same prompt alone in the last bits of a logit, which flips a near-tie now
and then (bench/generation.py measures how often).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .chat import left_padded, pad_token_id, stop_token_ids
from .constrain import ConstrainedLogits, Segment, compile_constraint

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DEFAULT_BATCH_SIZE = 16  # a 135M model on a CPU: a step over 16 rows costs little more than over one


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
    from transformers import GenerationConfig, LogitsProcessorList

    if max_new_tokens < 1 or batch_size < 1:
        raise ValueError("max_new_tokens and batch_size must be at least 1")
    stop_ids = stop_token_ids(tokenizer, model.generation_config)
    pad_id = pad_token_id(tokenizer, model.generation_config)
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=stop_ids,
                              pad_token_id=pad_id, use_cache=True)
    # The template wrote every special token the model expects: the tokenizer adds none.
    encoded = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    answers: list[str] = [""] * len(prompts)
    device = next(model.parameters()).device
    vocab_size = model.get_output_embeddings().weight.shape[0]
    compiled = [compile_constraint(c, tokenizer, vocab_size, stop_ids) if c else None
                for c in (constraints or [None] * len(prompts))]
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            input_ids, attention_mask = left_padded([encoded[i] for i in rows], pad_id)
            processors = None
            if any(compiled[i] is not None for i in rows):
                processors = LogitsProcessorList([ConstrainedLogits([compiled[i] for i in rows], input_ids.shape[1])])
            out = model.generate(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device),
                                 generation_config=config, logits_processor=processors)
            for row, sequence in zip(rows, out[:, input_ids.shape[1] :].tolist()):
                answers[row] = _answer(sequence, stop_ids, tokenizer)
    return answers


def _answer(new_tokens: list[int], stop_ids: list[int], tokenizer: PreTrainedTokenizerBase) -> str:
    """The text before the first end-of-turn token (rows that finished early are padded after it)."""
    end = next((i for i, token in enumerate(new_tokens) if token in stop_ids), len(new_tokens))
    return tokenizer.decode(new_tokens[:end], skip_special_tokens=True).strip()
