"""Continuous batching: the state of rows that decode together over one KV cache. Evaluation
(models/generate.py) and the server's engine (serve/engine.py) both decode through it.

- Padding is on the left, so every row's newest token sits in the last column and one
  forward step extends every row; `mask` marks the real tokens and `positions` holds each
  row's newest position (positions count real tokens only).
- Newcomers are prefilled together and `join` a running batch between two steps: the shorter
  side is padded on the left and the caches are stacked row-wise; no token is recomputed.
- Finished rows leave at once (`select`), with the leading columns that only they used.

The rows themselves are the caller's: a batch only keeps them in the order of its tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .chat import left_padded

if TYPE_CHECKING:
    import torch

R = TypeVar("R")


@dataclass
class Batch(Generic[R]):
    rows: list[R]
    cache: Any  # a transformers DynamicCache: keys and values [rows, heads, columns, head_dim] per layer
    mask: torch.Tensor  # [rows, columns]
    positions: torch.Tensor  # [rows, 1]
    logits: torch.Tensor  # [rows, vocabulary]: each row's next-token logits, ready to pick from

    @classmethod
    def prefill(cls, model: Any, prompts: list[list[int]], rows: list[R], pad_id: int, **per_row: Any) -> Batch[R]:
        """Run the prompts through the model together: rows whose next-token logits are ready.
        `per_row`: extra forward arguments with one entry a row (PEFT's `adapter_names`)."""
        from transformers import DynamicCache

        input_ids, mask = left_padded(prompts, pad_id)
        input_ids, mask = input_ids.to(model.device), mask.to(model.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=model.config)
        logits = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, cache=cache,
                       use_cache=True, logits_to_keep=1, **per_row).logits[:, -1, :]
        return cls(list(rows), cache, mask, positions[:, -1:], logits)

    def step(self, model: Any, next_ids: torch.Tensor, **per_row: Any) -> None:
        """Feed each row its chosen token: one forward step, and the next logits."""
        import torch

        self.mask = torch.cat([self.mask, self.mask.new_ones((len(self.rows), 1))], dim=1)
        self.positions = self.positions + 1
        self.logits = model(input_ids=next_ids[:, None].to(model.device), attention_mask=self.mask,
                            position_ids=self.positions, cache=self.cache, use_cache=True, logits_to_keep=1,
                            **per_row).logits[:, -1, :]

    @property
    def joinable(self) -> bool:
        """Newcomers can join only a cache of plain full-attention layers (not sliding-window
        or quantized ones, whose columns mean something else); otherwise they wait their turn."""
        return all(type(layer).__name__ == "DynamicLayer" for layer in self.cache.layers)

    def select(self, keep: list[int]) -> None:
        """Keep only these rows, and drop the leading columns that are padding in all of them
        (the space a long finished row held), so attention costs what the live rows need."""
        import torch

        index = torch.tensor(keep, device=self.mask.device)
        self.cache.batch_select_indices(index)
        self.rows = [self.rows[i] for i in keep]
        self.mask, self.positions, self.logits = self.mask[index], self.positions[index], self.logits[index]
        unused = int(self.mask.any(dim=0).int().argmax())  # the first column some row uses
        if unused:
            self.mask = self.mask[:, unused:]
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[..., unused:, :], layer.values[..., unused:, :]

    def join(self, other: Batch[R]) -> None:
        """Add another batch's rows (newcomers just prefilled) after these."""
        import torch
        import torch.nn.functional as F

        width = max(self.mask.shape[1], other.mask.shape[1])

        def widen(tensor: torch.Tensor, dim_from_end: int) -> torch.Tensor:
            missing = width - tensor.shape[-dim_from_end]
            # F.pad's pairs run from the last dimension backwards: (left, right) of each.
            return F.pad(tensor, (0, 0) * (dim_from_end - 1) + (missing, 0)) if missing else tensor

        for mine, theirs in zip(self.cache.layers, other.cache.layers):
            mine.keys = torch.cat([widen(mine.keys, 2), widen(theirs.keys, 2)])
            mine.values = torch.cat([widen(mine.values, 2), widen(theirs.values, 2)])
        self.mask = torch.cat([widen(self.mask, 1), widen(other.mask, 1)])
        self.positions = torch.cat([self.positions, other.positions])
        self.logits = torch.cat([self.logits, other.logits])
        self.rows += other.rows
