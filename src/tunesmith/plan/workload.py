"""The tokens a training run reads: counted from a prepared dataset, or assumed from its size.

Counting is exact for tunesmith's own base models when `exact` is set (the chat template
rendered and tokenized as training does, which loads transformers); otherwise it uses the
data layer's counter: the model's tokenizer where one is available offline, else about four
characters a token, plus the template's tokens around each turn."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from ..data.dataset import load_dataset
from ..data.tokens import count_tokens, counter_for, estimate_counter
from ..errors import BadInputError
from ..models.chat import encode_dataset
from ..models.loading import load_tokenizer
from ..targets import load_target, target_names

# Without data: the guide's recommended minimum of 1,000 examples, each as long as --seq-len
# allows (an upper bound on the tokens, so time and cost are not understated).
ASSUMED_EXAMPLES = 1000
PADDING_SHUFFLES = 8


@dataclass(frozen=True)
class Workload:
    examples: int
    tokens_per_epoch: int  # every token the model reads (prompt and answer), after truncation
    trained_tokens_per_epoch: int  # the answer tokens the loss is computed on
    longest_tokens: int  # the longest example after truncation: the sequence length of the largest batch
    counted_by: str  # how the numbers were obtained, said in the plan
    lengths: tuple[int, ...] = ()  # each example's tokens, where counted

    @property
    def trained_tokens_per_example(self) -> float:
        return self.trained_tokens_per_epoch / max(1, self.examples)

    def padded_tokens_per_epoch(self, batch_size: int) -> int:
        """The tokens computed in an epoch of random batches (training's default): each batch is
        as long as its longest example. The mean over a few seeded shuffles of the lengths."""
        if not self.lengths or batch_size <= 1:
            return self.tokens_per_epoch
        rng, order, total = random.Random(0), list(self.lengths), 0
        for _ in range(PADDING_SHUFFLES):
            rng.shuffle(order)
            total += sum(max(order[i:i + batch_size]) * len(order[i:i + batch_size])
                         for i in range(0, len(order), batch_size))
        return round(total / PADDING_SHUFFLES)


def assumed(seq_len: int) -> Workload:
    tokens = ASSUMED_EXAMPLES * seq_len
    return Workload(ASSUMED_EXAMPLES, tokens, tokens, seq_len,
                    f"assumed: {ASSUMED_EXAMPLES:,} examples of {seq_len:,} tokens (give --data to count yours)")


def count(data: Path, base_model: str | None, max_seq_length: int, exact: bool = False) -> Workload:
    """The train split of a prepared folder, each example cut to `max_seq_length` tokens.
    `base_model` None counts as Gemini does offline: about four characters a token."""
    if not (Path(data) / "manifest.json").is_file():
        raise BadInputError(f"{data} is not a prepared dataset (no manifest.json)", "make one with `tunesmith data prepare`")
    train = load_dataset([data]).split("train")
    if not train:
        raise BadInputError(f"{data} has no examples in its train split")
    if exact and base_model:
        return _exact(train, base_model, max_seq_length)
    local = f"local/{base_model}"
    counter = counter_for(load_target(local)) if base_model and local in target_names() else estimate_counter()
    counts = count_tokens(train, counter)
    totals = [min(t, max_seq_length) for t in counts.total]
    # Each model turn is trained with its end-of-turn token; truncation can only cut trained tokens.
    trained = [min(m + sum(1 for t in ex.turns if t.role == "model"), total)
               for m, total, ex in zip(counts.model, totals, train)]
    return Workload(len(train), sum(totals), sum(trained), max(totals), counter.method, tuple(totals))


def _exact(train, base_model: str, max_seq_length: int) -> Workload:
    encoded = [e for e in encode_dataset(train, load_tokenizer(base_model), max_seq_length) if not e.nothing_to_train]
    if not encoded:
        raise BadInputError("no example has a trained token left after truncation", "raise max_seq_length")
    lengths = tuple(len(e.input_ids) for e in encoded)
    return Workload(len(encoded), sum(lengths), sum(e.trained_tokens for e in encoded), max(lengths),
                    f"{base_model} chat template and tokenizer (exact)", lengths)
