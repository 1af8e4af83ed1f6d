"""Which training examples go into each batch, and in what order.

Batches of similar length waste little on padding: a batch is as long as its longest example.
transformers' `group_by_length` gets them by sorting groups of about 50 batches' examples by
length, longest first, and training on each group in that order. Every group is then a run
from the longest examples down to the shortest, and the last steps of an epoch (where a
decaying learning rate ends) see only short ones. On ticket data that run cost 0.4-1.2% of
validation loss against random batches (bench/train_throughput.py, three seeds).

Here the batches are made the same way and then shuffled, so no order of length is left, and
the groups are drawn afresh each epoch, so the batches change from one epoch to the next."""

from __future__ import annotations

import random
from collections.abc import Iterator

GROUP_BATCHES = 50  # batches sorted together: their examples are close in length when the data is large


def length_grouped_batches(lengths: list[int], batch_size: int, seed: int) -> list[list[int]]:
    """Batches of indices into `lengths` whose members have similar lengths, in a random order
    drawn with `seed`. The examples are shuffled and cut into groups of up to GROUP_BATCHES
    batches (at least four groups where the data allows, so that batches vary between seeds),
    each group is sorted by length and cut into batches, and all the batches are shuffled."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1 (got {batch_size})")
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    group = batch_size * max(1, min(GROUP_BATCHES, len(lengths) // (batch_size * 4)))
    batches = []
    for start in range(0, len(order), group):
        members = sorted(order[start:start + group], key=lambda i: lengths[i])  # stable: ties keep their shuffled order
        batches += [members[i:i + batch_size] for i in range(0, len(members), batch_size)]
    rng.shuffle(batches)
    # The one short batch (the data's remainder) goes last: a DataLoader cuts the sampler's
    # indices into runs of batch_size, so one in the middle would shift every batch after it.
    batches.sort(key=lambda batch: len(batch) < batch_size)
    return batches


class LengthGroupedSampler:
    """A training sampler (for torch's DataLoader) over length_grouped_batches: consecutive runs
    of `batch_size` indices are the batches. The Trainer calls `set_epoch` before each epoch,
    so each epoch has its own batches, the same ones again when a run resumes."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int):
        self.lengths, self.batch_size, self.seed = list(lengths), batch_size, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        for batch in length_grouped_batches(self.lengths, self.batch_size, self.seed * 100_003 + self.epoch):
            yield from batch
