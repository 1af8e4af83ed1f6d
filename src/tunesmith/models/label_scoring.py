"""Greedy answers from a label set, by scoring every label whole.

Greedy decoding held to a label set (models/constrain.py) picks the likeliest next token inside
the set, one token at a time: it commits to a label's first token before it has read the rest
(ten Banking77 intents begin with `card_`). Scoring reads every label's tokens and the
end-of-turn token after the prompt and answers with the label of the highest log-probability,
the answer greedy decoding approximates. On Banking77 10-shot (SmolLM2 LoRA, 770 test
messages) it takes accuracy from 72.3% to 75.6% (docs/output-spaces.md).

How, exactly and at a fraction of reading every label:

- the labels' token sequences make a trie, so a prefix they share is read once (Banking77's
  77 labels: 558 tokens, 459 trie nodes);
- a forward pass reads a prompt and a set of trie nodes together, each node attending to the
  prompt and to its own ancestors only (a 4D attention mask), at the position it would have
  right after the prompt; a node's log-probability is read from the logits at its parent (the
  prompt's last token for a first token), and a label's is the sum over its nodes;
- a label is never likelier than its first token, so three passes find the best label without
  reading most of them: the prompt alone gives every first token's log-probability; the labels
  under the likeliest first token give a label to beat; then only the labels under first tokens
  at least as likely as that label are read. On Banking77 that is a few dozen nodes a prompt.

Evaluation (evaluate/providers.py) and the server's engine (serve/engine.py) answer a greedy
request held to a label set this way; sampled requests still decode token by token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

from .chat import left_padded
from .constrain import Choice, Segment

if TYPE_CHECKING:
    import torch

# Label sets whose trie has more nodes than this decode greedily instead: the scoring pass
# would read a sequence this long for every prompt.
MAX_TRIE_NODES = 2048
# Logits kept at once, in floats (vocabulary x trie positions x prompts): about 256 MB; and
# at most this many prompts in one forward pass.
LOGITS_BUDGET = 64 * 2**20
MAX_GROUP = 32


def scored_labels(segments: Sequence[Segment] | None) -> tuple[str, ...] | None:
    """The label set that segments describe when they are exactly one choice (a `labels`
    output space, a request's choice list); None otherwise."""
    if segments is None or len(segments) != 1 or not isinstance(segments[0], Choice):
        return None
    return tuple(option.decode() for option in segments[0].options)


@dataclass(frozen=True)
class LabelTrie:
    labels: tuple[str, ...]
    tokens: list[int]  # per node, its token
    parents: list[int]  # per node, its parent node (-1: the prompt's last token)
    depths: list[int]  # per node, 1 for a label's first token
    paths: list[list[int]]  # per label, its nodes from the first token to the end of turn

    @classmethod
    def build(cls, labels: Sequence[str], tokenizer: Any, end_id: int) -> LabelTrie:
        """Each label as the tokenizer writes it alone (as training's text has it after the
        generation prompt), then the end-of-turn token."""
        tokens, parents, depths, paths = [], [], [], []
        index: dict[tuple[int, ...], int] = {}
        for label in labels:
            sequence = tuple(tokenizer(label, add_special_tokens=False)["input_ids"]) + (end_id,)
            path = []
            for depth in range(1, len(sequence) + 1):
                prefix = sequence[:depth]
                if prefix not in index:
                    index[prefix] = len(tokens)
                    tokens.append(prefix[-1])
                    parents.append(path[-1] if path else -1)
                    depths.append(depth)
                path.append(index[prefix])
            paths.append(path)
        return cls(tuple(labels), tokens, parents, depths, paths)

    def __len__(self) -> int:
        return len(self.tokens)

    @cached_property
    def ancestry(self) -> torch.Tensor:
        """[nodes, nodes]: True where the column is the row's node or one of its ancestors."""
        import torch

        ancestry = torch.eye(len(self.tokens), dtype=torch.bool)
        for node, parent in enumerate(self.parents):  # parents come before their children
            if parent >= 0:
                ancestry[node] |= ancestry[parent]
        return ancestry

    def subtree(self, node: int) -> list[int]:
        """The node and all below it, parents before children."""
        below = {node}
        for child in range(node + 1, len(self.tokens)):  # children come after their parents
            if self.parents[child] in below:
                below.add(child)
        return sorted(below)


@lru_cache(maxsize=64)
def label_trie(labels: tuple[str, ...], tokenizer: Any, end_id: int) -> LabelTrie | None:
    """The trie of a label set, built once per set and tokenizer; None when it is too large to
    score (more than MAX_TRIE_NODES nodes: such a set is decoded instead)."""
    trie = LabelTrie.build(labels, tokenizer, end_id)
    return trie if len(trie) <= MAX_TRIE_NODES else None


def best_labels(model: Any, prompts: list[list[int]], trie: LabelTrie, pad_id: int,
                **per_row: Any) -> list[int]:
    """For each tokenized prompt, the index in `trie.labels` of the likeliest label.
    `per_row`: extra forward arguments with one entry a prompt (PEFT's `adapter_names`)."""
    import torch

    firsts = torch.tensor([node for node, parent in enumerate(trie.parents) if parent < 0])
    # 1. The prompts alone: every first token's log-probability.
    log_probs = _node_log_probs(model, prompts, [[] for _ in prompts], trie, pad_id, per_row)
    top = firsts[log_probs[:, firsts].argmax(dim=-1)].tolist()
    # 2. The labels under each prompt's likeliest first token: a label to beat.
    log_probs = torch.maximum(log_probs, _node_log_probs(
        model, prompts, [trie.subtree(node) for node in top], trie, pad_id, per_row))
    to_beat = _label_log_probs(log_probs, trie).max(dim=-1).values
    # 3. The labels under every other first token at least as likely as that label.
    likely = (log_probs[:, firsts] >= to_beat[:, None]).tolist()
    rest = {row: [node for first, keep in zip(firsts.tolist(), likely[row]) if keep and first != top[row]
                  for node in trie.subtree(first)] for row in range(len(prompts))}
    unsure = [row for row, nodes in rest.items() if nodes]  # on Banking77, about one prompt in twenty
    if unsure:
        log_probs[unsure] = torch.maximum(log_probs[unsure], _node_log_probs(
            model, [prompts[row] for row in unsure], [rest[row] for row in unsure], trie, pad_id,
            {name: [values[row] for row in unsure] for name, values in per_row.items()}))
    return _label_log_probs(log_probs, trie).argmax(dim=-1).tolist()


def _label_log_probs(node_log_probs: torch.Tensor, trie: LabelTrie) -> torch.Tensor:
    """[prompts, labels]: the sum over each label's nodes (-inf where a node was not read)."""
    import torch

    return torch.stack([node_log_probs[:, path].sum(dim=-1) for path in trie.paths], dim=-1)


def _node_log_probs(model: Any, prompts: list[list[int]], subsets: list[list[int]], trie: LabelTrie, pad_id: int,
                    per_row: dict[str, Any]) -> torch.Tensor:
    """[prompts, nodes]: each node's log-probability given the prompt and its ancestors, for the
    first tokens and for the nodes of each prompt's subset (each node's ancestors in it too); -inf
    for the rest. Prompts go through in groups of like subset sizes (little padding) whose logits
    fit in LOGITS_BUDGET."""
    import torch

    vocabulary = model.get_output_embeddings().weight.shape[0]
    out = torch.full((len(prompts), len(trie)), float("-inf"))
    order = sorted(range(len(prompts)), key=lambda row: len(subsets[row]))
    while order:
        size = 1
        while size < min(len(order), MAX_GROUP) and \
                (size + 1) * (1 + len(subsets[order[size]])) * vocabulary <= LOGITS_BUDGET:
            size += 1
        group, order = order[:size], order[size:]
        out[group] = _read(model, [prompts[row] for row in group], [subsets[row] for row in group], trie, pad_id,
                           **{name: [values[row] for row in group] for name, values in per_row.items()})
    return out


def _read(model: Any, prompts: list[list[int]], subsets: list[list[int]], trie: LabelTrie, pad_id: int,
          **per_row: Any) -> torch.Tensor:
    """One forward pass: each prompt (left padded) followed by its subset of nodes (padded on the right)."""
    import torch

    prompt_ids, prompt_mask = left_padded(prompts, pad_id)
    rows, width, slots = prompt_ids.shape[0], prompt_ids.shape[1], max(map(len, subsets))
    nodes = torch.zeros(rows, slots, dtype=torch.long)  # which trie node each slot holds
    filled = torch.zeros(rows, slots, dtype=torch.bool)
    for row, subset in enumerate(subsets):
        nodes[row, :len(subset)], filled[row, :len(subset)] = torch.tensor(subset, dtype=torch.long), True
    tokens, depths = torch.tensor(trie.tokens), torch.tensor(trie.depths)
    input_ids = torch.cat([prompt_ids, torch.where(filled, tokens[nodes], pad_id)], dim=1)
    positions = torch.cat([(prompt_mask.cumsum(-1) - 1).clamp(min=0),
                           prompt_mask.sum(dim=1, keepdim=True) - 1 + depths[nodes]], dim=1)
    # Who attends to whom: the prompt causally, each node to the prompt's real tokens, its
    # ancestors and itself; padding to itself only, so that no row of the mask is empty.
    real = prompt_mask.bool()
    mask = torch.eye(width + slots, dtype=torch.bool).repeat(rows, 1, 1)
    mask[:, :width, :width] |= torch.tril(torch.ones(width, width, dtype=torch.bool)) & real[:, None, :]
    mask[:, width:, :width] = real[:, None, :] & filled[:, :, None]
    mask[:, width:, width:] = trie.ancestry[nodes[:, :, None], nodes[:, None, :]] & filled[:, :, None] \
        & filled[:, None, :]
    # Logits at the prompt's last token (left padding puts it in column width - 1) and at every slot.
    keep = torch.arange(width - 1, width + slots)
    device = model.device
    logits = model(input_ids=input_ids.to(device), attention_mask=mask[:, None].to(device),
                   position_ids=positions.to(device), logits_to_keep=keep.to(device), **per_row).logits
    log_probs = torch.log_softmax(logits.float(), dim=-1).cpu()  # [rows, 1 + slots, vocabulary]
    out = torch.full((rows, len(trie)), float("-inf"))
    firsts = torch.tensor([node for node, parent in enumerate(trie.parents) if parent < 0])
    out[:, firsts] = log_probs[:, 0, tokens[firsts]]
    for row, subset in enumerate(subsets):
        slot_of = {node: slot for slot, node in enumerate(subset)}
        for slot, node in enumerate(subset):
            parent = trie.parents[node]
            if parent >= 0:
                out[row, node] = log_probs[row, 1 + slot_of[parent], trie.tokens[node]]
    return out
