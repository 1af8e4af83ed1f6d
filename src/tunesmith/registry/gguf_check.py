"""Checking an exported GGUF file without llama.cpp: transformers reads it back (de-quantizing
its weights and rebuilding its tokenizer from the metadata alone), and the greedy tokens it
generates are compared with the source model's, prompt by prompt.

This checks the tensor names, the rotary permutation, the hyperparameters, the tokenizer and
the chat template in one go (any of them wrong and the answers differ at the first token); it
does not run llama.cpp's own kernels (tests/registry/test_gguf_export.py does where
llama-cpp-python is installed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..models.chat import left_padded, stop_token_ids
from ..models.llama_server import LlamaServer

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass
class GreedyAgreement:
    prompts: int
    same_prompt_tokens: int  # prompts the GGUF's tokenizer encodes exactly as the source's
    same_answers: int  # prompts whose greedy answer tokens are identical
    same_chat_template: bool
    differing: list[int] = field(default_factory=list)  # indices of prompts whose answers differ

    @property
    def share(self) -> float:
        return self.same_answers / self.prompts if self.prompts else 1.0


def load_gguf(path: str | Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The model and tokenizer transformers builds from a GGUF file (float32 weights)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype="float32")
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return model.eval(), tokenizer


def greedy_tokens(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: list[str],
                  max_new_tokens: int, batch_size: int = 8) -> list[list[int]]:
    """Each prompt's greedy continuation (up to and including its end-of-turn token), generated
    in left-padded batches of `batch_size` in the order given: two models asked through this
    function see the same batches and the same padding, so only their weights can tell their
    answers apart (batch_size=1 for the answers a lone request gets)."""
    import torch

    stops = stop_token_ids(tokenizer, model.generation_config)
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    answers = []
    with torch.inference_mode():
        for start in range(0, len(encoded), batch_size):
            ids, mask = left_padded(encoded[start : start + batch_size], stops[0])
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                 do_sample=False, eos_token_id=stops, pad_token_id=stops[0])
            for row in out[:, ids.shape[1] :].tolist():
                end = next((i for i, token in enumerate(row) if token in stops), len(row) - 1)
                answers.append(row[: end + 1])
    return answers


def greedy_agreement(source: PreTrainedModel, source_tokenizer: PreTrainedTokenizerBase, gguf_file: str | Path,
                     prompts: list[str], max_new_tokens: int = 32) -> GreedyAgreement:
    """How often the GGUF file, read back by transformers, answers exactly as `source` does.
    `prompts` are rendered texts (the chat template already applied by the source tokenizer)."""
    exported, tokenizer = load_gguf(gguf_file)
    same_tokens = sum(tokenizer(p, add_special_tokens=False)["input_ids"]
                      == source_tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts)
    expected = greedy_tokens(source, source_tokenizer, prompts, max_new_tokens)
    got = greedy_tokens(exported, tokenizer, prompts, max_new_tokens)
    differing = [i for i, (a, b) in enumerate(zip(expected, got)) if a != b]
    return GreedyAgreement(prompts=len(prompts), same_prompt_tokens=same_tokens,
                           same_answers=len(prompts) - len(differing),
                           same_chat_template=tokenizer.chat_template == source_tokenizer.chat_template,
                           differing=differing)


# --------------------------------------------------------------------------- llama.cpp


def llama_server_answers_alike(server: LlamaServer, tokenizer: PreTrainedTokenizerBase, expected: list[list[int]],
                               prompt_ids: list[list[int]], max_new_tokens: int) -> int:
    """How many prompts llama.cpp answers with exactly the `expected` tokens (transformers' greedy
    ones); the end-of-turn token is left out of both (llama-server does not return the token it
    stops at)."""
    stops = set(stop_token_ids(tokenizer))
    same = 0
    for ids, want in zip(prompt_ids, expected):
        got = server.greedy(ids, max_new_tokens)
        same += [t for t in got if t not in stops] == [t for t in want if t not in stops]
    return same
